/**
 * The transcript store fills up (here: the file-size limit of the process, which LMDB hits like a full disk) while
 * bytes stream through `agentgate serve` with the default failMode (closed): an SSH download, a `docker exec`
 * stream and a PostgreSQL COPY are ended instead of going on unrecorded, new sessions are refused, the gateway stays
 * up and says so on /readyz, and what was recorded before the store failed verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
