/**
 * The postgres listener against clients that misbehave, with a real PostgreSQL 15: limits before authentication
 * (64 KiB messages, the login timeout), malformed message bodies, the gateway's own upstream credentials refused,
 * and refused client credentials logged and counted.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import {
  noopMetrics,
  type AuthFailureReason,
  type Logger,
  type ProtocolMetrics,
  type SessionMetrics,
} from '@agentgate/core';
import { RawClient, errorFields, typed } from './harness/pg-raw-client.js';
import { startTestGateway } from './harness/gateway.js';
import {
  PASSWORD,
  startPgGateway,
  startPostgres,
  type PgGateway,
  type TestPostgres,
} from './harness/postgres.js';

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[], base: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}): void =>
      void lines.push({ level, msg, fields: { ...base, ...fields } });
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => recordingLogger(lines, { ...base, ...fields }),
  };
}

class RecordingMetrics {
  readonly authFailures: { listener: string; protocol: string; reason: AuthFailureReason }[] = [];
  readonly upstreamErrors: { listener: string; kind: string }[] = [];
  readonly metrics: ProtocolMetrics & SessionMetrics = {
    ...noopMetrics,
    authFailed: (listener, protocol, reason) => void this.authFailures.push({ listener, protocol, reason }),
    upstreamError: (listener, _protocol, kind) => void this.upstreamErrors.push({ listener, kind }),
  };
}

let server: TestPostgres;
let gw: PgGateway;
const logs: LogLine[] = [];
const counted = new RecordingMetrics();
const gateways: PgGateway[] = [];

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server, {
    // The default message limit (64 MiB): only the limit before authentication stands between a client and memory.
    listener: { maxMessageBytes: 64 * 1024 * 1024, loginTimeoutMs: 1500 },
    log: recordingLogger(logs),
    metrics: counted.metrics,
  });
  gateways.push(gw);
}, 60_000);

afterAll(async () => {
  for (const g of gateways) await g.stop();
  await server?.stop();
});

function client(g: PgGateway, password = g.token('devin')): pg.Client {
  return new pg.Client({ host: g.host, port: g.port, user: 'devin', database: 'app', password });
}

/** Startup packet for `user` on `app`. */
function startupPacket(user = 'devin'): Buffer {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from(`user\0${user}\0database\0app\0\0`)]);
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
}

/**
 * Sends a password message announcing `bytes` and streams its body in 64 KiB pieces, respecting backpressure so
 * the sending side holds no more than one piece; stops when the gateway closes the connection.
 */
async function floodPassword(raw: RawClient, bytes: number): Promise<number> {
  const head = Buffer.alloc(5);
  head[0] = 'p'.charCodeAt(0);
  head.writeInt32BE(bytes + 4, 1);
  raw.socket.write(head);
  const piece = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  while (sent < bytes && !raw.closed && !raw.socket.destroyed) {
    if (!raw.socket.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          raw.socket.off('drain', done);
          raw.socket.off('close', done);
          resolve();
        };
        raw.socket.on('drain', done);
        raw.socket.on('close', done);
      });
    }
    sent += piece.length;
  }
  return sent;
}

describe('postgres listener: limits before authentication', () => {
  it('refuses password messages over 64 KiB with FATAL 08P01 and stays within bounded memory', async () => {
    global.gc?.();
    const before = process.memoryUsage();
    const raws = await Promise.all(Array.from({ length: 10 }, () => RawClient.open(gw)));
    for (const raw of raws) raw.socket.write(startupPacket());
    for (const raw of raws) expect((await raw.next())?.[0]).toBe('R');
    const sent = await Promise.all(raws.map((raw) => floodPassword(raw, 55 * 1024 * 1024)));
    for (const raw of raws) {
      const error = await raw.next();
      expect(error?.[0]).toBe('E');
      const fields = errorFields(error![1]);
      expect(fields).toMatchObject({ S: 'FATAL', C: '08P01' });
      expect(fields.M).toMatch(
        /message of 57671685 bytes before authentication exceeds the limit of 65536 bytes/,
      );
      expect(await raw.next()).toBeNull();
    }
    // The gateway closed each connection long before its 55 MiB were sent.
    for (const n of sent) expect(n).toBeLessThan(55 * 1024 * 1024);
    const after = process.memoryUsage();
    expect(after.rss - before.rss).toBeLessThan(50 * 1024 * 1024);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(50 * 1024 * 1024);
    // Normal clients are served meanwhile and after.
    const c = client(gw);
    await c.connect();
    expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await c.end();
  }, 120_000);

  it('closes a half-sent startup and a login that never sends its password at the login timeout', async () => {
    const halfStartup = await RawClient.open(gw);
    halfStartup.socket.write(startupPacket().subarray(0, 6));
    const noPassword = await RawClient.open(gw);
    noPassword.socket.write(startupPacket());
    expect((await noPassword.next())?.[0]).toBe('R');
    const started = Date.now();
    // A normal client is served while the two wait.
    const c = client(gw);
    await c.connect();
    expect((await c.query('SELECT 2 AS two')).rows[0].two).toBe(2);
    for (const raw of [halfStartup, noPassword]) {
      const error = await raw.next();
      expect(error?.[0]).toBe('E');
      expect(errorFields(error![1])).toMatchObject({
        S: 'FATAL',
        C: '08P01',
        M: 'agentgate: canceling authentication due to timeout (1.5s)',
      });
      expect(await raw.next()).toBeNull();
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    // An authenticated session outlives the login timeout.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await c.query('SELECT 3 AS three')).rows[0].three).toBe(3);
    await c.end();
    expect(logs.filter((l) => l.msg === 'postgres login timed out').map((l) => l.level)).toEqual([
      'info',
      'info',
    ]);
  }, 60_000);
});

describe('postgres listener: malformed messages', () => {
  const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
  const int16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
  const int32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const cases: [string, Buffer, RegExp][] = [
    [
      'Query without its NUL',
      typed('Q', Buffer.from('SELECT 1')),
      /invalid Query message: the query string has no terminating NUL/,
    ],
    [
      'Query with bytes after its NUL',
      typed('Q', Buffer.from('SELECT 1\0xx')),
      /invalid Query message: 2 bytes after/,
    ],
    [
      'Parse without NUL',
      typed('P', Buffer.from('\0SELECT 1')),
      /invalid Parse message: the query string has no terminating NUL/,
    ],
    [
      'Parse without its parameter count',
      typed('P', Buffer.concat([cstr(''), cstr('SELECT 1')])),
      /invalid Parse message: the parameter type count runs past/,
    ],
    [
      'Bind cut off inside a parameter',
      typed(
        'B',
        Buffer.concat([
          cstr(''),
          cstr(''),
          int16(0),
          int16(2),
          int32(1),
          Buffer.from('1'),
          int32(10),
          Buffer.from('12'),
        ]),
      ),
      /invalid Bind message: parameter 2 runs past the end/,
    ],
    [
      'Bind with a negative parameter count',
      typed('B', Buffer.concat([cstr(''), cstr(''), int16(0), int16(-1)])),
      /invalid Bind message: the parameter count is negative/,
    ],
    [
      'Bind with more formats than parameters',
      typed(
        'B',
        Buffer.concat([
          cstr(''),
          cstr(''),
          int16(2),
          int16(0),
          int16(0),
          int16(1),
          int32(1),
          Buffer.from('1'),
          int16(0),
        ]),
      ),
      /2 parameter formats for 1 parameters/,
    ],
    [
      'Execute without its row limit',
      typed('E', cstr('')),
      /invalid Execute message: the row limit runs past/,
    ],
    [
      'Close of an unknown kind',
      typed('C', Buffer.concat([Buffer.from('Z'), cstr('x')])),
      /invalid Close message: target kind 'Z'/,
    ],
    [
      'FunctionCall without its OID',
      typed('F', Buffer.from([0, 0])),
      /invalid FunctionCall message: the function OID runs past/,
    ],
  ];

  it.each(cases)(
    'ends the connection on a %s with FATAL 08P01, a warn line and no internal error',
    async (_name, bytes, message) => {
      const raw = await RawClient.open(gw);
      expect((await raw.login(gw.token('devin'))).at(-1)?.[0]).toBe('Z');
      const before = logs.length;
      raw.socket.write(bytes);
      const error = await raw.next();
      expect(error?.[0]).toBe('E');
      const fields = errorFields(error![1]);
      expect(fields).toMatchObject({ S: 'FATAL', C: '08P01' });
      expect(fields.M).toMatch(message);
      expect(await raw.next()).toBeNull();
      const lines = logs.slice(before);
      expect(lines.filter((l) => l.level === 'error')).toEqual([]);
      expect(lines.find((l) => l.msg === 'postgres protocol violation')?.level).toBe('warn');
    },
  );

  it('still serves well-formed clients after the malformed ones', async () => {
    const c = client(gw);
    await c.connect();
    expect((await c.query('SELECT $1::int + 1 AS n', [41])).rows[0].n).toBe(42);
    await c.end();
  });
});

describe('postgres listener: credentials', () => {
  it('answers a wrong upstream password with the gateway’s own 08006, logs the upstream’s words and counts it', async () => {
    const wrongLogs: LogLine[] = [];
    const wrongMetrics = new RecordingMetrics();
    const wrong = await startPgGateway(server, {
      listener: {
        name: 'pg-wrong',
        upstream: { host: server.host, port: server.port, user: 'app', password: 'wrong', database: 'app' },
      },
      log: recordingLogger(wrongLogs),
      metrics: wrongMetrics.metrics,
    });
    gateways.push(wrong);
    const c = client(wrong);
    const err = (await c.connect().then(
      () => undefined,
      (e: unknown) => e,
    )) as pg.DatabaseError | undefined;
    expect(err).toMatchObject({
      code: '08006',
      severity: 'FATAL',
      message:
        'agentgate: upstream login failed for listener pg-wrong; the operator must fix the upstream credentials',
    });
    expect(err?.message).not.toMatch(/password authentication failed/);
    const line = wrongLogs.find((l) => l.msg.startsWith('upstream login failed'));
    expect(line?.level).toBe('error');
    expect(line?.fields).toMatchObject({ listener: 'pg-wrong', sqlstate: '28P01', upstreamUser: 'app' });
    expect(String(line?.fields['upstreamMessage'])).toMatch(/password authentication failed for user "app"/);
    expect(wrongMetrics.upstreamErrors).toEqual([{ listener: 'pg-wrong', kind: 'login' }]);
    // The client's own credential was fine: no authentication failure is counted against it.
    expect(wrongMetrics.authFailures).toEqual([]);
  });

  it('logs and counts a refused token and an identity outside `allow`', async () => {
    const before = counted.authFailures.length;
    await expect(client(gw, 'not-a-token').connect()).rejects.toMatchObject({ code: '28P01' });
    await expect(
      new pg.Client({
        host: gw.host,
        port: gw.port,
        user: 'eve',
        database: 'app',
        password: gw.token('eve', ['outsiders']),
      }).connect(),
    ).rejects.toMatchObject({ code: '28000' });
    expect(counted.authFailures.slice(before)).toEqual([
      { listener: 'pg', protocol: 'postgres', reason: 'bad-token' },
      { listener: 'pg', protocol: 'postgres', reason: 'not-allowed' },
    ]);
    const lines = logs.filter((l) => l.msg === 'postgres authentication failed');
    expect(lines.slice(-2).map((l) => [l.level, l.fields['reason'], l.fields['source']])).toEqual([
      ['info', 'bad-token', '127.0.0.1'],
      ['info', 'not-allowed', '127.0.0.1'],
    ]);
    expect(JSON.stringify(lines)).not.toContain('not-a-token');
  });
});

describe('unauthenticated connections (the listener server, through the real composition root)', () => {
  it('closes a source’s connections over maxUnauthenticatedPerSource; one that logs in frees its slot', async () => {
    const full = await startTestGateway(
      `
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    maxUnauthenticatedPerSource: 3
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
`,
      { env: { PG_PASSWORD: PASSWORD } },
    );
    try {
      const addr = full.address('db') as { host: string; port: number };
      const open = (): { socket: Socket; received: () => Buffer; closed: Promise<void> } => {
        const socket = connect(addr);
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', () => undefined);
        const closed = new Promise<void>((r) => socket.on('close', () => r()));
        return { socket, received: () => Buffer.concat(chunks), closed };
      };
      // Three connections that sent their startup and sit at the password prompt: each still counts.
      const held = [open(), open(), open()];
      for (const c of held) c.socket.write(startupPacket());
      for (const c of held) await waitUntil(() => c.received().length > 0);
      const refused = open();
      await refused.closed;
      expect(refused.received().length).toBe(0);
      // One of them logs in (its password message carries the token): its slot is free again.
      const token = Buffer.from(`${await full.token('devin', ['agents'])}\0`);
      const password = Buffer.alloc(5);
      password.write('p');
      password.writeInt32BE(4 + token.length, 1);
      const before = held[0]!.received().length;
      held[0]!.socket.write(Buffer.concat([password, token]));
      // AuthenticationOk ('R', 0) and the rest of the login follow.
      await waitUntil(() => held[0]!.received().subarray(before).includes(Buffer.from('Z\0\0\0\x05')));
      const admitted = open();
      admitted.socket.write(startupPacket());
      await waitUntil(() => admitted.received().length > 0);
      expect(admitted.received()[0]).toBe('R'.charCodeAt(0));
      for (const c of [...held, admitted]) c.socket.destroy();
    } finally {
      await full.stop();
    }
  }, 30_000);
});

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
