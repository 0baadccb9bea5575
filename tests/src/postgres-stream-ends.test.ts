/**
 * The PostgreSQL relay at the end of a session, against a real PostgreSQL and raw protocol clients, each compared
 * with a direct connection: statements pipelined before Terminate are answered (the server answers everything it
 * read before Terminate, then closes), and their results are recorded, also when the client closes right after
 * Terminate as libpq's PQfinish does. And what already held, kept so: a COPY FROM STDIN the client fails or
 * abandons in the middle commits nothing, and a denied Execute in the middle of a one-Sync pipeline fails it the way
 * a server error there would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ApprovalBroker, ApprovalRequestInput, ApprovalSettlement } from '@agentgate/core';
import net from 'node:net';
import { RawClient, errorFields, typed } from './harness/pg-raw-client.js';
import { startPgGateway, startPostgres, type PgGateway, type TestPostgres } from './harness/postgres.js';

let server: TestPostgres;
let gw: PgGateway;
let held: PgGateway | undefined;

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server, {
    rules: [{ name: 'no-drops', protocol: 'postgres', match: { commands: ['DROP'] }, action: 'deny' }],
  });
  await server.psql(['-d', 'app'], { input: 'CREATE TABLE ends (n int); GRANT ALL ON ends TO app;' });
}, 60_000);

afterAll(async () => {
  await held?.stop();
  await gw?.stop();
  await server?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const query = (sql: string): Buffer => typed('Q', Buffer.from(sql + '\0'));
const TERMINATE = typed('X', Buffer.alloc(0));
const cstr = (text: string): Buffer => Buffer.from(text + '\0');
const int16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
/** Parse, Bind and Execute of `sql` on the unnamed statement and portal. */
const extended = (sql: string): Buffer =>
  Buffer.concat([
    typed('P', Buffer.concat([cstr(''), cstr(sql), int16(0)])),
    typed('B', Buffer.concat([cstr(''), cstr(''), int16(0), int16(0), int16(0)])),
    typed('E', Buffer.concat([cstr(''), Buffer.alloc(4)])),
  ]);
const SYNC = typed('S', Buffer.alloc(0));
const copyRows = (from: number, n: number): Buffer =>
  typed('d', Buffer.from(Array.from({ length: n }, (_, i) => `${from + i}\n`).join('')));
const inserts = (from: number): Buffer[] =>
  Array.from({ length: 200 }, (_, i) => query(`INSERT INTO ends VALUES (${from + i})`));

/** A raw client logged in directly (trust, as the superuser) or through the gateway as `identity`. */
async function login(target: 'direct' | 'gateway', identity = 'devin'): Promise<RawClient> {
  if (target === 'gateway') {
    const c = await RawClient.open(gw);
    expect((await c.login(gw.token(identity))).at(-1)?.[0]).toBe('Z');
    return c;
  }
  const c = await RawClient.open({ host: server.host, port: server.port });
  const body = Buffer.from('\0\x03\0\0user\0postgres\0database\0app\0\0', 'latin1');
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  c.socket.write(Buffer.concat([len, body]));
  await c.until('Z');
  return c;
}

/** The types of the messages received until the server closed, as one string ('D' rows counted apart). */
async function answers(c: RawClient): Promise<{ rows: number; others: string }> {
  let rows = 0;
  let others = '';
  for (let m = await c.next(); m !== null; m = await c.next()) {
    if (m[0] === 'D') rows++;
    else others += m[0];
  }
  return { rows, others };
}

/** How many rows of `ends` match `where`. */
async function count(where: string): Promise<number> {
  const out = await server.psql(['-d', 'app', '-At', '-c', `SELECT count(*) FROM ends WHERE ${where}`]);
  return Number(out.trim());
}

/** The events of `identity`'s sessions once its session ended (the gateway records it when the server closed). */
async function endedSession(identity: string): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 50; i++) {
    const ids = new Set(gw.events.filter((e) => e['identity'] === identity).map((e) => e.session));
    const events = gw.events.filter((e) => ids.has(e.session)) as Record<string, unknown>[];
    if (events.some((e) => e.type === 'session.end')) return events;
    await sleep(100);
  }
  throw new Error(`no session.end for ${identity}`);
}

describe('statements pipelined before Terminate', () => {
  it('a large result is answered in full, as by the server, and recorded', async () => {
    const sql = 'SELECT g FROM generate_series(1, 200000) g';
    const direct = await login('direct');
    direct.socket.write(Buffer.concat([query(sql), TERMINATE]));
    const expected = await answers(direct);
    expect(expected).toEqual({ rows: 200_000, others: 'TCZ' });
    const c = await login('gateway', 'big-result');
    c.socket.write(Buffer.concat([query(sql), TERMINATE]));
    expect(await answers(c)).toEqual(expected);
    const events = await endedSession('big-result');
    expect(events.find((e) => e.type === 'result')).toMatchObject({
      commandTag: 'SELECT 200000',
      rowCount: 200_000,
    });
    expect(events.at(-1)).toMatchObject({ type: 'session.end' });
  }, 30_000);

  it('every statement is answered and recorded; messages after Terminate are ignored, as by the server', async () => {
    const after = query('INSERT INTO ends VALUES (-1)');
    const direct = await login('direct');
    direct.socket.write(Buffer.concat([...inserts(0), TERMINATE, after]));
    const expected = await answers(direct);
    expect(expected.others).toBe('CZ'.repeat(200));
    const c = await login('gateway', 'inserts');
    c.socket.write(Buffer.concat([...inserts(1000), TERMINATE, after]));
    expect(await answers(c)).toEqual(expected);
    expect(await count('n >= 1000 AND n < 1200')).toBe(200);
    expect(await count('n = -1')).toBe(0);
    const events = await endedSession('inserts');
    expect(events.filter((e) => e.type === 'command')).toHaveLength(200);
    expect(events.filter((e) => e.type === 'result' && e['commandTag'] === 'INSERT 0 1')).toHaveLength(200);
  }, 30_000);

  it('a client that closes right after Terminate still has the results recorded', async () => {
    const c = await login('gateway', 'finish');
    c.socket.end(Buffer.concat([query('SELECT pg_sleep(0.3), 7 AS seven'), TERMINATE]));
    const events = await endedSession('finish');
    expect(events.find((e) => e.type === 'result')).toMatchObject({
      commandTag: 'SELECT 1',
      rows: [['', '7']],
    });
    expect(events.at(-1)).toMatchObject({ type: 'session.end', cause: 'client-left' });
  }, 30_000);

  it('a client gone without reading a large result: the relay does not wait for it to drain', async () => {
    const c = await login('gateway', 'gone');
    // Far more than the socket buffers hold: the gateway stops reading the server until this client drains.
    c.socket.pause();
    c.socket.write(Buffer.concat([query('SELECT g FROM generate_series(1, 2000000) g'), TERMINATE]));
    await sleep(1000);
    c.socket.destroy();
    const events = await endedSession('gone');
    expect(events.find((e) => e.type === 'result')).toMatchObject({ rowCount: 2_000_000 });
  }, 30_000);
});

describe('what already held at the ends of COPY and pipelines', () => {
  /** The message types up to the ReadyForQuery after `bytes`, and then the rows of `where`. */
  async function exchange(target: 'direct' | 'gateway', bytes: Buffer, where: string) {
    const c = await login(target);
    c.socket.write(bytes);
    const types = (await c.until('Z')).map(([t]) => t).join('');
    c.socket.end(TERMINATE);
    return { types, rows: await count(where) };
  }

  it('a COPY FROM STDIN failed by the client (CopyFail) in the middle commits nothing, as directly', async () => {
    const copy = (from: number): Buffer =>
      Buffer.concat([
        query('COPY ends FROM STDIN'),
        copyRows(from, 50_000),
        copyRows(from + 50_000, 50_000),
        typed('f', cstr('changed my mind')),
      ]);
    const direct = await exchange('direct', copy(100_000), 'n >= 100000 AND n < 200000');
    expect(direct).toEqual({ types: 'GEZ', rows: 0 });
    expect(await exchange('gateway', copy(200_000), 'n >= 200000 AND n < 300000')).toEqual(direct);
  }, 30_000);

  it('a COPY FROM STDIN abandoned (a FIN, no CopyDone) commits nothing, as directly', async () => {
    for (const [target, from] of [
      ['direct', 300_000],
      ['gateway', 400_000],
    ] as const) {
      const c = await login(target);
      c.socket.end(Buffer.concat([query('COPY ends FROM STDIN'), copyRows(from, 50_000)]));
      await answers(c);
      await sleep(300);
      expect(await count(`n >= ${from} AND n < ${from + 50_000}`)).toBe(0);
    }
  }, 30_000);

  it('a denied Execute in a one-Sync pipeline fails it as a server error there does: nothing of it commits', async () => {
    const batch = (first: number, middle: string): Buffer =>
      Buffer.concat([
        extended(`INSERT INTO ends VALUES (${first})`),
        extended(middle),
        extended(`INSERT INTO ends VALUES (${first + 1})`),
        SYNC,
      ]);
    // A division by zero when it runs (a constant one would fail already at Bind, where it is planned).
    const direct = await exchange(
      'direct',
      batch(500_000, 'SELECT 1 / (random() * 0)::int'),
      'n >= 500000 AND n < 500002',
    );
    expect(direct).toEqual({ types: '12C12EZ', rows: 0 });
    const through = await exchange(
      'gateway',
      batch(600_000, 'DROP TABLE ends'),
      'n >= 600000 AND n < 600002',
    );
    expect(through).toEqual(direct);
  }, 30_000);
});

/** Holds every approval until it is withdrawn, telling the engine it waits (as the real broker does). */
class NeverApproves implements ApprovalBroker {
  requested = 0;
  request(input: ApprovalRequestInput, signal?: AbortSignal): Promise<ApprovalSettlement> {
    this.requested++;
    const id = `held-${this.requested}`;
    const message = `agentgate: waiting for approval ${id}`;
    input.onWaiting?.({
      approvalId: id,
      rule: 'deletes-need-review',
      expiresAt: Date.now() + 60_000,
      notice: 1,
      message,
    });
    return new Promise((resolve) =>
      signal?.addEventListener('abort', () => resolve({ id, outcome: 'cancelled' }), {
        once: true,
      }),
    );
  }
}

describe('a CancelRequest for a statement held for approval', () => {
  it('withdraws it alone: what came before and after it in the pipeline runs and is answered in order', async () => {
    const broker = new NeverApproves();
    held = await startPgGateway(server, {
      broker,
      rules: [
        {
          name: 'deletes-need-review',
          protocol: 'postgres',
          match: { commands: ['DELETE'] },
          action: 'approve',
        },
      ],
    });
    const c = await RawClient.open(held);
    const key = (await c.login(held.token('devin'))).find(([t]) => t === 'K')![1];
    c.socket.write(
      Buffer.concat([
        query('INSERT INTO ends VALUES (700000)'),
        query('DELETE FROM ends WHERE n = 700000'),
        query('INSERT INTO ends VALUES (700001)'),
      ]),
    );
    // Notices (N: the held statement's waiting message) may come at any point; the answers are what count.
    const answered = (messages: [string, Buffer][]): string =>
      messages
        .map(([t]) => t)
        .filter((t) => t !== 'N')
        .join('');
    expect(answered(await c.until('Z'))).toBe('CZ');
    while (broker.requested === 0) await sleep(20);
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    key.copy(cancel, 8, 0, 8);
    const side = net.connect(held.port, held.host);
    side.on('error', () => undefined);
    side.end(cancel);
    const rest = [...(await c.until('Z')), ...(await c.until('Z'))];
    // The held statement's error, then the next statement's answer.
    expect(answered(rest)).toBe('EZCZ');
    const error = errorFields(rest.find(([t]) => t === 'E')![1]);
    expect(error['M']).toMatch(/^agentgate: approval held-1 cancelled/);
    expect(await count('n >= 700000 AND n < 700002')).toBe(2);
    c.socket.end(TERMINATE);
  }, 30_000);
});
