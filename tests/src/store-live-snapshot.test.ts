/**
 * A running gateway's store read while sessions start and end all the time (pgbench -C: one connection per
 * transaction): every backup copy, and `verify` of the live store itself, sees whole sessions only. An ended
 * session's summary and its signed final checkpoint land in one transaction, so no snapshot holds an end without
 * its signature. Each backup and verify opens the store in a process of its own, which is what made LMDB lose a
 * gateway commit now and then (batch-writer.ts): a session's command and decision missing, its result there.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './harness/cli.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { serveProcess, type ServedGateway } from './harness/serve.js';
import { run } from './harness/sshd.js';

jest.setTimeout(180_000);

const TOKEN = 'snapshot-token-5c1d9e';
let postgres: TestPostgres;
let dir: string;
let storePath: string;
let gateway: ServedGateway | undefined;

beforeAll(async () => {
  postgres = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-snapshot-'));
  storePath = join(dir, 'transcripts');
  const configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    `store: { path: ${storePath} }
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
  const init = await run(
    'pgbench',
    ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(postgres.port), '-U', 'app', 'app'],
    { env: { ...process.env, PGPASSWORD: PASSWORD } },
  );
  expect(init.code).toBe(0);
  gateway = await serveProcess(configFile);
}, 120_000);

afterAll(async () => {
  gateway?.process.kill('SIGKILL');
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Report {
  ok: boolean;
  sessions: number;
  problems: unknown[];
}

describe('a live store read while sessions start and end', () => {
  it('backs up and verifies whole sessions only, under a new connection per transaction', async () => {
    let benchDone = false;
    const bench = new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        'pgbench',
        [
          '-n',
          '-C',
          '-S',
          '-c',
          '2',
          '-T',
          '10',
          '-h',
          '127.0.0.1',
          '-p',
          String(gateway!.port('db')),
        ].concat(['-U', 'devin', 'app']),
        { env: { ...process.env, PGPASSWORD: TOKEN, PGSSLMODE: 'disable' } },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => {
        benchDone = true;
        resolve({ code, stderr });
      });
    });
    // Sessions end many times a second meanwhile: each copy and each read of the live store lands mid-stream, and
    // each opens the store while the gateway commits.
    const reports: Report[] = [];
    for (let i = 0; !benchDone; i++) {
      const copy = join(dir, `copy-${i}`);
      const backup = await runCli(['backup', '--store', storePath, '--to', copy, '--json']);
      const copied = JSON.parse(backup.stdout) as Report;
      expect(copied.problems).toEqual([]);
      expect(backup.code).toBe(0);
      const live = await runCli(['verify', '--store', storePath, '--json']);
      const report = JSON.parse(live.stdout) as Report;
      expect(report.problems).toEqual([]);
      expect(live.code).toBe(0);
      reports.push(copied, report);
    }
    const result = await bench;
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    // The reads overlapped the churn: at least one backup and one verify ran while pgbench was still connecting.
    expect(reports.length).toBeGreaterThanOrEqual(2);
    expect(reports.every((r) => r.ok)).toBe(true);
    expect(reports.at(-1)!.sessions).toBeGreaterThan(20);
    // No commit failed meanwhile (a loss the writer could not write again would fail one).
    expect(gateway!.logged('write failed')).toBe(false);
    // After the churn, the store as a whole: every session whole.
    const final = await runCli(['verify', '--store', storePath, '--json']);
    expect((JSON.parse(final.stdout) as Report).problems).toEqual([]);
  });
});
