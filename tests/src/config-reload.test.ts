/**
 * `agentgate serve` as an operator runs it, reloaded with SIGHUP (systemctl reload): a new rule applies to the next
 * statement of a session that is already open, so do changed masking rules, a changed approvals section applies to
 * the next held statement, a broken file changes nothing, and the reload is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from './harness/cli.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';

const TOKEN = 'reload-test-token-3f9c2a';
/** An approver's token: alice may decide devin's held statements. */
const ALICE_TOKEN = 'reload-test-alice-token-7e01';
/** Another token, an approver only where a rule names him. */
const BOB_TOKEN = 'reload-test-bob-token-52c8';
const sha256 = (token: string): string => createHash('sha256').update(token).digest('hex');
let server: TestPostgres;
let dir: string;
let configFile: string;
let gateway: ServedGateway;

/** The file with `extraRules` appended to its rules and the db listener's `allow` as given. */
function configYaml(extraRules: string, allow = 'group:agents'): string {
  return (
    baseConfigYaml(dir, { token: TOKEN }).replace(
      / {2}tokens: \[(.*)\]\n/,
      (_all, devin: string) =>
        `  tokens:\n  - ${devin}\n  - { name: alice, sha256: "${sha256(ALICE_TOKEN)}" }\n` +
        `  - { name: bob, sha256: "${sha256(BOB_TOKEN)}" }\n`,
    ) +
    'listeners:\n' +
    listenerYaml.postgres('db', server).replace('allow: [group:agents]', `allow: [${allow}]`) +
    'rules:\n  - { name: no-drops, protocol: postgres, match: { commands: [DROP] }, action: deny }\n' +
    extraRules +
    (extraRules.includes('approvals:') ? '' : 'approvals: { approvers: [identity:alice] }\n')
  );
}

/** Write the file, SIGHUP, and resolve with the log line that reports the outcome. */
async function reloadWith(
  extraRules: string,
  outcome = 'configuration reloaded',
  allow?: string,
): Promise<Record<string, unknown>> {
  writeFileSync(configFile, configYaml(extraRules, allow));
  const logged = gateway.nextLog((l) => l['msg'] === outcome, 15_000);
  gateway.process.kill('SIGHUP');
  return logged;
}

interface Pending {
  readonly id: string;
  readonly approvers: string[];
}

/** The one held request `token`'s holder may see, once the gateway lists it. */
async function theHeldRequest(token: string): Promise<Pending> {
  let pending: Pending[] = [];
  for (let i = 0; i < 50 && pending.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const listed = await fetch(`${gateway.admin}/api/approvals`, {
      headers: { authorization: `Bearer ${token}` },
    });
    pending = (await listed.json()) as Pending[];
  }
  expect(pending).toHaveLength(1);
  return pending[0]!;
}

/** `agentgate approvals approve ID` as alice: its exit code. */
async function approveAsAlice(id: string): Promise<number> {
  const approved = await runCli([
    'approvals',
    'approve',
    id,
    '--admin',
    gateway.admin,
    '--token',
    ALICE_TOKEN,
  ]);
  return approved.code;
}

async function connect(token = TOKEN, user = 'devin'): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port('db'),
    user,
    database: 'app',
    password: token,
  });
  await client.connect();
  return client;
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
  gateway = await serveProcess(configFile);
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('config reload (SIGHUP)', () => {
  it('applies new rules to open sessions, keeps the running config when the file is broken, and records it', async () => {
    const client = await connect();
    try {
      expect((await client.query("SELECT 'reload-canary' AS v")).rows[0].v).toBe('reload-canary');

      const reloaded = await reloadWith(
        '  - { name: canary, protocol: postgres, match: { pattern: "reload-canary" }, action: deny }\n',
      );
      expect(reloaded).toMatchObject({ rules: 2, masking: 0 });
      await expect(client.query("SELECT 'reload-canary' AS v")).rejects.toMatchObject({
        code: '42501',
        message: 'agentgate: denied by rule canary',
      });

      // A broken file: reported, nothing changes (the canary rule stays, everything else still works).
      const failed = await reloadWith(
        '  - { name: broken, protocol: postgres, match: { colour: red }, action: deny }\n',
        'configuration reload failed; the running configuration stays',
      );
      expect(String(failed['error'])).toContain('rules[1].match.colour');
      await expect(client.query("SELECT 'reload-canary' AS v")).rejects.toMatchObject({ code: '42501' });
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);

      // A change that needs a restart is named, not applied (`allow` is the one listener setting a reload applies).
      writeFileSync(
        configFile,
        configYaml('').replace('allow: [group:agents]', 'allow: [group:agents]\n    recordRows: 3'),
      );
      const partial = gateway.nextLog(
        (l) => l['msg'] === 'configuration changes that take effect only after a restart',
      );
      gateway.process.kill('SIGHUP');
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

  it('holds a listener switched to default: deny from the reload on, so rules written for it never run alone', async () => {
    const client = await connect();
    try {
      // Allow-list rules need no deny rules: a file that switches to `default: deny` permits what may run and
      // drops the rest. Those rules under the old `default: allow` would let everything run.
      writeFileSync(
        configFile,
        configYaml(
          '  - { name: inserts, protocol: postgres, match: { commands: [INSERT] }, action: allow }\n',
        )
          .replace('allow: [group:agents]', 'allow: [group:agents]\n    default: deny')
          .replace(/ {2}- \{ name: no-drops.*\n/, ''),
      );
      const partial = gateway.nextLog(
        (l) => l['msg'] === 'configuration changes that take effect only after a restart',
      );
      gateway.process.kill('SIGHUP');
      expect((await partial)['sections']).toEqual(['listeners']);
      await expect(client.query("SELECT 'allow-list' AS v")).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining('builtin:default-deny') as unknown,
      });
      await client.query("INSERT INTO reload_items VALUES ('allow-list')");

      // Back to `default: allow`: that loosening waits for the restart, and the reloaded deny rule applies.
      await reloadWith('');
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await client.end();
    }
  }, 60_000);

  it('applies changed masking rules to an open session at its next statement, simple and extended', async () => {
    const client = await connect();
    const simple = async (): Promise<string> =>
      (await client.query('SELECT email FROM reload_people')).rows[0].email as string;
    const extended = async (): Promise<string> =>
      (await client.query({ text: 'SELECT email FROM reload_people WHERE name = $1', values: ['Ada'] }))
        .rows[0].email as string;
    try {
      expect(await simple()).toBe('ada@example.com');
      expect(await extended()).toBe('ada@example.com');

      // The connection stays open (a pool's would for hours): the new rule must reach it, not only new ones.
      expect(
        await reloadWith(
          'masking:\n  - { name: pii, columns: ["reload_people.email"], replacement: "****" }\n',
        ),
      ).toMatchObject({ masking: 1 });
      expect(await simple()).toBe('****');
      expect(await extended()).toBe('****');

      expect(await reloadWith('')).toMatchObject({ masking: 0 });
      expect(await simple()).toBe('ada@example.com');
      expect(await extended()).toBe('ada@example.com');
    } finally {
      await client.end();
    }
  }, 60_000);

  it('applies a reloaded approvals section to the next held statement', async () => {
    const client = await connect();
    try {
      // A rule that holds the statement, and a timeout short enough to watch expire (the default is 120 s).
      await reloadWith(
        '  - { name: hold, protocol: postgres, match: { pattern: "needs-approval" }, action: approve }\n' +
          'approvals: { timeout: 1s }\n',
      );
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
    }
  }, 60_000);

  it('refuses a held statement approved after a reload made a rule deny it', async () => {
    await reloadWith(
      '  - { name: hold, protocol: postgres, match: { pattern: "stop-me" }, action: approve }\n',
    );
    const client = await connect();
    try {
      const held = client.query("SELECT 'stop-me' AS v");
      held.catch(() => undefined);
      const pending = await theHeldRequest(ALICE_TOKEN);
      // The operator stops the statement for everyone; an approver who decides afterwards must not run it.
      await reloadWith(
        '  - { name: hold, protocol: postgres, match: { pattern: "stop-me" }, action: deny }\n',
      );
      expect(await approveAsAlice(pending.id)).toBe(0);
      await expect(held).rejects.toMatchObject({
        code: '42501',
        message: `agentgate: denied by rule hold (the rules were reloaded while approval ${pending.id} was pending)`,
      });
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await client.end();
    }
  }, 60_000);

  it('lets no approver a reload removed decide a statement held before it', async () => {
    const rule = (approvers: string): string =>
      `  - { name: hold, protocol: postgres, match: { pattern: "two-approvers" }, action: approve, approvers: [${approvers}] }\n`;
    await reloadWith(rule('identity:alice, identity:bob'));
    const client = await connect();
    try {
      const held = client.query("SELECT 'two-approvers' AS v");
      held.catch(() => undefined);
      const pending = await theHeldRequest(BOB_TOKEN);
      expect(pending.approvers).toEqual(['identity:alice', 'identity:bob']);
      // The operator takes bob off the rule: he no longer decides what waits, though it was held naming him.
      await reloadWith(rule('identity:alice'));
      const byBob = await fetch(`${gateway.admin}/api/approvals/${pending.id}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BOB_TOKEN}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(byBob.status).toBe(403);
      expect(await byBob.json()).toMatchObject({
        code: 'FORBIDDEN',
        message: expect.stringContaining('a reload changed the approvers of rule hold') as unknown,
      });
      expect(await approveAsAlice(pending.id)).toBe(0);
      expect((await held).rows[0].v).toBe('two-approvers');
    } finally {
      await client.end();
    }
  }, 60_000);

  it('warns when reloaded rules name a listener that is not running (a renamed one), and applies the rest', async () => {
    // The file renames db to prod-db: listeners change only at a restart, so the running db is not prod-db.
    writeFileSync(
      configFile,
      configYaml(
        '  - { name: renamed, protocol: postgres, listeners: [prod-db], match: { pattern: "renamed-canary" }, action: deny }\n',
      ).replace('  - name: db\n', '  - name: prod-db\n'),
    );
    const warned = gateway.nextLog(
      (l) =>
        l['msg'] ===
        'reloaded rules name listeners that are not running (listeners change only at a restart)',
    );
    const reloaded = gateway.nextLog((l) => l['msg'] === 'configuration reloaded');
    gateway.process.kill('SIGHUP');
    expect(await warned).toMatchObject({
      rules: [{ rule: 'renamed', listeners: ['prod-db'] }],
      running: ['db'],
    });
    expect(await reloaded).toMatchObject({
      rules: 2,
      rulesForListenersNotRunning: [{ rule: 'renamed', listeners: ['prod-db'] }],
    });
    const client = await connect();
    try {
      // Applied as before: the other rules are in force, and the running db is not prod-db.
      await expect(client.query('DROP TABLE reload_items')).rejects.toMatchObject({ code: '42501' });
      expect((await client.query("SELECT 'renamed-canary' AS v")).rows[0].v).toBe('renamed-canary');
    } finally {
      await client.end();
    }
    expect(await reloadWith('')).not.toHaveProperty('rulesForListenersNotRunning');
  }, 60_000);

  it("applies a listener's reloaded allow: new connections at once, and open sessions it no longer admits end", async () => {
    // bob is in no group: only an `allow` naming him lets him use db, and this reload does, without a restart.
    const logsBefore = gateway.logs.length;
    expect(await reloadWith('', 'configuration reloaded', 'group:agents, identity:bob')).toMatchObject({
      allow: { listeners: ['db'], sessionsEnded: 0 },
    });
    const bob = await connect(BOB_TOKEN, 'bob');
    const devin = await connect();
    // `allow` alone needs no restart (the warning would have followed the reload's line, before these connected).
    expect(gateway.logs.slice(logsBefore).map((l) => l['msg'])).not.toContain(
      'configuration changes that take effect only after a restart',
    );
    // node-postgres reports the FATAL, then the closed connection: the first is the gateway's word.
    const bobEnded = new Promise<Error>((resolve) => bob.on('error', resolve));
    try {
      expect((await bob.query("SELECT 'bob-in' AS v")).rows[0].v).toBe('bob-in');
      // The operator takes bob off db again: his open session ends now, devin's goes on.
      expect(await reloadWith('', 'configuration reloaded', 'group:agents')).toMatchObject({
        allow: { listeners: ['db'], sessionsEnded: 1 },
      });
      expect((await bobEnded).message).toContain('bob is no longer allowed on listener db');
      expect((await devin.query("SELECT 'devin-still-in' AS v")).rows[0].v).toBe('devin-still-in');
      await expect(connect(BOB_TOKEN, 'bob')).rejects.toMatchObject({ code: '28000' });
    } finally {
      await devin.end();
      await bob.end().catch(() => undefined);
    }
    const list = await runCli(['sessions', 'list', '--config', configFile, '--json']);
    expect(list.code).toBe(0);
    const ended = (
      JSON.parse(list.stdout) as { identity: string; listener: string; endReason?: string }[]
    ).filter((s) => s.identity === 'bob' && s.listener === 'db');
    expect(ended).toEqual([
      expect.objectContaining({
        endReason: 'ended by admin operator (SIGHUP): bob is no longer allowed on listener db',
      }),
    ]);
  }, 60_000);
});
