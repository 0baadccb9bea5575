/**
 * The store's and the signing key's life with a real `agentgate serve`: a backup taken while pgbench writes through
 * the gateway verifies; prune removes only what a backup holds, records it signed, and verify still passes and
 * reports it; store.retention does the same on a schedule inside serve; a rotated signing key keeps old sessions
 * verifiable; one gateway per store.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from './harness/cli.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { serveProcess, type ServedGateway } from './harness/serve.js';
import { run } from './harness/sshd.js';

// Each step runs agentgate, psql or pgbench as its own process: seconds each on a loaded machine.
jest.setTimeout(300_000);

const TOKEN = 'lifecycle-token-0b5e7a';
let postgres: TestPostgres;
let dir: string;
let configFile: string;
let storePath: string;
let backups: string;
let gateway: ServedGateway | undefined;
/** the JWKS the gateway served before the key was rotated */
let firstJwks: string;
const before: string[] = [];
/** sessions the backup taken under load holds ended (pgbench's own first connection may be one of them) */
const endedInBackup: string[] = [];

function writeConfig(extraStore = ''): void {
  writeFileSync(
    configFile,
    `store: { path: ${storePath}${extraStore} }
signingKey: ${join(dir, 'signing-key.json')}
admin: { listen: "127.0.0.1:0" }
identity:
  tokens: [{ name: devin, sha256: "${createHash('sha256').update(TOKEN).digest('hex')}", groups: [agents] }]
listeners:
  - name: db
    protocol: postgres
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${postgres.port}, user: app, password: "${PASSWORD}", database: app }
`,
  );
}

const pgEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PGPASSWORD: TOKEN, PGSSLMODE: 'disable' });

async function psql(sql: string): Promise<string> {
  const result = await run(
    'psql',
    ['-X', '-h', '127.0.0.1', '-p', String(gateway!.port('db')), '-U', 'devin', '-d', 'app'],
    {
      input: sql,
      env: pgEnv(),
    },
  );
  expect(result.code).toBe(0);
  return result.stdout.toString();
}

interface Summary {
  id: string;
  endedAt: number | null;
}

async function sessions(store = storePath): Promise<Summary[]> {
  const result = await runCli(['sessions', 'list', '--store', store, '--json']);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as Summary[];
}

interface Report {
  ok: boolean;
  sessions: number;
  problems: unknown[];
  pruned: { sessions: number; prunes: { by: string; sessions: string[]; kids: string[] }[] };
  keys: { kid: string; source: string; verified: number }[];
}

async function verify(args: string[]): Promise<Report> {
  const result = await runCli(['verify', ...args, '--json']);
  const report = JSON.parse(result.stdout) as Report;
  expect(report.problems).toEqual([]);
  expect(result.code).toBe(0);
  return report;
}

beforeAll(async () => {
  postgres = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-lifecycle-'));
  storePath = join(dir, 'transcripts');
  backups = join(dir, 'backups');
  mkdirSync(backups);
  configFile = join(dir, 'agentgate.yaml');
  writeConfig();
  // pgbench's tables, made upstream directly (DDL is not what this test is about).
  const init = await run(
    'pgbench',
    ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(postgres.port), '-U', 'app', 'app'],
    {
      env: { ...process.env, PGPASSWORD: PASSWORD },
    },
  );
  expect(init.code).toBe(0);
}, 120_000);

afterAll(async () => {
  gateway?.process.kill('SIGKILL');
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('store and key lifecycle', () => {
  it('backs up a store while pgbench writes through the gateway, and the copy verifies', async () => {
    gateway = await serveProcess(configFile);
    await psql('SELECT 1;');
    await psql('SELECT count(*) FROM pgbench_accounts;');
    before.push(...(await sessions()).map((s) => s.id));
    expect(before).toHaveLength(2);
    // A session held open across the backup: the copy holds an open session however slowly pgbench gets going.
    const held = new pg.Client({
      host: '127.0.0.1',
      port: gateway.port('db'),
      user: 'devin',
      password: TOKEN,
      database: 'app',
    });
    await held.connect();
    await held.query('SELECT 1');
    firstJwks = join(dir, 'jwks-before-rotation.json');
    writeFileSync(firstJwks, await (await fetch(`${gateway.admin}/.well-known/jwks.json`)).text());

    const bench = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
      const child = spawn(
        'pgbench',
        [
          '-n',
          '-c',
          '4',
          '-T',
          '8',
          '-h',
          '127.0.0.1',
          '-p',
          String(gateway!.port('db')),
          '-U',
          'devin',
          'app',
        ],
        { env: pgEnv() },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    // Wait until pgbench's sessions are recording, then copy the store under them.
    for (let i = 0; i < 100 && (await sessions()).length < 7; i++)
      await new Promise((r) => setTimeout(r, 200));
    const copy = join(backups, 'during-load');
    const backup = await runCli(['backup', '--config', configFile, '--to', copy]);
    // The whole output on failure: the copy's report names what did not verify.
    expect({ code: backup.code, stderr: backup.stderr, stdout: backup.stdout }).toMatchObject({
      code: 0,
      stderr: '',
    });
    expect(backup.stdout).toMatch(
      new RegExp(`^backup of ${storePath} written to ${copy}: OK: \\d+ session\\(s\\)`),
    );
    await held.end();
    const benchResult = await bench;
    expect(benchResult.stderr).not.toMatch(/error/i);
    expect(benchResult.code).toBe(0);
    expect(
      Number(/number of transactions actually processed: (\d+)/.exec(benchResult.stdout)?.[1]),
    ).toBeGreaterThan(0);

    // The copy verifies on its own and against the gateway's published keys; pgbench was mid-run in it.
    const copied = await verify(['--store', copy, '--jwks', firstJwks]);
    expect(copied.sessions).toBeGreaterThanOrEqual(7);
    const inCopy = await sessions(copy);
    expect(inCopy.filter((s) => s.endedAt === null).length).toBeGreaterThan(0);
    endedInBackup.push(...inCopy.filter((s) => s.endedAt !== null).map((s) => s.id));
    expect(endedInBackup).toEqual(expect.arrayContaining(before));
    const manifest = JSON.parse(readFileSync(join(copy, 'agentgate-backup.json'), 'utf8')) as {
      ok: boolean;
      source: string;
    };
    expect(manifest).toMatchObject({ ok: true, source: storePath });

    const again = await runCli(['backup', '--store', storePath, '--to', copy]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`agentgate: --to ${copy} is not empty\n`);
  });

  it('prune removes only what a backup holds, signed, and verify reports it', async () => {
    const cutoff = new Date().toISOString();
    const args = [
      'prune',
      '--config',
      configFile,
      '--before',
      cutoff,
      '--covered-by',
      join(backups, 'during-load'),
    ];
    // A running gateway owns its store: pruning by hand waits until it is stopped (retention prunes from inside).
    const refused = await runCli(args);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is in use by another agentgate process \(pid \d+ .*store\.retention/);
    await gateway!.stop();

    const dry = await runCli([...args, '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const planned = JSON.parse(dry.stdout) as { pruned: { session: string }[]; notCovered: string[] };
    expect(planned.pruned.map((p) => p.session).sort()).toEqual([...endedInBackup].sort());
    expect(planned.notCovered.length).toBeGreaterThan(0); // pgbench's sessions were open in the backup

    const pruned = await runCli(args);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(
      new RegExp(
        `^pruned ${endedInBackup.length} session\\(s\\) that ended before .* \\(1 signed prune record\\(s\\)\\)\n`,
      ),
    );
    expect(pruned.stdout).toContain(
      `kept ${planned.notCovered.length} session(s) no backup or export given holds intact`,
    );
    const left = (await sessions()).map((s) => s.id);
    for (const id of endedInBackup) expect(left).not.toContain(id);
    const show = await runCli(['sessions', 'show', before[0]!, '--store', storePath]);
    expect(show.stderr).toMatch(
      new RegExp(
        `^agentgate: no session ${before[0]}: a prune record lists it as pruned on \\S+ \\(agentgate verify checks that record\\)\n$`,
      ),
    );

    const report = await verify(['--config', configFile]);
    expect(report.pruned.sessions).toBe(endedInBackup.length);
    expect(report.pruned.prunes).toEqual([
      expect.objectContaining({ by: 'agentgate prune', sessions: expect.arrayContaining(before) }),
    ]);
    const text = await runCli(['verify', '--store', storePath, '--jwks', firstJwks]);
    expect(text.code).toBe(0);
    const kid = (JSON.parse(readFileSync(firstJwks, 'utf8')) as { keys: { kid: string }[] }).keys[0]!.kid;
    expect(text.stdout).toMatch(
      new RegExp(
        `\\npruned: ${endedInBackup.length} session\\(s\\) that ended before ${cutoff.replace(/[.]/g, '\\.')}, on \\S+ by agentgate prune, signed by key ${kid}\\n`,
      ),
    );
  });

  it('store.retention prunes on a schedule in serve, only what a backup under coveredBy holds', async () => {
    const after = join(backups, 'after-load');
    expect((await runCli(['backup', '--store', storePath, '--to', after])).code).toBe(0);
    // A backup still being written beside it (a cron job's): its data.mdb stops halfway, before the pages its meta
    // page names. Reading it would kill serve (SIGBUS); retention passes it over.
    const inProgress = join(backups, 'in-progress');
    mkdirSync(inProgress);
    const copied = readFileSync(join(after, 'data.mdb'));
    writeFileSync(join(inProgress, 'data.mdb'), copied.subarray(0, copied.length >> 1));
    const remaining = (await sessions()).length;
    expect(remaining).toBeGreaterThan(0);
    writeConfig(`, retention: { keep: 1s, coveredBy: ${backups}, interval: 1s }`);
    await new Promise((r) => setTimeout(r, 1100)); // every session ended more than `keep` ago
    gateway = await serveProcess(configFile);
    const line = await gateway
      .nextLog((l) => l['msg'] === 'retention: pruned sessions', 60_000)
      .finally(() => gateway!.stop());
    expect(line).toMatchObject({ component: 'retention', pruned: remaining, records: 1 });
    expect(await sessions()).toEqual([]);
    const report = await verify(['--config', configFile]);
    expect(report.pruned.sessions).toBe(endedInBackup.length + remaining);
    expect(report.pruned.prunes.map((p) => p.by)).toEqual(['agentgate prune', 'retention']);
    writeConfig();
  });

  it('keys rotate: new sessions are signed with the new key, old ones still verify, the JWKS serves both', async () => {
    // A store with sessions signed by the old key again (the earlier ones are pruned).
    gateway = await serveProcess(configFile);
    await psql('SELECT 1;');
    await gateway.stop();
    const oldKid = (JSON.parse(readFileSync(firstJwks, 'utf8')) as { keys: { kid: string }[] }).keys[0]!.kid;

    const rotated = await runCli(['keys', 'rotate', '--config', configFile]);
    expect(rotated.code).toBe(0);
    const newKid = /signing with (\S+) from the next start/.exec(rotated.stdout)?.[1];
    expect(newKid).toBeDefined();
    expect(rotated.stdout).toContain(`${oldKid} stays in the file as a verification key`);

    gateway = await serveProcess(configFile);
    await psql('SELECT 2;');
    const jwks = (await (await fetch(`${gateway.admin}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    expect(jwks.keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    const bothJwks = join(dir, 'jwks-after-rotation.json');
    writeFileSync(bothJwks, JSON.stringify(jwks));
    // One gateway per store: a second one is refused, the first one goes on.
    const second = await runCli(['serve', '--config', configFile]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/transcript store .* is in use by another agentgate process/);
    await gateway.stop();

    for (const args of [
      ['--config', configFile],
      ['--store', storePath],
      ['--store', storePath, '--jwks', bothJwks],
    ]) {
      const report = await verify(args);
      const verifiedBy = Object.fromEntries(report.keys.map((k) => [k.kid, k.verified]));
      expect(verifiedBy[oldKid]).toBeGreaterThan(0);
      expect(verifiedBy[newKid!]).toBeGreaterThan(0);
    }
    // The JWKS from before the rotation does not know the new key, and says which key it lacks.
    const stale = await runCli(['verify', '--store', storePath, '--jwks', firstJwks]);
    expect(stale.code).toBe(1);
    expect(stale.stdout).toContain(`signed by key ${newKid}, which is not in --jwks ${firstJwks}`);
  });
});
