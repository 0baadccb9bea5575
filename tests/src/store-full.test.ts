/**
 * The transcript store fills up while `agentgate serve` runs with the default failMode (closed).
 *
 * Streams (the file-size limit of the process, which LMDB hits like a full disk): an SSH download, a `docker exec`
 * stream and a PostgreSQL COPY are ended instead of going on unrecorded, new sessions are refused, the gateway stays
 * up and says so on /readyz, and what was recorded before the store failed verifies.
 *
 * Commands (the store on a small tmpfs): no statement runs without its `command` and `decision` events on disk,
 * and the refusals that follow say the store is full (SQLSTATE 53100), not that a rule denied them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { recordedDecision } from '@agentgate/core';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';
import { runCli } from './harness/cli.js';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

/** LMDB's file may not grow past this: a few MB of io events after startup. */
const FILE_SIZE_LIMIT = 24 << 20;
const TOKEN = 'store-full-token-51c0d9';
let sshd: TestSshd;
let dockerd: TestDockerd;
let postgres: TestPostgres;
let dir: string;
let agentKey: { path: string; publicKey: string };
const running = new Set<ChildProcess>();
/** tmpfs mount points still mounted (unmounted in afterAll if a test failed half-way) */
const mounted = new Set<string>();

interface LimitedGateway extends ServedGateway {
  readonly configFile: string;
}

/** `agentgate serve` under a file-size limit, with its own store under `dir/name`. */
async function serveLimited(name: string): Promise<LimitedGateway> {
  const home = join(dir, name);
  mkdirSync(home);
  const configFile = join(home, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(home, { token: TOKEN, sshPublicKey: agentKey.publicKey }) +
      'listeners:\n' +
      listenerYaml.ssh('shell', sshd, home) +
      listenerYaml.docker('docker', dockerd) +
      listenerYaml.postgres('db', postgres),
  );
  const gateway = await serveProcess(configFile, { fileSizeLimit: FILE_SIZE_LIMIT });
  running.add(gateway.process);
  return { ...gateway, configFile };
}

/** Runs a streaming client until it ends; its stdout is only counted. Null code: killed after 30 s. */
function streamUntilEnded(
  program: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number | null; bytes: number }> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'ignore'], ...(env ? { env } : {}) });
  running.add(child);
  let bytes = 0;
  child.stdout!.on('data', (d: Buffer) => (bytes += d.length));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, bytes });
    });
  });
}

/** The store failed and the gateway is still up, not ready, and refuses to run unrecorded. */
async function expectUpButNotReady(gateway: LimitedGateway): Promise<void> {
  expect(gateway.process.exitCode).toBeNull();
  expect((await fetch(`${gateway.admin}/readyz`)).status).toBe(503);
}

/** What was committed before the store failed verifies. */
async function expectStoreVerifies(gateway: LimitedGateway): Promise<void> {
  await gateway.stop();
  const verified = await runCli(['verify', '--config', gateway.configFile, '--json']);
  expect(verified.code).toBe(0);
  expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
}

beforeAll(async () => {
  [sshd, dockerd, postgres] = await Promise.all([startSshd(), startDockerd(), startPostgres()]);
  await postgres.psql(['-d', 'app'], { input: 'SET ROLE app; CREATE TABLE copied (line text);' });
  dir = mkdtempSync(join(tmpdir(), 'agentgate-full-'));
  agentKey = makeKeyPair(dir, 'agent');
}, 120_000);

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  for (const mountPoint of mounted) unmount(mountPoint);
  await Promise.all([sshd?.stop(), dockerd?.stop(), postgres?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('store full during a stream (failMode closed)', () => {
  it('ends an SSH download, refuses new sessions, stays up, and what was recorded verifies', async () => {
    const gateway = await serveLimited('ssh');
    const ssh = sshClientOptions(gateway.port('shell'), agentKey.path);
    // Unbounded output: without fail-closed streams this would run until the client gave up.
    const download = await streamUntilEnded('ssh', [...ssh, 'devin@127.0.0.1', 'cat /dev/zero']);
    expect(download.code).not.toBeNull(); // ended by the gateway, not by the 30 s timer
    expect(download.code).not.toBe(0);
    expect(download.bytes).toBeGreaterThan(0);
    expect(download.bytes).toBeLessThan(FILE_SIZE_LIMIT * 4);
    expect(gateway.logged('the transcript store refuses its bytes')).toBe(true);

    await expectUpButNotReady(gateway);
    const refused = await run('ssh', [...ssh, 'devin@127.0.0.1', 'echo hi'], { timeoutMs: 20_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout.toString()).not.toContain('hi');
    await expectStoreVerifies(gateway);
  }, 90_000);

  it('cuts a docker exec stream and answers 503 afterwards', async () => {
    const gateway = await serveLimited('docker');
    const configDir = join(dir, 'docker-cli');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      join(configDir, 'config.json'),
      JSON.stringify({ HttpHeaders: { Authorization: `Bearer ${TOKEN}` } }),
    );
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: configDir,
      DOCKER_HOST: `tcp://127.0.0.1:${gateway.port('docker')}`,
    };
    const docker = (args: string[]) =>
      run('docker', ['--config', configDir, ...args], { env, timeoutMs: 30_000 });
    const started = await docker([
      'run',
      '-d',
      '--name',
      'filler',
      '--network',
      'none',
      dockerd.image,
      'sleep',
      '300',
    ]);
    expect(started.code).toBe(0);
    try {
      const exec = await streamUntilEnded(
        'docker',
        ['--config', configDir, 'exec', 'filler', 'cat', '/dev/zero'],
        env,
      );
      expect(exec.code).not.toBeNull();
      expect(exec.code).not.toBe(0);
      expect(exec.bytes).toBeLessThan(FILE_SIZE_LIMIT * 4);
      expect(gateway.logged('the transcript store refuses its bytes')).toBe(true);

      await expectUpButNotReady(gateway);
      const ps = await docker(['ps']);
      expect(ps.code).not.toBe(0);
      expect(ps.stderr).toContain('transcript store');
    } finally {
      await dockerd.docker(['rm', '-f', 'filler']);
    }
    await expectStoreVerifies(gateway);
  }, 90_000);

  it('ends a PostgreSQL session in the middle of a COPY, which then commits nothing', async () => {
    const gateway = await serveLimited('postgres');
    const psql = (command: string) =>
      run(
        'psql',
        [
          '-X',
          '-v',
          'ON_ERROR_STOP=1',
          '-h',
          '127.0.0.1',
          '-p',
          String(gateway.port('db')),
          '-U',
          'devin',
          '-d',
          'app',
          '-c',
          command,
        ],
        { env: { ...process.env, PGPASSWORD: TOKEN }, timeoutMs: 30_000 },
      );
    // COPY data is recorded as io: ~200 MB of it cannot fit under the limit.
    const copy = await psql(
      String.raw`\copy copied FROM PROGRAM 'yes agentgate-copy-line | head -c 200000000'`,
    );
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toContain('the transcript store cannot record this session');

    await expectUpButNotReady(gateway);
    // The upstream transaction died with the session: no unrecorded row landed.
    expect((await postgres.psql(['-d', 'app', '-tA', '-c', 'SELECT count(*) FROM copied'])).trim()).toBe('0');
    const refused = await psql('SELECT 1');
    expect(refused.code).not.toBe(0);
    await expectStoreVerifies(gateway);
  }, 90_000);
});

/** A tmpfs of `size` under the test directory (the tests run as root). */
function mountTmpfs(name: string, size: string): string {
  const mountPoint = join(dir, name);
  mkdirSync(mountPoint);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint]);
  mounted.add(mountPoint);
  return mountPoint;
}

function unmount(mountPoint: string): void {
  try {
    execFileSync('umount', [mountPoint]);
  } catch {
    execFileSync('umount', ['-l', mountPoint]); // still busy: detach now, freed when the last user goes
  }
  mounted.delete(mountPoint);
}

/** 200 KB of text per INSERT: the statement itself, recorded as the `command` event, is what fills the store. */
const PAYLOAD_BYTES = 200_000;

interface FillRun {
  inserted: number;
  recordedAllowed: number;
  refusals: { code: string | undefined; message: string }[];
}

/**
 * One run: `agentgate serve` with its store on a fresh 8 MiB tmpfs, `clients` node-postgres connections sending
 * 200 KB INSERTs until each is refused. Returns the rows in the database, the INSERT commands the transcript holds
 * with an allowing decision, and every refusal the clients got.
 */
async function fillTmpfsStore(name: string, clients: number): Promise<FillRun> {
  const home = join(dir, name);
  mkdirSync(home);
  const storeMount = mountTmpfs(`${name}-store`, '8m');
  const table = name.replace(/[^a-z0-9]/g, '_');
  await postgres.psql(['-d', 'app'], { input: `SET ROLE app; CREATE TABLE ${table} (payload text);` });
  const configFile = join(home, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(home, { token: TOKEN }).replace(
      /^store: .*$/m,
      `store: { path: ${join(storeMount, 'transcripts')} }`,
    ) +
      'listeners:\n' +
      listenerYaml.postgres('db', postgres),
  );
  const gateway = await serveProcess(configFile);
  running.add(gateway.process);
  const refusals: FillRun['refusals'] = [];
  try {
    const connections = await Promise.all(
      Array.from({ length: clients }, async () => {
        const client = new pg.Client({
          host: '127.0.0.1',
          port: gateway.port('db'),
          user: 'devin',
          database: 'app',
          password: TOKEN,
        });
        client.on('error', () => undefined); // a connection the gateway ends reports through the failing query
        await client.connect();
        return client;
      }),
    );
    await Promise.all(
      connections.map(async (client, c) => {
        // Bounded: an 8 MiB store cannot hold 100 statements of 200 KB.
        for (let i = 0; i < 100; i++) {
          const payload = `${c}-${i}-`.padEnd(PAYLOAD_BYTES, 'x');
          try {
            await client.query(`INSERT INTO ${table} (payload) VALUES ('${payload}')`);
          } catch (err) {
            const { code, message } = err as { code?: string; message: string };
            refusals.push({ code, message });
            return;
          }
        }
      }),
    );
    await Promise.all(connections.map((client) => client.end().catch(() => undefined)));
    expect(gateway.process.exitCode).toBeNull(); // refused, still up
  } finally {
    await gateway.stop();
    running.delete(gateway.process);
  }
  const inserted = Number(
    (await postgres.psql(['-d', 'app', '-tA', '-c', `SELECT count(*) FROM ${table}`])).trim(),
  );
  const verified = await runCli(['verify', '--config', configFile, '--json']);
  expect({ code: verified.code, report: JSON.parse(verified.stdout) as unknown }).toMatchObject({
    code: 0,
    report: { ok: true },
  });
  const recordedAllowed = await allowedInserts(
    join(storeMount, 'transcripts'),
    join(home, 'signing-key.json'),
    table,
  );
  unmount(storeMount);
  return { inserted, recordedAllowed, refusals };
}

/** INSERT commands into `table` in the store whose decision allowed them. */
async function allowedInserts(storePath: string, keyFile: string, table: string): Promise<number> {
  const store = await openTranscriptStore({
    path: storePath,
    readOnly: true,
    failMode: 'closed',
    checkpointIntervalMs: 0,
    signer: await loadOrCreateSigningKey(keyFile),
  });
  try {
    let allowed = 0;
    for (const session of store.listSessions()) {
      const inserts = new Set<number>();
      for (const event of store.events(session.id)) {
        if (event.type === 'command' && String(event['text']).startsWith(`INSERT INTO ${table} `))
          inserts.add(event.seq);
        const decision = recordedDecision(event);
        if (decision?.action === 'allow' && inserts.has(decision.commandSeq)) allowed++;
      }
    }
    return allowed;
  } finally {
    await store.close();
  }
}

describe('no command without its record: the store on a small tmpfs (failMode closed)', () => {
  for (const clients of [1, 4]) {
    it(`${clients} client(s), 3 runs: rows in the database = recorded allowed commands; refusals are 53100`, async () => {
      for (let run = 1; run <= 3; run++) {
        const result = await fillTmpfsStore(`fill-${clients}c-${run}`, clients);
        // Every statement that ran is in the record, and the store filled: each client was refused in the end.
        expect({ run, inserted: result.inserted }).toEqual({ run, inserted: result.recordedAllowed });
        expect(result.inserted).toBeGreaterThan(0);
        expect(result.refusals).toHaveLength(clients);
        for (const refusal of result.refusals) {
          expect(refusal).toEqual({
            code: '53100',
            message: expect.stringContaining('transcript store is full'),
          });
        }
      }
    }, 300_000);
  }
});
