/**
 * The postgres listener against a real PostgreSQL 15 with real clients (node-postgres, psql): queries, the
 * extended protocol, pipelining, COPY, cancel, denials, recording.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import {
  recordedDecision,
  type ApprovalBroker,
  type ApprovalRequestInput,
  type ApprovalSettlement,
} from '@agentgate/core';
import {
  runPsql,
  startPgGateway,
  startPostgres,
  type PgGateway,
  type TestPostgres,
} from './harness/postgres.js';

/** A broker the test settles by hand: approval requests wait until the test approves or rejects them. */
class ManualBroker implements ApprovalBroker {
  readonly pending: { input: ApprovalRequestInput; settle(outcome: ApprovalSettlement['outcome']): void }[] =
    [];
  private waiters: (() => void)[] = [];
  request(input: ApprovalRequestInput, signal?: AbortSignal): Promise<ApprovalSettlement> {
    return new Promise((resolve) => {
      const id = `appr-${this.pending.length + 1}`;
      const entry = { input, settle: (outcome: ApprovalSettlement['outcome']) => resolve({ id, outcome }) };
      signal?.addEventListener('abort', () => entry.settle('cancelled'), { once: true });
      this.pending.push(entry);
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  async next(count: number): Promise<void> {
    while (this.pending.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

let server: TestPostgres;
let gw: PgGateway;
let held: PgGateway | undefined;

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server, {
    rules: [
      {
        name: 'no-ddl-drops',
        protocol: 'postgres',
        match: { commands: ['DROP', 'TRUNCATE'] },
        action: 'deny',
      },
      { name: 'no-secrets', protocol: 'postgres', match: { tables: ['secrets'] }, action: 'deny' },
    ],
  });
  await server.psql(['-d', 'app'], {
    input: `SET ROLE app; CREATE TABLE items (id int primary key, name text, data bytea);
            INSERT INTO items SELECT g, 'item ' || g, '\\x00ff'::bytea FROM generate_series(1, 20) g;
            CREATE TABLE secrets (v text); CREATE TABLE scratch (v text);`,
  });
}, 60_000);

afterAll(async () => {
  await held?.stop();
  await gw?.stop();
  await server?.stop();
});

function client(user = 'devin', groups = ['agents']): pg.Client {
  return new pg.Client({
    host: gw.host,
    port: gw.port,
    user,
    database: 'app',
    password: gw.token(user, groups),
  });
}

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = client();
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('postgres listener: queries', () => {
  it('runs simple queries, several statements per message, and records results', async () => {
    await withClient(async (c) => {
      const r = await c.query('SELECT id, name FROM items WHERE id <= 3 ORDER BY id');
      expect(r.rows).toEqual([
        { id: 1, name: 'item 1' },
        { id: 2, name: 'item 2' },
        { id: 3, name: 'item 3' },
      ]);
      const multi = (await c.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as pg.QueryResult[];
      expect(multi.map((x) => x.rows[0])).toEqual([{ a: 1 }, { b: 2 }]);
      await c.query('SELECT * FROM items ORDER BY id');
    });
    const results = gw.events.filter((e) => e.type === 'result');
    const first = results.find((e) => e.commandTag === 'SELECT 3')!;
    expect(first.rowDescription).toEqual({ names: ['id', 'name'], typeOids: [23, 25] });
    expect(first.rows).toEqual([
      ['1', 'item 1'],
      ['2', 'item 2'],
      ['3', 'item 3'],
    ]);
    const all = results.find((e) => e.commandTag === 'SELECT 20')!;
    expect([(all.rows as unknown[]).length, all.rowsOmitted, all.rowCount]).toEqual([5, 15, 20]);
    expect(typeof first.commandSeq).toBe('number');
    // A statement is two events: its command, carrying the decision, then its result.
    const session = gw.events.filter((e) => e.session === first.session);
    const command = session.find((e) => e.seq === first.commandSeq)!;
    expect(command).toMatchObject({ type: 'command', decision: { action: 'allow' } });
    expect(session.find((e) => e.seq === command.seq + 1)).toBe(first);
    expect(session.some((e) => e.type === 'decision')).toBe(false);
  });

  it('runs parameterised queries through the extended protocol, binary results intact', async () => {
    await withClient(async (c) => {
      const r = await c.query('SELECT id, name, data FROM items WHERE id = $1', [7]);
      expect(r.rows[0].name).toBe('item 7');
      expect(Buffer.compare(r.rows[0].data as Buffer, Buffer.from([0, 0xff]))).toBe(0);
      const named = await c.query({
        name: 'by-id',
        text: 'SELECT name FROM items WHERE id = $1',
        values: [9],
      });
      const again = await c.query({
        name: 'by-id',
        text: 'SELECT name FROM items WHERE id = $1',
        values: [10],
      });
      expect([named.rows[0].name, again.rows[0].name]).toEqual(['item 9', 'item 10']);
      const binary = await c.query({
        text: 'SELECT $1::int4 AS n',
        values: [5],
        binary: true,
      } as pg.QueryConfig);
      expect(binary.rows[0].n).toBe(5);
    });
    const cmd = gw.events.find(
      (e) =>
        e.type === 'command' &&
        (e.text as string).includes('WHERE id = $1') &&
        (e.detail as { params: unknown[] }).params[0] === '10',
    );
    expect(cmd?.detail).toMatchObject({
      database: 'app',
      user: 'devin',
      statementName: 'by-id',
      params: ['10'],
    });
  });

  it('pipelines many queued queries in order', async () => {
    await withClient(async (c) => {
      const queries = Array.from({ length: 200 }, (_, i) =>
        i % 2 ? c.query('SELECT $1::int AS i', [i]) : c.query(`SELECT ${i} AS i`),
      );
      const rows = await Promise.all(queries);
      expect(rows.map((r) => Number(r.rows[0].i))).toEqual(Array.from({ length: 200 }, (_, i) => i));
    });
  });

  it('denies with 42501 and the rule name; the session stays usable, in simple and extended protocols', async () => {
    await withClient(async (c) => {
      await expect(c.query('DROP TABLE items')).rejects.toMatchObject({
        code: '42501',
        message: 'agentgate: denied by rule no-ddl-drops',
      });
      await expect(c.query('SELECT * FROM secrets WHERE v = $1', ['x'])).rejects.toMatchObject({
        code: '42501',
        message: 'agentgate: denied by rule no-secrets',
      });
      // Pipelined: allowed, denied, allowed — each answered in order.
      const outcomes = await Promise.allSettled([
        c.query('SELECT 1 AS ok'),
        c.query('TRUNCATE items'),
        c.query('SELECT $1::text AS ok', ['two']),
        c.query('DROP TABLE items', []),
        c.query('SELECT 3 AS ok'),
      ]);
      expect(
        outcomes.map((o) =>
          o.status === 'fulfilled' ? o.value.rows[0].ok : (o.reason as { code: string }).code,
        ),
      ).toEqual([1, '42501', 'two', '42501', 3]);
      expect((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(20);
      // Inside a transaction block a denial acts like any error there: the block is aborted, nothing of it commits.
      await c.query('BEGIN');
      await c.query("INSERT INTO scratch VALUES ('before the denial')");
      await expect(c.query('DROP TABLE items')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      expect((await c.query('COMMIT')).command).toBe('ROLLBACK');
      expect(
        (await c.query("SELECT count(*)::int AS n FROM scratch WHERE v = 'before the denial'")).rows[0].n,
      ).toBe(0);
    });
    const decisions = gw.events.filter((e) => recordedDecision(e)?.action === 'deny');
    expect(decisions.length).toBeGreaterThanOrEqual(5);
  });

  it('denies unparseable SQL instead of passing it', async () => {
    await withClient(async (c) => {
      await expect(c.query('SELEC 1 FROM')).rejects.toMatchObject({ code: '42501' });
      expect((await c.query('SELECT 1 AS x')).rows[0].x).toBe(1);
    });
  });

  it('decides a named Parse by its text when it is executed later under that name', async () => {
    await withClient(async (c) => {
      await expect(c.query({ name: 'sneaky', text: 'DROP TABLE scratch' })).rejects.toMatchObject({
        code: '42501',
      });
      await expect(c.query({ name: 'sneaky', text: 'DROP TABLE scratch' })).rejects.toMatchObject({
        code: '42501',
      });
    });
    expect(
      await server.psql(['-d', 'app', '-tAc', "SELECT count(*) FROM pg_tables WHERE tablename = 'scratch'"]),
    ).toBe('1\n');
  });

  it('copies in and out (COPY FROM STDIN / TO STDOUT with psql) and records the data', async () => {
    const env = { PGPASSWORD: gw.token('devin'), PGSSLMODE: 'disable' };
    const out = await runPsql(gw.host, gw.port, ['-U', 'devin', '-d', 'app', '-qtA'], {
      env,
      input:
        'CREATE TEMP TABLE t (a int, b text);\n\\copy t from stdin\n1\tone\n2\ttwo\n\\.\n\\copy t to stdout\nSELECT count(*) FROM t;\n',
    });
    expect(out).toBe('1\tone\n2\ttwo\n2\n');
    const io = gw.events.filter((e) => e.type === 'io' && e.channel === 'copy');
    const text = (dir: string) =>
      io
        .filter((e) => e.direction === dir)
        .map((e) => Buffer.from(e.data as string, 'base64').toString())
        .join('');
    expect(text('in')).toContain('1\tone\n');
    expect(text('out')).toBe('1\tone\n2\ttwo\n');
  });
});

describe('postgres listener: held for approval', () => {
  it('holds a statement and the messages behind it until approved; other sessions run on', async () => {
    const broker = new ManualBroker();
    held = await startPgGateway(server, {
      broker,
      rules: [
        {
          name: 'deletes-need-review',
          protocol: 'postgres',
          match: { commands: ['DELETE'], tables: ['items'] },
          action: 'approve',
        },
      ],
    });
    const connect = async () => {
      const c = new pg.Client({
        host: held!.host,
        port: held!.port,
        user: 'devin',
        database: 'app',
        password: held!.token('devin'),
      });
      await c.connect();
      return c;
    };
    const a = await connect();
    const b = await connect();
    const order: string[] = [];
    const deleting = a
      .query('DELETE FROM items WHERE id = 20')
      .then((r) => (order.push('delete'), r.rowCount));
    const after = a
      .query('SELECT count(*)::int AS n FROM items')
      .then((r) => (order.push('after'), r.rows[0].n));
    await broker.next(1);
    // The other session is not blocked by the pending approval.
    expect((await b.query('SELECT 5 AS five')).rows[0].five).toBe(5);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(order).toEqual([]);
    broker.pending[0]!.settle('approved');
    expect(await deleting).toBe(1);
    expect(await after).toBe(19);
    expect(order).toEqual(['delete', 'after']);
    // Rejected: 42501 naming the approval; the session goes on.
    const rejected = a.query('DELETE FROM items WHERE id = 19');
    await broker.next(2);
    broker.pending[1]!.settle('rejected');
    await expect(rejected).rejects.toMatchObject({ code: '42501' });
    // A CancelRequest withdraws a pending approval.
    const cancelled = a.query('DELETE FROM items WHERE id = 18');
    await broker.next(3);
    const { processID, secretKey } = a as unknown as { processID: number; secretKey: number };
    const req = Buffer.alloc(16);
    req.writeInt32BE(16, 0);
    req.writeInt32BE(80877102, 4);
    req.writeInt32BE(processID, 8);
    req.writeInt32BE(secretKey, 12);
    (await import('node:net')).connect(held.port, held.host).end(req);
    await expect(cancelled).rejects.toMatchObject({ code: '42501' });
    expect((await a.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(19);
    await a.end();
    await b.end();
  });

  it('passes NOTICE and NOTIFY through', async () => {
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'devin',
      database: 'app',
      password: gw.token('devin'),
    });
    await c.connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    const notified = new Promise<string>((resolve) => c.on('notification', (n) => resolve(n.payload ?? '')));
    await c.query('LISTEN agentgate_test');
    await c.query(`DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$`);
    await server.psql(['-d', 'app', '-c', "NOTIFY agentgate_test, 'ping'"]);
    expect(await notified).toBe('ping');
    expect(notices).toContain('hello from plpgsql');
    await c.end();
  });
});
