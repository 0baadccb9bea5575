/**
 * A throwaway PostgreSQL cluster for tests: a copy of an initdb'd template (harness/pg-template.ts) in a temp dir,
 * run as the `postgres` user (the server refuses to run as root), listening on 127.0.0.1 and a free port, fsync off. Roles for every upstream auth method:
 *   app (password `app-secret`, scram-sha-256), app_md5 (md5), app_clear (password = cleartext), app_trust (trust).
 * Database `app`, owned by `app`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, chownSync, appendFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { copyTemplate } from './pg-template.js';

const run = promisify(execFile);

export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  readonly superuser: string;
  readonly dir: string;
  readonly socketDir: string;
  /** Run psql as the superuser (unless args name another -U) against this cluster; resolves with stdout. */
  psql(args: readonly string[], opts?: { input?: string; env?: Record<string, string> }): Promise<string>;
  /** Stop the server (fast shutdown) and keep the data directory, so `start()` can bring it back. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const PASSWORD = 'app-secret';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function pgBin(name: string): string {
  return `/usr/lib/postgresql/15/bin/${name}`;
}

/** What every cluster is a copy of (harness/pg-template.ts): initdb, the roles and database `app`. */
const templateSetup = {
  initdb: pgBin('initdb'),
  pgCtl: pgBin('pg_ctl'),
  initdbArgs: ['-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
  sql: [
    `
SET password_encryption = 'scram-sha-256';
CREATE ROLE app LOGIN PASSWORD '${PASSWORD}';
CREATE ROLE app_clear LOGIN PASSWORD '${PASSWORD}';
CREATE ROLE app_trust LOGIN;
SET password_encryption = 'md5';
CREATE ROLE app_md5 LOGIN PASSWORD '${PASSWORD}';
CREATE DATABASE app OWNER app;
GRANT ALL ON DATABASE app TO app_md5, app_clear, app_trust;
`,
    'GRANT ALL ON SCHEMA public TO PUBLIC;',
  ],
  psql: (socketDir: string, database: string, input: string) =>
    runPsql(socketDir, 5432, ['-U', 'postgres', '-d', database], { input }),
} as const;

async function postgresUid(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: g } = await run('id', ['-g', 'postgres']);
  return { uid: Number(stdout.trim()), gid: Number(g.trim()) };
}

/** Runs psql (no psqlrc, stop on error) against host:port; resolves with stdout, rejects with stderr. */
export function runPsql(
  host: string,
  port: number,
  args: readonly string[],
  o: { input?: string; env?: Record<string, string> } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(port), ...args], {
      env: { ...process.env, ...o.env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`psql exited ${code}: ${err}`)),
    );
    child.stdin.end(o.input ?? '');
  });
}

export async function startPostgres(
  opts: { maxConnections?: number; extraConf?: string } = {},
): Promise<TestPostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-pg-'));
  const { uid, gid } = await postgresUid();
  chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asPostgres = (cmd: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: dir });
  await copyTemplate({ ...templateSetup, uid, gid }, data);
  appendFileSync(
    path.join(data, 'postgresql.conf'),
    [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      `fsync = off`,
      `synchronous_commit = off`,
      `full_page_writes = off`,
      `max_connections = ${opts.maxConnections ?? 150}`,
      `shared_buffers = 32MB`,
      opts.extraConf ?? '',
      '',
    ].join('\n'),
  );
  // First match wins (pg_hba.conf): per-role methods for the upstream auth tests, scram for the rest.
  writeFileSync(
    path.join(data, 'pg_hba.conf'),
    [
      'local all all trust',
      'host all postgres 127.0.0.1/32 trust',
      'host all app_trust 127.0.0.1/32 trust',
      'host all app_md5 127.0.0.1/32 md5',
      'host all app_clear 127.0.0.1/32 password',
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
  );
  const start = async (): Promise<void> => {
    await asPostgres(pgBin('pg_ctl'), [
      '-D',
      data,
      '-l',
      path.join(dir, 'server.log'),
      '-w',
      '-t',
      '30',
      'start',
    ]);
  };
  await start();
  const psql = (
    args: readonly string[],
    o: { input?: string; env?: Record<string, string> } = {},
  ): Promise<string> =>
    runPsql('127.0.0.1', port, args.includes('-U') ? args : ['-U', 'postgres', ...args], o);
  let running = true;
  return {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    dir,
    socketDir: dir,
    psql,
    async kill() {
      await asPostgres(pgBin('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    async stop() {
      if (running)
        await asPostgres(pgBin('pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- an in-process postgres listener wired with the real gate and policy, an in-memory transcript ----

import type { Duplex } from 'node:stream';
import {
  AgentgateError,
  SHUTDOWN,
  createSessionLifecycles,
  matchesPrincipal,
  noMasking,
  noopMetrics,
  silentLogger,
  type Identity,
  type IdentityService,
  type PostgresListenerConfig,
  type RuleConfig,
  type SessionRecorder,
  type TranscriptWriter,
  type TranscriptEvent,
  type TranscriptEventType,
  type EngineDeps,
  type ApprovalBroker,
  type Logger,
  type ProtocolMetrics,
  type SessionMetrics,
  ReplaceableListenerAccess,
} from '@agentgate/core';
import { createGate, createPolicy } from '@agentgate/policy';
import { createPostgresEngine } from '@agentgate/postgres';

export type RecordedEvent = TranscriptEvent;

export interface PgGateway {
  readonly host: string;
  readonly port: number;
  readonly events: RecordedEvent[];
  /** What the in-memory transcript's recorders answer to ioBackpressure (a test holds COPY with it); none when unset. */
  readonly recording: { ioBackpressure: (() => Promise<void> | undefined) | undefined };
  /** A token the in-memory identity service accepts for `name` with `groups`. */
  token(name: string, groups?: string[]): string;
  stop(): Promise<void>;
}

export interface PgGatewayOptions {
  readonly rules?: RuleConfig[];
  readonly listener?: Partial<PostgresListenerConfig>;
  readonly broker?: ApprovalBroker;
  /** Treat connections as non-local (to test the cleartext refusal). */
  readonly remote?: boolean;
  /** A real transcript store (the benchmark); default: in memory, readable as `events`. */
  readonly transcript?: TranscriptWriter;
  /** Default: no metrics. */
  readonly metrics?: ProtocolMetrics & SessionMetrics;
  /** Default: silent. */
  readonly log?: Logger;
}

function memoryTranscript(events: RecordedEvent[], recording: PgGateway['recording']): TranscriptWriter {
  return {
    writable: true,
    failMode: 'closed',
    openSession(info, extra): SessionRecorder {
      let seq = 0;
      let ended = false;
      const push = (type: TranscriptEventType, body: Record<string, unknown>): TranscriptEvent => {
        const event: TranscriptEvent = {
          session: info.id,
          seq: seq++,
          ts: Date.now(),
          type,
          prev: '',
          hash: '',
          ...body,
        };
        events.push(event);
        return event;
      };
      push('session.start', {
        listener: info.listener,
        protocol: info.protocol,
        identity: info.identity.name,
        ...extra,
      });
      return {
        sessionId: info.id,
        append: (type, body) => push(type, body),
        ioBackpressure: () => recording.ioBackpressure?.(),
        io: (direction, data, channel) =>
          void push('io', { direction, data: data.toString('base64'), channel }),
        end: (body) => {
          if (!ended) push('session.end', body ?? {});
          ended = true;
        },
      };
    },
  };
}

export async function startPgGateway(
  pg: { host: string; port: number },
  options: PgGatewayOptions = {},
): Promise<PgGateway> {
  const events: RecordedEvent[] = [];
  const recording: PgGateway['recording'] = { ioBackpressure: undefined };
  const tokens = new Map<string, Identity>();
  const identity: IdentityService = {
    async verifyToken(token) {
      const found = tokens.get(token);
      if (!found) throw new AgentgateError('AUTH_FAILED', 'bad token');
      return found;
    },
    findSshKey: () => undefined,
    isAllowed: (who, refs) => matchesPrincipal(who, refs),
  };
  const log = options.log ?? silentLogger;
  const metrics = options.metrics ?? noopMetrics;
  const policy = createPolicy(options.rules ?? []);
  const gate = createGate({
    policy,
    approvers: ['group:dba'],
    log,
    ...(options.broker ? { broker: options.broker } : {}),
  });
  const listener: PostgresListenerConfig = {
    name: 'pg',
    protocol: 'postgres',
    listen: '127.0.0.1:0',
    allow: ['group:agents'],
    allowCleartext: false,
    upstream: { host: pg.host, port: pg.port, user: 'app', password: PASSWORD, database: 'app' },
    maxMessageBytes: 1 << 20,
    recordRows: 5,
    dynamicSql: 'match-all',
    loginTimeoutMs: 60_000,
    ...options.listener,
  };
  const deps: EngineDeps = {
    identity,
    sessions: createSessionLifecycles({
      gate,
      transcript: options.transcript ?? memoryTranscript(events, recording),
      metrics,
    }),
    masking: noMasking,
    metrics,
    log,
    access: new ReplaceableListenerAccess(listener.allow),
  };
  const engine = createPostgresEngine(listener, deps);
  // Each connection gets its own signal, as from the gateway's listener server.
  const sockets = new Map<Duplex, AbortController>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    const stop = new AbortController();
    sockets.set(socket, stop);
    socket.on('close', () => sockets.delete(socket));
    const local = !options.remote;
    void engine.handle(
      socket,
      { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, local, tls: false },
      stop.signal,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    events,
    recording,
    token(name, groups = ['agents']) {
      const token = `tok-${name}-${groups.join('.')}`;
      tokens.set(token, { name, groups, source: 'token' });
      return token;
    },
    async stop() {
      for (const stop of sockets.values()) stop.abort(SHUTDOWN);
      await engine.close?.();
      for (const s of sockets.keys()) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
