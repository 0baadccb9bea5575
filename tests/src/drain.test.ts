/**
 * Rolling restarts: `agentgate serve` on SIGTERM drains. `/readyz` turns 503 `draining` at once (liveness stays
 * 200), the listeners refuse new connections, open sessions go on until they end or `shutdown.drainTimeout` passes,
 * then the rest end with the cause `shutdown` (PostgreSQL FATAL 57P01, the SSH connection closed), held approvals
 * are refused with that cause, the store is flushed and the process exits 0. A second signal ends at once.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runCli } from './harness/cli.js';
import { runPsql, startPostgres, type TestPostgres } from './harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

const TOKEN = 'drain-test-token-5b2e81';
let postgres: TestPostgres;
let sshd: TestSshd;
const dirs: string[] = [];
const gateways: ServedGateway[] = [];

interface Served {
  readonly gateway: ServedGateway;
  readonly configFile: string;
  readonly agentKey: { path: string; publicKey: string };
  /** Resolves with the exit code (null when killed by a signal) and when it came. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

async function serve(shutdownYaml: string, rulesYaml = ''): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-drain-'));
  dirs.push(dir);
  const agentKey = makeKeyPair(dir, 'agent');
  const configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(dir, { token: TOKEN, sshPublicKey: agentKey.publicKey }) +
      shutdownYaml +
      'listeners:\n' +
      listenerYaml.postgres('db', postgres) +
      listenerYaml.ssh('shell', sshd, dir) +
      rulesYaml,
  );
  const gateway = await serveProcess(configFile);
  gateways.push(gateway);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    gateway.process.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return { gateway, configFile, agentKey, exited };
}

/** A node-postgres client; `fatal` resolves with the error that ends it while it is idle (a FATAL). */
function pgClient(gateway: ServedGateway): pg.Client & { fatal: Promise<Error & { code?: string }> } {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port('db'),
    user: 'devin',
    database: 'app',
    password: TOKEN,
  });
  const fatal = new Promise<Error & { code?: string }>((resolve) => client.once('error', resolve));
  client.on('error', () => undefined);
  return Object.assign(client, { fatal });
}

async function readyz(gateway: ServedGateway): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gateway.admin}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface Exported {
  type: string;
  cause?: string;
  reason?: string;
  outcome?: string;
  text?: string;
}

async function sessionEvents(configFile: string, protocol: string): Promise<Exported[][]> {
  const list = await runCli(['sessions', 'list', '--config', configFile, '--json']);
  expect(list.code).toBe(0);
  const sessions = (JSON.parse(list.stdout) as { id: string; protocol: string }[]).filter(
    (s) => s.protocol === protocol,
  );
  return Promise.all(
    sessions.map(async (s) => {
      const exported = await runCli(['export', s.id, '--config', configFile, '--format', 'jsonl']);
      expect(exported.code).toBe(0);
      return exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Exported);
    }),
  );
}

async function verify(configFile: string): Promise<void> {
  const verified = await runCli(['verify', '--config', configFile, '--json']);
  expect(verified.code).toBe(0);
  expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
}

beforeAll(async () => {
  [postgres, sshd] = await Promise.all([startPostgres(), startSshd()]);
  await postgres.psql(['-d', 'app'], { input: 'SET ROLE app; CREATE TABLE drain_items (v text);' });
}, 60_000);

afterAll(async () => {
  for (const gateway of gateways) if (gateway.process.exitCode === null) gateway.process.kill('SIGKILL');
  await Promise.all([postgres?.stop(), sshd?.stop()]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('draining on SIGTERM', () => {
  it('turns /readyz 503 at once, refuses new connections, lets a session in a transaction finish, then exits 0', async () => {
    const { gateway, configFile, exited } = await serve('shutdown: { drainTimeout: 60s }\n');
    const client = pgClient(gateway);
    await client.connect();
    await client.query('BEGIN');
    await client.query("INSERT INTO drain_items VALUES ('before SIGTERM')");
    expect((await readyz(gateway)).status).toBe(200);

    const drainingLogged = gateway.nextLog((l) => l['msg'] === 'draining started');
    const signalledAt = Date.now();
    gateway.process.kill('SIGTERM');
    let ready = await readyz(gateway);
    while (ready.status === 200) ready = await readyz(gateway);
    expect(ready.status).toBe(503);
    // Not ready from the moment the signal is handled (what the load balancer's next check sees); measured from the
    // draining state's own start rather than from this client's requests, which a loaded machine slows down. The
    // bound is one health-check interval's fraction: a loaded 2-core machine delivers the signal 100 ms+ late.
    const since = Date.parse((ready.body['draining'] as { since: string }).since);
    expect(since - signalledAt).toBeLessThan(1_000);
    expect(ready.body).toMatchObject({
      status: 'draining',
      checks: { store: true, 'listener:db': false, 'listener:shell': false },
      draining: { since: expect.any(String), deadline: expect.any(String), sessions: 1 },
    });
    // Liveness is not readiness: systemd and the load balancer must not kill a draining gateway.
    expect((await fetch(`${gateway.admin}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${gateway.admin}/metrics`)).text()).toMatch(/^agentgate_draining 1$/m);
    expect(await drainingLogged).toMatchObject({
      sessions: 1,
      drainTimeoutMs: 60_000,
    });

    // New connections are refused (the listening socket is closed), by node-postgres and by psql.
    await expect(pgClient(gateway).connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(
      runPsql('127.0.0.1', gateway.port('db'), ['-U', 'devin', '-d', 'app', '-c', 'SELECT 1'], {
        env: { PGPASSWORD: TOKEN },
      }),
    ).rejects.toThrow(/Connection refused/);
    const ssh = await new Promise<number | null>((resolve) =>
      spawn('ssh', [...sshClientOptions(gateway.port('shell')), 'devin@127.0.0.1', 'true'], {
        stdio: 'ignore',
      }).once('exit', resolve),
    );
    expect(ssh).toBe(255);

    // The open session goes on: its transaction commits upstream.
    await client.query("INSERT INTO drain_items VALUES ('while draining')");
    expect((await client.query('SELECT count(*)::int AS n FROM drain_items')).rows[0].n).toBe(2);
    await client.query('COMMIT');
    expect(gateway.process.exitCode).toBeNull();
    const left = performance.now();
    await client.end();

    const exit = await exited;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // Right after the last session ended, not at the 60 s bound (the log line says why it stopped).
    expect(exit.at - left).toBeLessThan(20_000);
    expect(gateway.logged('draining done: every session finished')).toBe(true);
    expect(gateway.logged('drain timeout reached')).toBe(false);
    await expect(
      postgres.psql(['-d', 'app', '-At', '-c', 'SELECT v FROM drain_items ORDER BY v']),
    ).resolves.toBe('before SIGTERM\nwhile draining\n');
    await postgres.psql(['-d', 'app', '-c', 'TRUNCATE drain_items']);

    const [events] = await sessionEvents(configFile, 'postgres');
    expect(events!.at(-1)).toMatchObject({ type: 'session.end', cause: 'client-left' });
    await verify(configFile);
  }, 120_000);

  it('ends the sessions still open at the bound with the cause shutdown, and refuses a held approval at once', async () => {
    const { gateway, configFile, agentKey, exited } = await serve(
      'shutdown: { drainTimeout: 5s }\n',
      'rules:\n  - { name: hold-deletes, protocol: postgres, match: { commands: [DELETE] }, action: approve }\n',
    );
    const idle = pgClient(gateway);
    await idle.connect();
    await idle.query('BEGIN');
    await idle.query("INSERT INTO drain_items VALUES ('never committed')");
    const holder = pgClient(gateway);
    await holder.connect();
    const requested = gateway.nextLog((l) => l['msg'] === 'approval requested');
    const held = holder.query('DELETE FROM drain_items').then(
      () => new Error('the held DELETE ran'),
      (err: Error & { code?: string }) => err,
    );
    await requested;
    // An SSH command that outlives the bound.
    const sshOut: string[] = [];
    const sshErr: string[] = [];
    const ssh = spawn('ssh', [
      ...sshClientOptions(gateway.port('shell'), agentKey.path),
      'devin@127.0.0.1',
      'echo started; sleep 60',
    ]);
    ssh.stdout.on('data', (d: Buffer) => sshOut.push(d.toString()));
    ssh.stderr.on('data', (d: Buffer) => sshErr.push(d.toString()));
    let sshExited = false;
    const sshExit = new Promise<number | null>((resolve) =>
      ssh.once('exit', (code) => {
        sshExited = true;
        resolve(code);
      }),
    );
    for (let i = 0; i < 600 && !sshExited && !sshOut.join('').includes('started'); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect({ stdout: sshOut.join(''), stderr: sshErr.join('') }).toMatchObject({
      stdout: 'started\n',
    });

    const draining = gateway.nextLog((l) => l['msg'] === 'draining started');
    const signalled = performance.now();
    gateway.process.kill('SIGTERM');
    expect(await draining).toMatchObject({ sessions: 3, drainTimeoutMs: 5_000 });

    // The held statement is refused at once with the cause, and its session goes on.
    const refused = await held;
    expect(performance.now() - signalled).toBeLessThan(2_000);
    expect(refused).toMatchObject({
      code: '42501',
      message: expect.stringMatching(
        /^agentgate: approval \S+ cancelled: the gateway is shutting down \(rule hold-deletes\)$/,
      ) as unknown,
    });
    expect((await holder.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    // A statement that would be held while draining is refused at once too.
    await expect(holder.query('DELETE FROM drain_items')).rejects.toMatchObject({
      message: expect.stringContaining('cancelled: the gateway is shutting down') as unknown,
    });

    // At the bound the rest end: PostgreSQL clients get FATAL 57P01, the SSH connection closes.
    const ended = await Promise.all([idle.fatal, sshExit]);
    const endedAfterMs = performance.now() - signalled;
    expect(ended[0]).toMatchObject({ code: '57P01', message: 'agentgate: the gateway is shutting down' });
    expect(ended[1]).toBe(255);
    expect(endedAfterMs).toBeGreaterThan(4_500);
    expect(await exited).toMatchObject({ code: 0, signal: null });
    expect(gateway.logged('drain timeout reached: ending the sessions still open')).toBe(true);

    // Each session's end is recorded once, naming the shutdown; the held approval was refused with that cause.
    const pgSessions = await sessionEvents(configFile, 'postgres');
    expect(pgSessions).toHaveLength(2);
    for (const events of pgSessions) {
      expect(events.filter((e) => e.type === 'session.end')).toEqual([
        expect.objectContaining({ cause: 'shutdown', reason: 'the gateway is shutting down' }),
      ]);
    }
    const decided = pgSessions.flat().filter((e) => e.type === 'approval.decided');
    expect(decided).toHaveLength(2);
    for (const d of decided) expect(d).toMatchObject({ outcome: 'cancelled', cause: 'shutdown' });
    const [sshEvents] = await sessionEvents(configFile, 'ssh');
    expect(sshEvents!.filter((e) => e.type === 'session.end')).toEqual([
      expect.objectContaining({ cause: 'shutdown' }),
    ]);
    await verify(configFile);
    await expect(postgres.psql(['-d', 'app', '-At', '-c', 'SELECT count(*) FROM drain_items'])).resolves.toBe(
      '0\n',
    );
  }, 120_000);

  it('a second SIGTERM ends the drain at once, still recording every end', async () => {
    const { gateway, configFile, exited } = await serve('shutdown: { drainTimeout: 5m }\n');
    const client = pgClient(gateway);
    await client.connect();
    await client.query('BEGIN');
    const draining = gateway.nextLog((l) => l['msg'] === 'draining started');
    gateway.process.kill('SIGTERM');
    await draining;
    const second = performance.now();
    gateway.process.kill('SIGTERM');
    const [failed, exit] = await Promise.all([client.fatal, exited]);
    expect(failed).toMatchObject({ code: '57P01' });
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - second).toBeLessThan(3_000);
    expect(gateway.logged('stopping now: ending the sessions still open')).toBe(true);
    const [events] = await sessionEvents(configFile, 'postgres');
    expect(events!.filter((e) => e.type === 'session.end')).toEqual([
      expect.objectContaining({ cause: 'shutdown' }),
    ]);
    await verify(configFile);
  }, 120_000);
});
