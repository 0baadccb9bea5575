/**
 * The postgres listener's connection handling against a real PostgreSQL 15: client authentication (token as the
 * password), upstream authentication methods, TLS, startup refusals, cancel, malformed input, many clients, pgbench.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { RawClient, errorFields, typed } from './harness/pg-raw-client.js';
import {
  runPsql,
  startPgGateway,
  startPostgres,
  type PgGateway,
  type TestPostgres,
} from './harness/postgres.js';

const run = promisify(execFile);
let server: TestPostgres;
let gw: PgGateway;
const gateways: PgGateway[] = [];

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server, {
    rules: [
      { name: 'no-drops', protocol: 'postgres', match: { commands: ['DROP'] }, action: 'deny' },
      {
        name: 'allow-fastpath-abs',
        protocol: 'postgres',
        match: { commands: ['FUNCTION CALL'], functions: ['1397'] },
        action: 'allow',
      },
    ],
    listener: { maxMessageBytes: 64 * 1024 },
  });
  gateways.push(gw);
}, 60_000);

afterAll(async () => {
  for (const g of gateways) await g.stop();
  await server?.stop();
});

async function connect(g: PgGateway, opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({
    host: g.host,
    port: g.port,
    user: 'devin',
    database: 'app',
    password: g.token('devin'),
    ...opts,
  });
  await c.connect();
  return c;
}

describe('postgres listener: client authentication', () => {
  it('refuses a bad token with FATAL 28P01 and an identity outside `allow` with 28000', async () => {
    await expect(connect(gw, { password: 'not-a-token' })).rejects.toMatchObject({ code: '28P01' });
    await expect(connect(gw, { password: gw.token('eve', ['visitors']) })).rejects.toMatchObject({
      code: '28000',
    });
  });

  it('refuses the startup parameters options and replication, and non-UTF8 client_encoding', async () => {
    for (const params of [
      { options: '-c search_path=evil' },
      { replication: 'database' },
      { client_encoding: 'SJIS' },
      { standard_conforming_strings: 'off' },
    ]) {
      const raw = await RawClient.open(gw);
      const [first] = await raw.login(gw.token('devin'), params);
      expect(first?.[0]).toBe('E');
      expect(errorFields(first![1]).C).toBe('0A000');
      expect(await raw.next()).toBeNull();
    }
  });

  it('reads startup setting names as the server does, case-insensitively, and refuses a role set at startup', async () => {
    await server.psql(['-d', 'app'], {
      input:
        'CREATE ROLE boss NOLOGIN; GRANT boss TO app; CREATE TABLE boss_only (x int); ' +
        'ALTER TABLE boss_only OWNER TO boss; REVOKE ALL ON boss_only FROM PUBLIC; CREATE TABLE keep_me (x int);',
    });
    // As SET ROLE, which rules decide, a startup `role` is a role switch; the server would take ROLE as role.
    for (const params of [{ role: 'boss' }, { ROLE: 'boss' }, { Session_Authorization: 'boss' }]) {
      const raw = await RawClient.open(gw);
      const [first] = await raw.login(gw.token('devin'), params);
      expect([params, first?.[0], first && errorFields(first[1]).C]).toEqual([params, 'E', '0A000']);
      raw.socket.destroy();
    }
    // With standard_conforming_strings off the server reads `'a\' ; SELECT '` as one string, so the DROP that the
    // gateway (strings as with it on) saw inside a string literal would run.
    const raw = await RawClient.open(gw);
    const [first] = await raw.login(gw.token('devin'), { STANDARD_CONFORMING_STRINGS: 'off' });
    if (first?.[0] !== 'E') {
      raw.socket.write(typed('Q', Buffer.from("SELECT 'a\\' ; SELECT ' ; DROP TABLE keep_me; -- '\0")));
      await raw.until('Z');
    }
    raw.socket.destroy();
    expect(first?.[0]).toBe('E');
    expect(await server.psql(['-d', 'app', '-tAc', "SELECT to_regclass('keep_me') IS NOT NULL"])).toBe('t\n');
  });

  it('refuses cleartext passwords over non-loopback connections without TLS unless allowCleartext', async () => {
    const remote = await startPgGateway(server, { remote: true });
    gateways.push(remote);
    await expect(connect(remote)).rejects.toMatchObject({ code: '28000' });
    const allowed = await startPgGateway(server, { remote: true, listener: { allowCleartext: true } });
    gateways.push(allowed);
    const c = await connect(allowed);
    expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await c.end();
  });

  it('authenticates upstream with scram-sha-256, md5, cleartext password and trust', async () => {
    for (const user of ['app', 'app_md5', 'app_clear', 'app_trust']) {
      const g = await startPgGateway(server, {
        listener: {
          upstream: { host: server.host, port: server.port, user, password: 'app-secret', database: 'app' },
        },
      });
      gateways.push(g);
      const c = await connect(g);
      expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(user);
      // ParameterStatus is relayed from the upstream; BackendKeyData is the gateway's own.
      expect((c as unknown as { processID: number }).processID).toBeGreaterThan(0);
      await c.end();
    }
  });

  it('serves TLS when the listener has a certificate (psql sslmode=require)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-tls-'));
    try {
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ]);
      const g = await startPgGateway(server, {
        remote: true,
        listener: { tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') } },
      });
      gateways.push(g);
      const out = await runPsql(
        g.host,
        g.port,
        [
          '-U',
          'devin',
          '-d',
          'app',
          '-qtA',
          '-c',
          'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
        ],
        {
          env: { PGPASSWORD: g.token('devin'), PGSSLMODE: 'require' },
        },
      );
      expect(out).toBe('f\n'); // TLS ends at the gateway; the upstream hop is loopback
      const c = await connect(g, { ssl: { rejectUnauthorized: false } });
      expect((await c.query('SELECT 2 AS two')).rows[0].two).toBe(2);
      await c.end();
      // Without TLS, a non-local client may not send its token in cleartext.
      await expect(connect(g)).rejects.toMatchObject({ code: '28000' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('postgres listener: protocol robustness', () => {
  it('ends a connection that sends malformed frames with 08P01 and keeps serving others', async () => {
    const bad = [
      Buffer.from([0x7a, 0, 0, 0, 4]), // unknown type
      Buffer.from([0x51, 0, 0, 0, 1]), // bad length
      typed('Q', Buffer.alloc(100 * 1024, 0x41)), // over maxMessageBytes
    ];
    const survivor = await connect(gw);
    for (const bytes of bad) {
      const raw = await RawClient.open(gw);
      const login = await raw.login(gw.token('devin'));
      expect(login.at(-1)?.[0]).toBe('Z');
      raw.socket.write(bytes);
      const m = await raw.next();
      expect(m?.[0]).toBe('E');
      expect(errorFields(m![1]).C).toBe('08P01');
      expect(await raw.next()).toBeNull();
    }
    // Truncated: the client leaves mid-message; nothing breaks.
    const raw = await RawClient.open(gw);
    await raw.login(gw.token('devin'));
    raw.socket.end(typed('Q', Buffer.from('SELECT 1\0')).subarray(0, 8));
    expect(await raw.next()).toBeNull();
    expect((await survivor.query('SELECT 42 AS n')).rows[0].n).toBe(42);
    await survivor.end();
  });

  it('answers SSLRequest and GSSENCRequest with N when the listener has no TLS', async () => {
    const socket = net.connect(gw.port, gw.host);
    await new Promise((resolve) => socket.once('connect', resolve));
    const answers: Buffer[] = [];
    socket.on('data', (d: Buffer) => answers.push(d));
    socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
    socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(Buffer.concat(answers).toString()).toBe('NN');
    socket.destroy();
  });

  it('cancels a running pg_sleep through the gateway key', async () => {
    const c = await connect(gw);
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const started = Date.now();
    const sleeping = c.query('SELECT pg_sleep(20)');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cancel = net.connect(gw.port, gw.host);
    const req = Buffer.alloc(16);
    req.writeInt32BE(16, 0);
    req.writeInt32BE(80877102, 4);
    req.writeInt32BE(processID, 8);
    req.writeInt32BE(secretKey, 12);
    cancel.end(req);
    await expect(sleeping).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await c.end();
  });

  it('denies a fastpath FunctionCall unless a rule allows its OID', async () => {
    const raw = await RawClient.open(gw);
    await raw.login(gw.token('devin'));
    const call = (oid: number, arg: string): Buffer => {
      const a = Buffer.from(arg);
      const body = Buffer.alloc(4 + 2 + 2 + 4 + a.length + 2);
      body.writeInt32BE(oid, 0);
      body.writeInt16BE(0, 4);
      body.writeInt16BE(1, 6);
      body.writeInt32BE(a.length, 8);
      a.copy(body, 12);
      body.writeInt16BE(0, 12 + a.length);
      return typed('F', body);
    };
    raw.socket.write(call(1396, '-5')); // int8abs: no rule allows it
    const denied = await raw.until('Z');
    expect(denied.map((m) => m[0]).join('')).toBe('EZ');
    expect(errorFields(denied[0]![1]).C).toBe('42501');
    raw.socket.write(call(1397, '-5')); // int4abs (oid 1397) is allowed by allow-fastpath-abs
    const allowed = await raw.until('Z');
    expect(allowed.map((m) => m[0]).join('')).toBe('VZ');
    expect(allowed[0]![1].subarray(4).toString()).toBe('5');
    raw.socket.end(typed('X', Buffer.alloc(0)));
  });

  it('cannot be bypassed by re-preparing a statement name after DEALLOCATE or re-binding a portal name', async () => {
    await server.psql(['-d', 'app'], { input: 'SET ROLE app; CREATE TABLE bypass_target (v int);' });
    const cstr = (t: string) => Buffer.from(t + '\0');
    const parse = (name: string, text: string) =>
      typed('P', Buffer.concat([cstr(name), cstr(text), Buffer.from([0, 0])]));
    const bind = (portal: string, stmt: string) =>
      typed('B', Buffer.concat([cstr(portal), cstr(stmt), Buffer.from([0, 0, 0, 0, 0, 0])]));
    const execute = (portal: string) => typed('E', Buffer.concat([cstr(portal), Buffer.from([0, 0, 0, 0])]));
    const sync = typed('S', Buffer.alloc(0));
    const flush = typed('H', Buffer.alloc(0));
    const query = (text: string) => typed('Q', cstr(text));
    const raw = await RawClient.open(gw);
    await raw.login(gw.token('devin'));
    const types = async () =>
      (await raw.until('Z')).map((m) => (m[0] === 'E' ? `E${errorFields(m[1]).C}` : m[0])).join(',');
    raw.socket.write(Buffer.concat([parse('s', 'SELECT 1'), bind('', 's'), execute(''), sync]));
    expect(await types()).toBe('1,2,D,C,Z');
    raw.socket.write(query('DEALLOCATE s'));
    expect(await types()).toBe('C,Z');
    raw.socket.write(
      Buffer.concat([parse('s', 'DROP TABLE bypass_target'), bind('', 's'), execute(''), sync]),
    );
    expect(await types()).toBe('1,2,E42501,Z');
    // A named portal ends with its transaction; re-binding the name later is decided by the new text.
    raw.socket.write(Buffer.concat([parse('sel', 'SELECT 2'), bind('p', 'sel'), execute('p'), sync]));
    expect(await types()).toBe('1,2,D,C,Z');
    raw.socket.write(
      Buffer.concat([parse('drop', 'DROP TABLE bypass_target'), bind('p', 'drop'), execute('p'), sync]),
    );
    expect(await types()).toBe('1,2,E42501,Z');
    // One implicit transaction up to Sync: the INSERT before the denied statement is rolled back with it, as the
    // server does after any error in the pipeline; the client's unnamed statement is left alone.
    raw.socket.write(
      Buffer.concat([
        parse('', 'INSERT INTO bypass_target VALUES (7)'),
        bind('', ''),
        execute(''),
        parse('d', 'DROP TABLE bypass_target'),
        bind('', 'd'),
        execute(''),
        sync,
      ]),
    );
    expect(await types()).toBe('1,2,C,1,2,E42501,Z');
    // An error of the client's own before the denied Execute is what the client sees, as from the server.
    raw.socket.write(
      Buffer.concat([
        parse('', 'SELECT 1'),
        bind('', ''),
        execute(''),
        parse('bad', 'SELEC 1'),
        bind('', 'bad'),
        execute(''),
        sync,
      ]),
    );
    expect(await types()).toBe('1,2,D,C,E42601,Z');
    // A client that sends Flush (not Sync) after a denied Execute gets the error at once, as from the server.
    raw.socket.write(
      Buffer.concat([parse('', 'DROP TABLE bypass_target'), bind('', ''), execute(''), flush]),
    );
    const flushed = await raw.until('E');
    expect(flushed.map((m) => (m[0] === 'E' ? `E${errorFields(m[1]).C}` : m[0])).join(',')).toBe(
      '1,2,E42501',
    );
    raw.socket.write(sync);
    expect(await types()).toBe('Z');
    raw.socket.write(
      Buffer.concat([parse('', 'SELECT count(*) FROM bypass_target'), bind('', ''), execute(''), sync]),
    );
    const counted = await raw.until('Z');
    const row = counted.find((m) => m[0] === 'D')!;
    expect(row[1].subarray(6).toString()).toBe('0');
    raw.socket.end(typed('X', Buffer.alloc(0)));
    expect(
      await server.psql([
        '-d',
        'app',
        '-tAc',
        "SELECT count(*) FROM pg_tables WHERE tablename = 'bypass_target'",
      ]),
    ).toBe('1\n');
  });

  it('serves 100 concurrent clients', async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => connect(gw)));
    const results = await Promise.all(clients.map((c, i) => c.query('SELECT $1::int * 2 AS v', [i])));
    expect(results.map((r) => r.rows[0].v)).toEqual(Array.from({ length: 100 }, (_, i) => i * 2));
    await Promise.all(clients.map((c) => c.end()));
  });

  it('runs pgbench (simple and prepared) through the gateway', async () => {
    const env = { ...process.env, PGPASSWORD: gw.token('devin') };
    await run(
      'pgbench',
      ['-i', '-s', '1', '-q', '-h', server.host, '-p', String(server.port), '-U', 'app', 'app'],
      { env: { ...process.env, PGPASSWORD: 'app-secret' } },
    );
    for (const mode of ['simple', 'prepared']) {
      const { stdout } = await run(
        'pgbench',
        [
          '-n',
          '-S',
          '-M',
          mode,
          '-c',
          '4',
          '-j',
          '2',
          '-t',
          '200',
          '-h',
          gw.host,
          '-p',
          String(gw.port),
          '-U',
          'devin',
          'app',
        ],
        { env },
      );
      expect(stdout).toMatch(/number of transactions actually processed: 800\/800/);
      expect(stdout).toMatch(/number of failed transactions: 0/);
    }
  });
});
