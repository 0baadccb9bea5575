/// <reference lib="dom" />
/**
 * The console of a fleet replica reads the fleet: two real `agentgate serve` replicas (A and B) ship into one fleet
 * database (real PostgreSQL, a cluster of its own), and an auditor signed in to B's console (real Chromium, real
 * OpenID provider) sees A's sessions in the list (with the same filters and search), their timeline, the chain check
 * with A's recorded key, and an export identical to the CLI's from the fleet; a session open on A is followed
 * read-only from B; B's own sessions stay listed while the fleet database is away; roles are kept.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Browser } from 'playwright-core';
import { launchChromium, type ConsolePage } from './harness/browser.js';
import { runCli } from './harness/cli.js';
import { signInThroughProvider } from './harness/console-signin.js';
import { shipped, shippedSoFar, startFleetDatabase, type TestFleetDatabase } from './harness/fleet.js';
import { startOidcProvider, type TestOidcProvider } from './harness/oidc-provider.js';
import { freePort, startPostgres, type TestPostgres } from './harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';

const TOKEN = 'fleet-console-token-7d21';
const TEST_TIMEOUT_MS = 180_000;
const GROUPS: Record<string, readonly string[]> = {
  carol: ['auditors'],
  alice: ['dba'],
  erin: ['admins'],
};

let upstream: TestPostgres;
let fleetDb: TestFleetDatabase;
let idp: TestOidcProvider;
let browser: Browser;
let dir: string;
const config: Record<'A' | 'B', string> = { A: '', B: '' };
const consoleUrl: Record<'A' | 'B', string> = { A: '', B: '' };
const replica: Partial<Record<'A' | 'B', ServedGateway>> = {};
const pages: ConsolePage[] = [];

function writeReplicaConfig(node: 'A' | 'B', adminPort: number): string {
  const home = join(dir, node);
  const file = join(home, 'agentgate.yaml');
  const fleetSection = fleetDb.configYaml(node, home);
  writeFileSync(
    file,
    baseConfigYaml(home, { token: TOKEN }).replace(
      'admin: { listen: "127.0.0.1:0" }',
      `admin: { listen: "127.0.0.1:${adminPort}" }`,
    ) +
      `  oidc:
    - { issuer: "${idp.issuer}", audience: agentgate, jwks: "${idp.jwksUri}", groupsClaim: groups }
console:
  publicUrl: ${consoleUrl[node]}
  oidc: { issuer: "${idp.issuer}", clientId: ${idp.clientId}, clientSecret: ${idp.clientSecret}, scopes: [openid, profile, groups] }
  auditors: [group:auditors]
  admins: [group:admins]
approvals: { timeout: 60s, approvers: [group:dba] }
listeners:
${listenerYaml.postgres('db', upstream)}rules:
  - { name: no-drops, listeners: [db], match: { commands: [DROP] }, action: deny }
${fleetSection}`,
  );
  return file;
}

function agentClient(gateway: ServedGateway): pg.Client {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port('db'),
    user: 'devin',
    database: 'app',
    password: TOKEN,
  });
  client.on('error', () => undefined);
  return client;
}

/** A session with a tagged statement and a denied one. */
async function taggedSession(gateway: ServedGateway, tag: string): Promise<void> {
  const client = agentClient(gateway);
  await client.connect();
  await client.query(`SELECT '${tag}' AS tag, n FROM generate_series(1, 3) AS n`);
  await expect(client.query('DROP TABLE IF EXISTS nothing_here')).rejects.toThrow();
  await client.end();
}

interface Listed {
  id: string;
  node: string;
  protocol: string;
  endedAt: string | null;
}

async function fleetSessions(node: 'A' | 'B'): Promise<Listed[]> {
  const listed = await runCli(['sessions', 'list', '--config', config[node], '--json']);
  expect(listed.stderr).toBe('');
  return JSON.parse(listed.stdout) as Listed[];
}

async function signIn(node: 'A' | 'B', name: string, returnTo = '/'): Promise<ConsolePage> {
  const p = await signInThroughProvider(browser, idp, consoleUrl[node], name, returnTo);
  pages.push(p);
  return p;
}

/** The session ids listed on the page open now, in order. */
async function listedIds(p: ConsolePage): Promise<string[]> {
  return p.page
    .locator('table.sessions tbody tr[data-session]')
    .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset['session'] ?? ''));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-console-'));
  const ports = { A: await freePort(), B: await freePort() };
  consoleUrl.A = `http://127.0.0.1:${ports.A}`;
  consoleUrl.B = `http://127.0.0.1:${ports.B}`;
  [upstream, fleetDb, idp, browser] = await Promise.all([
    startPostgres(),
    startFleetDatabase(),
    startOidcProvider({
      redirectUri: [`${consoleUrl.A}/auth/callback`, `${consoleUrl.B}/auth/callback`],
      groups: GROUPS,
    }),
    launchChromium(),
  ]);
  config.A = writeReplicaConfig('A', ports.A);
  config.B = writeReplicaConfig('B', ports.B);
  await fleetDb.migrate(config.A);
  [replica.A, replica.B] = await Promise.all([serveProcess(config.A), serveProcess(config.B)]);
}, 180_000);

afterAll(async () => {
  for (const p of pages.splice(0)) await p.close().catch(() => undefined);
  await browser?.close();
  await Promise.all([replica.A?.stop(), replica.B?.stop()]);
  await Promise.all([upstream?.stop(), fleetDb?.stop(), idp?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("a replica's console reads the fleet", () => {
  it(
    "lists A's sessions on B's console with filters and search, and shows them as the fleet's CLI does",
    async () => {
      const a = replica.A!;
      const b = replica.B!;
      await taggedSession(a, 'made-on-a');
      await taggedSession(b, 'made-on-b');
      await Promise.all([shipped(a), shipped(b)]);
      const onA = (await fleetSessions('B')).find((s) => s.node === 'A' && s.protocol === 'postgres')!;
      const onB = (await fleetSessions('B')).find((s) => s.node === 'B' && s.protocol === 'postgres')!;
      expect(onA).toBeDefined();
      expect(onB).toBeDefined();

      const carol = await signIn('B', 'carol', '/sessions');
      const { page } = carol;
      expect(await page.textContent('#this-node')).toBe('B');
      const all = await listedIds(carol);
      expect(all).toEqual(expect.arrayContaining([onA.id, onB.id]));
      expect(await page.textContent(`tr[data-session="${onA.id}"] td.node`)).toContain('A');
      expect(await page.textContent(`tr[data-session="${onB.id}"] td.node`)).toContain('(this one)');

      // The same filters as without a fleet, answered by the fleet database.
      await page.goto(`${consoleUrl.B}/sessions?q=${encodeURIComponent('MADE-ON-A')}`);
      expect(await listedIds(carol)).toEqual([onA.id]);
      await page.goto(
        `${consoleUrl.B}/sessions?q=${encodeURIComponent('"made-on-a" generate_series')}&protocol=postgres&denied=1`,
      );
      expect(await listedIds(carol)).toEqual([onA.id]);
      await page.goto(`${consoleUrl.B}/sessions?q=made-on-a&identity=nobody`);
      expect(await listedIds(carol)).toEqual([]);
      await page.goto(`${consoleUrl.B}/sessions?denied=1&identity=devin&listener=db`);
      expect(await listedIds(carol)).toEqual(expect.arrayContaining([onA.id, onB.id]));
      await page.goto(`${consoleUrl.B}/sessions?approvals=1`);
      expect(await listedIds(carol)).toEqual([]);
      await carol.shot('fleet-console-list');

      // Server-side paging across both replicas' sessions (50 a page): each session once, newest first.
      await Promise.all(
        (['A', 'B'] as const).map(async (node) => {
          for (let i = 0; i < 27; i++) {
            const client = agentClient(replica[node]!);
            await client.connect();
            await client.query(`SELECT 'paging ${node} ${i}'`);
            await client.end();
          }
        }),
      );
      await Promise.all([shipped(a), shipped(b)]);
      const seen: string[] = [];
      for (let href: string | null = '/sessions?protocol=postgres'; href !== null;) {
        await page.goto(`${consoleUrl.B}${href}`);
        seen.push(...(await listedIds(carol)));
        const nextLink = page.locator('a[rel=next]');
        href = (await nextLink.count()) > 0 ? await nextLink.getAttribute('href') : null;
      }
      const cli = await fleetSessions('B');
      expect(seen).toEqual(
        cli
          .filter((s) => s.protocol === 'postgres')
          .map((s) => s.id)
          .reverse(),
      );
      expect(seen.length).toBeGreaterThan(50);

      // A's session on B's console: timeline, where it was read, the chain checked with A's recorded key.
      await page.goto(`${consoleUrl.B}/sessions/${onA.id}`);
      expect(await page.textContent('#session-node')).toBe('A');
      expect(await page.textContent('#fleet-source')).toContain('read from the fleet database');
      expect(await page.textContent('.timeline')).toContain("SELECT 'made-on-a' AS tag");
      expect(await page.textContent('.timeline')).toContain('DROP TABLE IF EXISTS nothing_here');
      expect(await page.textContent('#chain .chain-state')).toBe('Chain intact');
      expect(await page.textContent('#chain')).toContain('replica A, as recorded in the fleet database');
      await carol.shot('fleet-console-session');

      // The export downloaded from B's console is the CLI's export from the fleet, byte for byte.
      const fromConsole = await page.evaluate(
        async (url) => (await fetch(url)).text(),
        `/sessions/${onA.id}/export.jsonl`,
      );
      const fromCli = await runCli(['export', onA.id, '--config', config.B, '--format', 'jsonl']);
      expect(fromCli.code).toBe(0);
      expect(fromConsole).toBe(fromCli.stdout);
      const fromA = await runCli(['export', onA.id, '--config', config.A, '--local', '--format', 'jsonl']);
      expect(fromConsole).toBe(fromA.stdout);

      // The overview counts every replica's activity and names the replicas.
      await page.goto(`${consoleUrl.B}/`);
      const nodes = await page.locator('#fleet-nodes tbody tr td:first-child').allTextContents();
      expect(nodes.map((n) => n.split(' ')[0])).toEqual(['A', 'B']);
      expect(await page.textContent('#fleet')).toContain('shipping');
      const commands = await page.locator('#activity-chart rect.commands title').allTextContents();
      const total = commands.reduce((n, t) => n + parseInt(t, 10), 0);
      expect(total).toBeGreaterThanOrEqual(2 * 2 + 2 * 27); // both replicas' commands
      await carol.shot('fleet-console-overview');

      // B's own session is read from B's store, and the fleet holds all of it.
      await page.goto(`${consoleUrl.B}/sessions/${onB.id}`);
      expect(await page.textContent('#fleet-source')).toContain("read from this replica's store");
      expect(await page.textContent('#fleet-source')).toContain('The fleet database holds all of it.');
      expect(carol.cspViolations).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'keeps the roles: a non-auditor gets 403 for fleet sessions, pages and exports',
    async () => {
      const onA = (await fleetSessions('B')).find((s) => s.node === 'A')!;
      const alice = await signIn('B', 'alice', '/approvals');
      for (const path of ['/sessions', `/sessions/${onA.id}`, `/sessions/${onA.id}/export.jsonl`]) {
        const status = await alice.page.evaluate(async (url) => (await fetch(url)).status, path);
        expect(status).toBe(403);
      }
      const res = await fetch(`${consoleUrl.B}/sessions/${onA.id}/export.jsonl`, { redirect: 'manual' });
      expect(res.status).toBe(303); // not signed in: to the sign-in page
      expect(res.headers.get('location')).toMatch(/^\/login\?returnTo=/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'follows a session open on A from B read-only, its new events arriving through the fleet',
    async () => {
      const a = replica.A!;
      const client = agentClient(a);
      await client.connect();
      await client.query("SELECT 'first-while-open' AS step");
      await shippedSoFar(a);
      const open = (await fleetSessions('B')).find((s) => s.node === 'A' && s.endedAt === null)!;
      expect(open).toBeDefined();

      const erin = await signIn('B', 'erin', `/sessions?active=1`);
      expect(await listedIds(erin)).toContain(open.id);
      expect(await erin.page.textContent(`tr[data-session="${open.id}"]`)).toContain('follow');
      await erin.page.goto(`${consoleUrl.B}/sessions/${open.id}/live`);
      expect(await erin.page.textContent('#held-elsewhere')).toContain('cannot end it');
      // An admin of B's console gets no button for a session that runs on A.
      expect(await erin.page.locator('#terminate').count()).toBe(0);
      await erin.page.waitForSelector('#live-events li:has-text("first-while-open")');
      await client.query("SELECT 'second-while-open' AS step");
      await erin.page.waitForSelector('#live-events li:has-text("second-while-open")', { timeout: 30_000 });
      // Asked anyway (a form from an old page), B refuses and says where it runs.
      const refused = await erin.page.evaluate(async (id) => {
        const csrf = (document.querySelector('input[name=csrf]') as HTMLInputElement | null)?.value ?? '';
        const res = await fetch(`/sessions/${id}/terminate`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `csrf=${encodeURIComponent(csrf)}`,
        });
        return { status: res.status, text: await res.text() };
      }, open.id);
      expect(refused.status).toBe(409);
      expect(refused.text).toContain('runs on replica A');
      await erin.shot('fleet-console-remote-live');
      await client.end();
      await erin.page.waitForSelector('#live-ended:not([hidden])', { timeout: 30_000 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "lists B's own sessions while the fleet database is away, and its sessions once shipped",
    async () => {
      const b = replica.B!;
      const onA = (await fleetSessions('B')).find((s) => s.node === 'A')!;
      await fleetDb.cluster.kill();
      try {
        await taggedSession(b, 'made-while-away');
        const carol = await signIn('B', 'carol', '/sessions?q=made-while-away');
        expect(await carol.page.textContent('#fleet-notice')).toContain('only this replica');
        const [id] = await listedIds(carol);
        expect(id).toBeDefined();
        await carol.page.goto(`${consoleUrl.B}/sessions/${id!}`);
        expect(await carol.page.textContent('.timeline')).toContain('made-while-away');
        // Another replica's session needs the fleet database: the page says so.
        const status = await carol.page.evaluate(
          async (url) => (await fetch(url)).status,
          `/sessions/${onA.id}`,
        );
        expect(status).toBe(503);
        await carol.shot('fleet-console-away');
      } finally {
        await fleetDb.cluster.start();
      }
      await shipped(b, 90_000);
      const carol = await signIn('B', 'carol', '/sessions?q=made-while-away');
      const ids = await listedIds(carol);
      expect(ids).toHaveLength(1);
      expect(await carol.page.locator('#fleet-notice').count()).toBe(0);
      expect(await carol.page.textContent(`tr[data-session="${ids[0]!}"] td.node`)).not.toContain(
        'not shipped',
      );
    },
    TEST_TIMEOUT_MS,
  );
});
