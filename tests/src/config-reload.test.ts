/**
 * `agentgate serve` as an operator runs it, reloaded with SIGHUP (systemctl reload): a new rule applies to the next
 * statement of a session that is already open, so do changed masking rules, a broken file changes nothing, and the
 * reload is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { repoRoot, runCli } from './harness/cli.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';

const TOKEN = 'reload-test-token-3f9c2a';
let server: TestPostgres;
let dir: string;
let configFile: string;
let gateway: ChildProcess;
const logLines: Record<string, unknown>[] = [];

function configYaml(extraRules: string): string {
  return `store: { path: ${join(dir, 'transcripts')} }
signingKey: ${join(dir, 'signing-key.json')}
admin: { listen: "127.0.0.1:0" }
identity:
  tokens: [{ name: devin, sha256: "${createHash('sha256').update(TOKEN).digest('hex')}", groups: [agents] }]
listeners:
  - name: db
    protocol: postgres
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "${PASSWORD}", database: app }
rules:
  - { name: no-drops, protocol: postgres, match: { commands: [DROP] }, action: deny }
${extraRules}`;
}

/** Resolves with the first log line (JSON on stderr) from now on that satisfies `match`. */
function nextLog(
  match: (line: Record<string, unknown>) => boolean,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const seen = logLines.length;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no such log line; saw ${JSON.stringify(logLines.slice(seen))}`)),
      timeoutMs,
    );
    const poll = setInterval(() => {
      const hit = logLines.slice(seen).find(match);
      if (hit) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(hit);
      }
    }, 20);
  });
}

beforeAll(async () => {
  server = await startPostgres();
  await server.psql(['-d', 'app'], {
    input:
      'SET ROLE app; CREATE TABLE reload_items (v text); ' +
      "CREATE TABLE reload_people (name text, email text); INSERT INTO reload_people VALUES ('Ada', 'ada@example.com');",
  });
  dir = mkdtempSync(join(tmpdir(), 'agentgate-reload-'));
  configFile = join(dir, 'agentgate.yaml');
  writeFileSync(configFile, configYaml(''));
  gateway = spawn(process.execPath, [join(repoRoot, 'bin', 'agentgate'), 'serve', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let buffered = '';
  gateway.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) logLines.push(JSON.parse(l) as Record<string, unknown>);
  });
  await nextLog((l) => l['msg'] === 'agentgate started', 30_000);
}, 60_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGTERM');
    await new Promise((resolve) => gateway.once('exit', resolve));
  }
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function listenerPort(): number {
  const started = logLines.find((l) => l['msg'] === 'agentgate started') as {
    listeners: { name: string; address: { port: number } }[];
  };
  return started.listeners.find((l) => l.name === 'db')!.address.port;
}

describe('config reload (SIGHUP)', () => {
  it('applies new rules to open sessions, keeps the running config when the file is broken, and records it', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: listenerPort(),
      user: 'devin',
      database: 'app',
      password: TOKEN,
    });
    await client.connect();
    try {
      expect((await client.query("SELECT 'reload-canary' AS v")).rows[0].v).toBe('reload-canary');

      writeFileSync(
        configFile,
        configYaml(
          '  - { name: canary, protocol: postgres, match: { pattern: "reload-canary" }, action: deny }\n',
        ),
      );
      const reloaded = nextLog((l) => l['msg'] === 'configuration reloaded');
      gateway.kill('SIGHUP');
      expect(await reloaded).toMatchObject({ rules: 2, masking: 0 });
      await expect(client.query("SELECT 'reload-canary' AS v")).rejects.toMatchObject({
        code: '42501',
        message: 'agentgate: denied by rule canary',
      });

      // A broken file: reported, nothing changes (the canary rule stays, everything else still works).
      writeFileSync(
        configFile,
        configYaml('  - { name: broken, protocol: postgres, match: { colour: red }, action: deny }\n'),
      );
      const failed = nextLog(
        (l) => l['msg'] === 'configuration reload failed; the running configuration stays',
      );
      gateway.kill('SIGHUP');
      expect(String((await failed)['error'])).toContain('rules[1].match.colour');
      await expect(client.query("SELECT 'reload-canary' AS v")).rejects.toMatchObject({ code: '42501' });
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);

      // A change that needs a restart is named, not applied.
      writeFileSync(configFile, configYaml('').replace('allow: [group:agents]', 'allow: [group:admins]'));
      const partial = nextLog(
        (l) => l['msg'] === 'configuration changes that take effect only after a restart',
      );
      gateway.kill('SIGHUP');
      expect((await partial)['sections']).toEqual(['listeners']);
      expect((await client.query("SELECT 'reload-canary' AS v")).rows[0].v).toBe('reload-canary');
    } finally {
      await client.end();
    }
    const sessions = await runCli(['sessions', 'list', '--config', configFile, '--json']);
    expect(sessions.code).toBe(0);
    const admin = (JSON.parse(sessions.stdout) as { listener: string; identity: string }[]).filter(
      (s) => s.listener === 'admin',
    );
    expect(admin.filter((s) => s.identity === 'operator (SIGHUP)')).toHaveLength(2);
  }, 60_000);

  it('applies changed masking rules to an open session at its next statement, simple and extended', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: listenerPort(),
      user: 'devin',
      database: 'app',
      password: TOKEN,
    });
    await client.connect();
    const simple = async (): Promise<string> =>
      (await client.query('SELECT email FROM reload_people')).rows[0].email as string;
    const extended = async (): Promise<string> =>
      (await client.query({ text: 'SELECT email FROM reload_people WHERE name = $1', values: ['Ada'] }))
        .rows[0].email as string;
    const reload = async (extra: string, masking: number): Promise<void> => {
      writeFileSync(configFile, configYaml(extra));
      const reloaded = nextLog((l) => l['msg'] === 'configuration reloaded');
      gateway.kill('SIGHUP');
      expect(await reloaded).toMatchObject({ masking });
    };
    try {
      expect(await simple()).toBe('ada@example.com');
      expect(await extended()).toBe('ada@example.com');

      // The connection stays open (a pool's would for hours): the new rule must reach it, not only new ones.
      await reload('masking:\n  - { name: pii, columns: ["reload_people.email"], replacement: "****" }\n', 1);
      expect(await simple()).toBe('****');
      expect(await extended()).toBe('****');

      await reload('', 0);
      expect(await simple()).toBe('ada@example.com');
      expect(await extended()).toBe('ada@example.com');
    } finally {
      await client.end();
    }
  }, 60_000);

  it('applies a reloaded approvals section to the next held statement', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: listenerPort(),
      user: 'devin',
      database: 'app',
      password: TOKEN,
    });
    await client.connect();
    try {
      // A rule that holds the statement, and a timeout short enough to watch expire (the default is 120 s).
      writeFileSync(
        configFile,
        configYaml(
          '  - { name: hold, protocol: postgres, match: { pattern: "needs-approval" }, action: approve }\n' +
            'approvals: { timeout: 1s }\n',
        ),
      );
      const reloaded = nextLog((l) => l['msg'] === 'configuration reloaded');
      gateway.kill('SIGHUP');
      await reloaded;
      const started = Date.now();
      const held = client.query("SELECT 'needs-approval' AS v");
      const timedOut = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('still held after 15 s: the old timeout is in force')), 15_000),
      );
      await expect(Promise.race([held, timedOut])).rejects.toMatchObject({
        code: '42501',
        message: expect.stringMatching(
          /^agentgate: approval \S+ expired: no decision within 1s \(rule hold\)$/,
        ) as unknown,
      });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await client.end();
      writeFileSync(configFile, configYaml(''));
    }
  }, 60_000);
});
