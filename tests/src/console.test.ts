/// <reference lib="dom" />
/**
 * The web console in a real Chromium against a real `agentgate serve` (its own process), real PostgreSQL and sshd,
 * and a real OpenID provider (oidc-provider) with its own login page. People: alice approves (group dba), carol
 * audits, erin is a console admin, devin is the agent (agents, and dba: so he may not approve his own requests).
 * Each test saves a screenshot under tests/artifacts/console/.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import ssh2 from 'ssh2';
import { generateSigningKeyPair, mintToken } from '@agentgate/identity';
import { launchChromium, openPage, type ConsolePage } from './harness/browser.js';
import { runCli } from './harness/cli.js';
import { signInThroughProvider } from './harness/console-signin.js';
import { startOidcProvider, type TestOidcProvider } from './harness/oidc-provider.js';
import { freePort, startPostgres, type TestPostgres } from './harness/postgres.js';
import { listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, startSshd, type RunResult, type TestSshd } from './harness/sshd.js';

let postgres: TestPostgres;
let sshd: TestSshd;
let idp: TestOidcProvider;
let gateway: ServedGateway;
let browser: Browser;
let dir: string;
let configFile: string;
let consoleUrl: string;
let devinToken: string;
let devinKey: { path: string; publicKey: string };
const open: ConsolePage[] = [];
/** Each browser test waits for conditions; this only bounds one that never comes, on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 120_000;

const GROUPS: Record<string, readonly string[]> = {
  alice: ['dba'],
  carol: ['auditors'],
  devin: ['agents', 'dba'],
  erin: ['admins'],
  mallory: ['visitors'],
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-console-'));
  const adminPort = await freePort();
  consoleUrl = `http://127.0.0.1:${adminPort}`;
  [postgres, sshd, idp, browser] = await Promise.all([
    startPostgres(),
    startSshd(),
    startOidcProvider({ redirectUri: `${consoleUrl}/auth/callback`, groups: GROUPS }),
    launchChromium(),
  ]);
  await postgres.psql(['-d', 'app'], {
    input:
      'SET ROLE app; CREATE TABLE console_items (id int PRIMARY KEY, note text); ' +
      "INSERT INTO console_items SELECT g, 'item ' || g FROM generate_series(1, 20) g;",
  });
  const local = await generateSigningKeyPair('ES256');
  writeFileSync(join(dir, 'idp-private.json'), JSON.stringify(local.privateJwk), { mode: 0o600 });
  writeFileSync(join(dir, 'idp-jwks.json'), JSON.stringify(local.jwks));
  devinToken = await mintToken({
    privateJwk: local.privateJwk,
    sub: 'devin',
    groups: ['agents', 'dba'],
    ttlSeconds: 3600,
    issuer: 'agentgate-local',
    audience: 'agentgate',
  });
  devinKey = makeKeyPair(dir, 'devin');
  configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    `store: { path: ${join(dir, 'transcripts')} }
signingKey: ${join(dir, 'signing-key.json')}
admin: { listen: "127.0.0.1:${adminPort}" }
identity:
  oidc:
    - { issuer: agentgate-local, audience: agentgate, jwks: ${join(dir, 'idp-jwks.json')}, groupsClaim: groups }
    - { issuer: "${idp.issuer}", audience: agentgate, jwks: "${idp.jwksUri}", groupsClaim: groups }
  sshKeys: [{ name: devin, publicKey: "${devinKey.publicKey}", groups: [agents, dba] }]
approvals: { timeout: 60s, approvers: [group:dba] }
console:
  publicUrl: ${consoleUrl}
  oidc: { issuer: "${idp.issuer}", clientId: ${idp.clientId}, clientSecret: ${idp.clientSecret}, scopes: [openid, profile, groups] }
  auditors: [group:auditors]
  admins: [group:admins]
listeners:
${listenerYaml.postgres('db', postgres)}${listenerYaml.ssh('shell', sshd, dir)}rules:
  - { name: deletes-need-review, protocol: postgres, match: { commands: [DELETE] }, action: approve }
  - { name: marked-for-review, protocol: postgres, match: { pattern: "hold-for-review" }, action: approve }
`,
  );
  gateway = await serveProcess(configFile);
}, 120_000);

afterAll(async () => {
  for (const p of open.splice(0)) await p.close().catch(() => undefined);
  await browser?.close();
  await gateway?.stop();
  await Promise.all([postgres?.stop(), sshd?.stop(), idp?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function newPage(): Promise<ConsolePage> {
  const page = await openPage(browser);
  open.push(page);
  return page;
}

/** Browser contexts of people who signed in already: later tests open pages in them (the IdP login is slow). */
const signedIn = new Map<string, BrowserContext>();

/**
 * A page of `name` at `returnTo`: the first time through the OpenID provider's own login and consent pages, later in
 * the same browser context (`fresh` forces a new sign-in).
 */
async function signIn(name: string, returnTo = '/', fresh = false): Promise<ConsolePage> {
  const known = fresh ? undefined : signedIn.get(name);
  if (known !== undefined) {
    const p = await openPage(browser, known);
    open.push(p);
    await p.page.goto(`${consoleUrl}${returnTo}`);
    await p.page.waitForSelector('#signed-in-identity');
    return p;
  }
  const p = await signInThroughProvider(browser, idp, consoleUrl, name, returnTo);
  open.push(p);
  if (!fresh) signedIn.set(name, p.context);
  return p;
}

/** psql through the gateway as devin; resolves when psql exits. */
function psql(sql: string): Promise<RunResult> {
  return run(
    'psql',
    [
      '-X',
      '-v',
      'ON_ERROR_STOP=1',
      '-v',
      'VERBOSITY=verbose',
      '-h',
      '127.0.0.1',
      '-p',
      String(gateway.port('db')),
      '-U',
      'devin',
      '-d',
      'app',
      '-c',
      sql,
    ],
    {
      env: { ...process.env, PGPASSWORD: devinToken, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' },
      timeoutMs: 90_000,
    },
  );
}

/** The gateway's `approval requested` log line for the next hold. */
function nextHold(): Promise<Record<string, unknown>> {
  return gateway.nextLog((l) => l['msg'] === 'approval requested', 30_000);
}

const pendingCard = (page: Page, id: string) => page.locator(`#pending #approval-${id}`);

async function decide(page: Page, id: string, decision: 'approve' | 'deny', reason: string): Promise<void> {
  const card = pendingCard(page, id);
  await card.locator('input[name=reason]').fill(reason);
  await Promise.all([page.waitForURL(/\/approvals/), card.locator(`button[value=${decision}]`).click()]);
  await page.waitForSelector(`#decided #approval-${id}`);
}

interface ListedSession {
  id: string;
  listener: string;
  protocol: string;
  identity: string;
  endReason?: string;
}

async function sessions(identity?: string): Promise<ListedSession[]> {
  const filter = identity === undefined ? [] : ['--identity', identity];
  const listed = await runCli(['sessions', 'list', '--config', configFile, '--json', ...filter]);
  expect(listed.code).toBe(0);
  return JSON.parse(listed.stdout) as ListedSession[];
}

async function eventsOf(id: string): Promise<Record<string, unknown>[]> {
  const shown = await runCli(['sessions', 'show', id, '--config', configFile, '--json']);
  expect(shown.code).toBe(0);
  return (JSON.parse(shown.stdout) as { events: Record<string, unknown>[] }).events;
}

/** Poll the store (read by the CLI, as an auditor would) until `find` yields something. */
async function eventually<T>(
  find: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('web console', () => {
  it(
    'signs in through the provider’s login page and shows the signed-in identity',
    async () => {
      const p = await signIn('alice', '/approvals');
      expect(await p.page.textContent('#signed-in-identity')).toBe('alice');
      expect(new URL(p.page.url()).pathname).toBe('/approvals');
      // The session cookie is HttpOnly (no script can read it) and SameSite=Lax.
      const cookies = await p.context.cookies(consoleUrl);
      const session = cookies.find((c) => c.name === 'agentgate_console');
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
      expect(await p.page.evaluate(() => document.cookie)).not.toContain('agentgate_console');
      expect(p.cspViolations).toEqual([]);
      await p.shot('01-signed-in');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'shows a held statement within a second without reload; Approve lets psql finish, Deny gives 42501 with the reason',
    async () => {
      const alice = await signIn('alice', '/approvals');
      await alice.page.waitForSelector('#pending-empty', { state: 'visible' });

      const held = nextHold();
      const first = psql('SELECT count(*) FROM console_items; DELETE FROM console_items WHERE id = 1');
      const hold = await held;
      const id = String(hold['approval']);
      expect(hold['consoleUrl']).toBe(`${consoleUrl}/approvals/${id}`);
      const shownAt = await (
        await alice.page.waitForFunction(
          (approval) => (document.querySelector(`#pending #approval-${approval}`) ? Date.now() : 0),
          id,
          { polling: 20 },
        )
      ).jsonValue();
      expect(shownAt - Date.parse(String(hold['time']))).toBeLessThan(1000);
      const card = pendingCard(alice.page, id);
      await expect(card.locator('.requester').textContent()).resolves.toContain('devin');
      await expect(card.locator('mark.held').textContent()).resolves.toBe(
        'DELETE FROM console_items WHERE id = 1',
      );
      await expect(card.locator('.sql').textContent()).resolves.toContain(
        'SELECT count(*) FROM console_items',
      );
      await expect(card.locator('button[value=approve]').isEnabled()).resolves.toBe(true);
      await alice.shot('02-approvals-pending');
      await decide(alice.page, id, 'approve', 'one row is fine');
      const approved = await first;
      expect(approved.code).toBe(0);
      expect(approved.stdout.toString()).toContain('DELETE 1');
      await expect(alice.page.locator(`#approval-${id} .decided-by`).textContent()).resolves.toBe('alice');

      const heldAgain = nextHold();
      const second = psql('DELETE FROM console_items WHERE id = 2');
      const id2 = String((await heldAgain)['approval']);
      await pendingCard(alice.page, id2).waitFor();
      await decide(alice.page, id2, 'deny', 'not on a Friday');
      const denied = await second;
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toContain('42501');
      expect(denied.stderr).toContain('not on a Friday');
      await expect(alice.page.locator(`#approval-${id2} .reason`).textContent()).resolves.toBe(
        'not on a Friday',
      );
      expect(alice.cspViolations).toEqual([]);
      await alice.shot('02-approvals-decided');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'gives the requester no enabled buttons, non-approvers none, and refuses (403, recorded) a forged decision',
    async () => {
      const devin = await signIn('devin', '/approvals');
      const carol = await signIn('carol', '/approvals');
      const held = nextHold();
      const statement = psql('DELETE FROM console_items WHERE id = 3');
      const id = String((await held)['approval']);

      const own = pendingCard(devin.page, id);
      await own.waitFor();
      await expect(own.locator('button[value=approve]').isDisabled()).resolves.toBe(true);
      await expect(own.locator('button[value=deny]').isDisabled()).resolves.toBe(true);
      await expect(own.locator('.why').textContent()).resolves.toContain('your own request');
      await devin.shot('03-own-request');

      const seen = pendingCard(carol.page, id);
      await seen.waitFor();
      expect(await seen.locator('button').count()).toBe(0);
      await carol.shot('03-non-approver');

      // carol forges the form post an approver would send, with her own valid CSRF token.
      const forged = await carol.page.evaluate(async (approval) => {
        const csrf = (document.querySelector('input[name=csrf]') as HTMLInputElement).value;
        const response = await fetch(`/approvals/${approval}/decide`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf, decision: 'approve', reason: 'trust me' }).toString(),
        });
        return response.status;
      }, id);
      expect(forged).toBe(403);
      // devin's own approval is refused the same way.
      const self = await devin.page.evaluate(async (approval) => {
        const csrf = (document.querySelector('input[name=csrf]') as HTMLInputElement).value;
        const response = await fetch(`/approvals/${approval}/decide`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf, decision: 'approve' }).toString(),
        });
        return response.status;
      }, id);
      expect(self).toBe(403);
      await expect(pendingCard(carol.page, id).count()).resolves.toBe(1);

      const refused = await eventually(async () => {
        // Newest first: carol's sign-ins are recorded under the console's source too.
        const admin = (await sessions('carol')).filter((s) => s.listener === 'console').reverse();
        for (const s of admin) {
          const command = (await eventsOf(s.id)).find((e) => e['type'] === 'command');
          if (command?.['text'] === 'console request refused') return command;
        }
        return undefined;
      }, 'the refused request in the transcript');
      expect(refused['detail']).toMatchObject({ reason: 'You are not an approver.' });

      const alice = await signIn('alice', `/approvals/${id}`);
      await decide(alice.page, id, 'deny', 'cleaning up');
      expect((await statement).stderr).toContain('cleaning up');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a state-changing request without the CSRF token',
    async () => {
      const alice = await signIn('alice', '/approvals');
      const held = nextHold();
      const statement = psql('DELETE FROM console_items WHERE id = 4');
      const id = String((await held)['approval']);
      await pendingCard(alice.page, id).waitFor();
      const status = await alice.page.evaluate(async (approval) => {
        const response = await fetch(`/approvals/${approval}/decide`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ decision: 'approve' }).toString(),
        });
        return response.status;
      }, id);
      expect(status).toBe(403);
      await alice.page.reload();
      await expect(pendingCard(alice.page, id).count()).resolves.toBe(1);
      await alice.shot('04-csrf-refused-still-pending');
      await decide(alice.page, id, 'deny', 'done testing');
      expect((await statement).code).not.toBe(0);
      // With the token: deciding it again says it was decided; an id nobody holds says there is no such request.
      const again = await alice.page.evaluate(
        async (ids) => {
          const csrf = document.querySelector<HTMLInputElement>('input[name=csrf]')!.value;
          const answers: { status: number; title: string | undefined }[] = [];
          for (const approval of ids) {
            const response = await fetch(`/approvals/${approval}/decide`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ decision: 'approve', csrf }).toString(),
            });
            const page = new DOMParser().parseFromString(await response.text(), 'text/html');
            answers.push({
              status: response.status,
              title: page.querySelector('h1')?.textContent ?? undefined,
            });
          }
          return answers;
        },
        [id, '01M93WMXHYW6C5KTJ8M29Z48D7'],
      );
      expect(again).toEqual([
        { status: 409, title: 'Already decided' },
        { status: 404, title: 'No such request' },
      ]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'replays an interactive SSH session in the player: the typed command and its output',
    async () => {
      const client = new ssh2.Client();
      await new Promise<void>((resolve, reject) => {
        client.on('ready', resolve).on('error', reject);
        client.connect({
          host: '127.0.0.1',
          port: gateway.port('shell'),
          username: 'devin',
          privateKey: readFileSync(devinKey.path),
        });
      });
      const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.shell({ term: 'xterm', cols: 80, rows: 24 }, (err, ch) => (err ? reject(err) : resolve(ch))),
      );
      let output = '';
      channel.on('data', (d: Buffer) => (output += d.toString()));
      const waitFor = async (re: RegExp): Promise<void> => {
        const deadline = Date.now() + 15_000;
        while (!re.test(output)) {
          if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(output)}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await waitFor(/[#$] $/m);
      channel.write('echo player-check-$((6*7))\r');
      await waitFor(/player-check-42/);
      await new Promise<void>((resolve) => {
        channel.on('close', () => resolve());
        channel.write('exit\r');
      });
      client.end();
      const session = await eventually(
        async () => (await sessions()).find((s) => s.listener === 'shell' && s.endReason !== undefined),
        'the ssh session',
      );

      const carol = await signIn('carol', `/sessions/${session.id}`);
      await carol.page.waitForSelector('#player .ap-player');
      await carol.page.click('#player .ap-player');
      await carol.page.waitForFunction(
        () => {
          const text = document.querySelector('#player')?.textContent ?? '';
          return text.includes('echo player-check-$((6*7))') && /player-check-42\s/.test(text);
        },
        undefined,
        { timeout: 30_000 },
      );
      await expect(carol.page.locator('.chain-state').textContent()).resolves.toBe('Chain intact');
      expect(carol.cspViolations).toEqual([]);
      await carol.shot('05-ssh-player');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'renders statements and shell lines carrying XSS payloads and escape sequences as inert text',
    async () => {
      const script = '<script>window.__agentgateXss=1</script>';
      const img = '"><img src=x onerror="window.__agentgateXss=2">';
      const allowed = await psql(
        `SELECT '${script}' AS a, '${img}' AS b, E'\\x1b[2J\\x1b]0;pwned\\x07' AS c`,
      );
      expect(allowed.code).toBe(0);
      const sshExec = await run(
        'ssh',
        [
          '-F',
          '/dev/null',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'BatchMode=yes',
          '-o',
          'LogLevel=ERROR',
          '-o',
          'IdentitiesOnly=yes',
          '-i',
          devinKey.path,
          '-p',
          String(gateway.port('shell')),
          'devin@127.0.0.1',
          `echo '<img src=x onerror=window.__agentgateXss=3>' '${script}'`,
        ],
        { timeoutMs: 30_000 },
      );
      expect(sshExec.code).toBe(0);

      // A held statement with a payload, on the approvals page.
      const alice = await signIn('alice', '/approvals');
      const held = nextHold();
      const statement = psql(`SELECT 'hold-for-review ${script}'`);
      const id = String((await held)['approval']);
      await pendingCard(alice.page, id).waitFor();
      expect(
        await alice.page.evaluate(() => (window as unknown as { __agentgateXss: number }).__agentgateXss),
      ).toBe(0);
      await expect(pendingCard(alice.page, id).locator('.sql').textContent()).resolves.toContain(script);
      await decide(alice.page, id, 'deny', `<b>no</b> ${img}`);
      expect((await statement).code).not.toBe(0);
      expect(await alice.page.locator('main img, main script, main b').count()).toBe(0);
      expect(
        await alice.page.evaluate(() => (window as unknown as { __agentgateXss: number }).__agentgateXss),
      ).toBe(0);

      // The auditor finds the sessions by the console's text search over commands, and opens each.
      const carol = await signIn('carol', '/sessions?q=__agentgateXss');
      const links = await carol.page
        .locator('table.sessions tbody a[href^="/sessions/"]')
        .evaluateAll((as) =>
          as.map((a) => a.getAttribute('href')!).filter((href) => !href.endsWith('/live')),
        );
      expect(links.length).toBeGreaterThanOrEqual(2); // the psql session and the ssh exec
      for (const href of links) {
        await carol.page.goto(`${consoleUrl}${href}`);
        await carol.page.waitForSelector('ol.timeline');
        expect(
          await carol.page.evaluate(() => (window as unknown as { __agentgateXss: number }).__agentgateXss),
        ).toBe(0);
        expect(await carol.page.locator('main img, main script').count()).toBe(0);
      }
      await carol.page.goto(`${consoleUrl}/sessions?q=${encodeURIComponent(`'${script}' AS a`)}`);
      await Promise.all([
        carol.page.waitForURL(/\/sessions\/[0-9A-Z]+$/),
        carol.page.locator('table.sessions tbody a').first().click(),
      ]);
      const text = (await carol.page.locator('main').textContent()) ?? '';
      expect(text).toContain(script);
      expect(text).toContain('<img src=x onerror="window.__agentgateXss=2">');
      expect(text).toContain('\\x1b[2J');
      expect(text).not.toContain('\x1b');
      expect(carol.cspViolations).toEqual([]);
      await carol.shot('06-xss-inert-session');
      await alice.shot('06-xss-inert-approvals');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'signs in once with a one-time link and refuses it the second time',
    async () => {
      const made = await runCli([
        'console',
        'link',
        '--config',
        configFile,
        '--key',
        join(dir, 'idp-private.json'),
        '--sub',
        'bob',
        '--groups',
        'auditors',
        '--ttl',
        '10m',
      ]);
      expect(made.code).toBe(0);
      const link = made.stdout.trim();
      expect(link.startsWith(`${consoleUrl}/auth/link?token=`)).toBe(true);

      const first = await newPage();
      await first.page.goto(link);
      await expect(first.page.locator('#link-identity').textContent()).resolves.toBe('bob');
      await Promise.all([first.page.waitForURL(`${consoleUrl}/`), first.page.click('#link-continue')]);
      expect(await first.page.textContent('#signed-in-identity')).toBe('bob');
      await first.shot('07-link-signed-in');

      const second = await newPage();
      await second.page.goto(link);
      await expect(second.page.locator('.error').textContent()).resolves.toContain('already used');
      expect(await second.page.locator('#signed-in-identity').count()).toBe(0);
      await second.shot('07-link-refused');
      // Posting the token again (skipping the confirmation page) is refused as well.
      const replay = await second.page.evaluate(async (token) => {
        const response = await fetch('/auth/link', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }).toString(),
        });
        return response.status;
      }, new URL(link).searchParams.get('token')!);
      expect(replay).toBe(401);
      // Nor is the used link a bearer token elsewhere: not on the admin API, not as an agent's password.
      const token = new URL(link).searchParams.get('token')!;
      for (const path of ['/api/approvals', '/api/ssh-keys']) {
        const response = await fetch(`${consoleUrl}${path}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        expect({ path, status: response.status }).toEqual({ path, status: 401 });
      }
      const asPassword = await run(
        'psql',
        [
          '-X',
          '-h',
          '127.0.0.1',
          '-p',
          String(gateway.port('db')),
          '-U',
          'bob',
          '-d',
          'app',
          '-c',
          'SELECT 1',
        ],
        { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' } },
      );
      expect(asPassword.code).not.toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'after sign-in goes only to a page of this console, however the returnTo is spelled',
    async () => {
      const page = await newPage();
      await page.page.goto(`${consoleUrl}/login`);
      // What makes these dangerous: a browser drops the tab and reads the rest as another origin.
      expect(await page.page.evaluate(() => new URL('/\t/evil.example/', location.href).host)).toBe(
        'evil.example',
      );
      for (const returnTo of [
        '/\t/evil.example/',
        '/\n/evil.example/',
        '/a/../..//evil.example/',
        '/\\evil.example/',
      ]) {
        const response = await fetch(`${consoleUrl}/login?returnTo=${encodeURIComponent(returnTo)}`);
        const body = await response.text();
        expect({ returnTo, evil: body.includes('evil.example') }).toEqual({ returnTo, evil: false });
        expect(body).toContain('href="/auth/oidc?returnTo=%2F"');
      }
      const kept = await fetch(`${consoleUrl}/login?returnTo=${encodeURIComponent('/sessions?q=x')}`);
      expect(await kept.text()).toContain(`returnTo=${encodeURIComponent('/sessions?q=x')}`);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "ends a browser session's event streams when it signs out, not at the next heartbeat",
    async () => {
      const carol = await signIn('carol', '/approvals', true);
      const outcome = await carol.page.evaluate(async () => {
        const stream = await fetch('/approvals/events');
        const reader = stream.body!.getReader();
        await reader.read(); // the stream is open
        const csrf = document.querySelector<HTMLInputElement>(
          'form[action="/logout"] input[name=csrf]',
        )!.value;
        const signOut = await fetch('/logout', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf }).toString(),
          redirect: 'manual',
        });
        const started = Date.now();
        const ended = (async () => {
          for (;;) if ((await reader.read()).done) return 'ended';
        })();
        const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 5000));
        return {
          signOut: signOut.type,
          stream: await Promise.race([ended, timeout]),
          ms: Date.now() - started,
        };
      });
      expect(outcome.signOut).toBe('opaqueredirect');
      expect(outcome.stream).toBe('ended');
      const after = await fetch(`${consoleUrl}/approvals/events`, {
        headers: { cookie: (await carol.context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ') },
      });
      expect(after.status).toBe(401);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'lets a console admin end a live psql session; psql sees the connection end; the transcript names the admin',
    async () => {
      const client = await new Promise<import('node:child_process').ChildProcessWithoutNullStreams>(
        (resolve) => {
          import('node:child_process').then(({ spawn }) =>
            resolve(
              spawn(
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
                ],
                { env: { ...process.env, PGPASSWORD: devinToken, PGSSLMODE: 'disable' } },
              ),
            ),
          );
        },
      );
      let out = '';
      let err = '';
      client.stdout.on('data', (d: Buffer) => (out += d.toString()));
      client.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => client.once('exit', resolve));
      client.stdin.write("SELECT 'live-before-' || 42 AS marker;\n");
      await eventually(async () => (out.includes('live-before-42') ? true : undefined), 'psql output');

      const erin = await signIn('erin', '/sessions?active=1');
      const row = erin.page
        .locator('table.sessions tbody tr', { hasText: 'devin' })
        .filter({ hasText: 'db' });
      await row.locator('a', { hasText: 'watch' }).click();
      await erin.page.waitForSelector('#live-events li', { state: 'attached' });
      await erin.page.locator('#live-events', { hasText: 'live-before' }).waitFor();
      const sessionId = new URL(erin.page.url()).pathname.split('/')[2]!;
      await erin.shot('08-live-session');
      await Promise.all([erin.page.waitForURL(/\/sessions\//), erin.page.click('#terminate')]);

      client.stdin.write("SELECT 'after';\n");
      client.stdin.end();
      const code = await exited;
      expect(code).not.toBe(0);
      expect(err).toMatch(/server closed the connection unexpectedly|connection to server was lost|terminat/);

      const events = await eventually(async () => {
        const list = await eventsOf(sessionId);
        return list.some((e) => e['type'] === 'session.end') ? list : undefined;
      }, 'the end of the session');
      expect(events.find((e) => e['event'] === 'session.terminated')).toMatchObject({
        by: 'erin',
        via: 'console',
      });
      expect(events.find((e) => e['type'] === 'session.end')).toMatchObject({
        reason: 'ended by admin erin',
      });
      await erin.page.goto(`${consoleUrl}/sessions/${sessionId}`);
      await expect(erin.page.locator('ol.timeline').textContent()).resolves.toContain('ended by admin erin');
      await erin.shot('08-ended-by-admin');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses an OpenID callback replayed, in the same browser or in another carrying its state cookie',
    async () => {
      const p = await newPage();
      const callbacks: string[] = [];
      p.context.on('request', (request) => {
        if (request.url().startsWith(`${consoleUrl}/auth/callback`)) callbacks.push(request.url());
      });
      await signInThroughProvider(browser, idp, consoleUrl, 'carol', '/sessions', p);
      expect(callbacks).toHaveLength(1);
      const callback = new URL(callbacks[0]!);
      // The same browser again: the state was spent with the first answer.
      const again = await p.page.goto(callback.href);
      expect(again?.status()).toBe(401);
      await expect(p.page.locator('.error').textContent()).resolves.toContain('not started in this browser');
      // Another browser that also stole the state cookie: the state is spent on the server, not only in the cookie.
      const thief = await newPage();
      await thief.context.addCookies([
        {
          name: 'agentgate_console_login',
          value: callback.searchParams.get('state')!,
          url: `${consoleUrl}/auth`,
        },
      ]);
      const stolen = await thief.page.goto(callback.href);
      expect(stolen?.status()).toBe(401);
      expect(await thief.page.locator('#signed-in-identity').count()).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'asks who is asking on every route, however the path or method is spelled',
    async () => {
      const cookieOf = async (name: string): Promise<string> =>
        (await (await signIn(name, '/approvals')).context.cookies(consoleUrl))
          .map((c) => `${c.name}=${c.value}`)
          .join('; ');
      const who: Record<string, string> = {
        nobody: '',
        forged: `agentgate_console=${'A'.repeat(43)}`,
        mallory: await cookieOf('mallory'),
        alice: await cookieOf('alice'),
      };
      const status = async (as: string, method: string, path: string): Promise<number> => {
        const response = await fetch(`${consoleUrl}${path}`, {
          method,
          redirect: 'manual',
          headers: { cookie: who[as]! },
          signal: AbortSignal.timeout(5000),
        });
        await response.body?.cancel();
        return response.status;
      };
      const auditorsOnly = [
        '/sessions',
        '/sessions/abc',
        '/sessions/abc/live',
        '/sessions/abc/live/events',
        '/sessions/abc/export.jsonl',
        '/sessions/abc/export.cast',
        '/x/%2e%2e/sessions',
        '/api/../sessions/abc/export.jsonl',
      ];
      const anyRole = ['/approvals', '/approvals/events', '/approvals/01M93WMXHYW6C5KTJ8M29Z48D7'];
      const seen: Record<string, number> = {};
      for (const path of [...auditorsOnly, ...anyRole]) {
        for (const as of ['nobody', 'forged']) seen[`${as} GET ${path}`] = await status(as, 'GET', path);
        seen[`mallory GET ${path}`] = await status('mallory', 'GET', path);
        if (auditorsOnly.includes(path)) seen[`alice GET ${path}`] = await status('alice', 'GET', path);
      }
      for (const method of ['OPTIONS', 'PUT', 'DELETE', 'PATCH'])
        seen[`alice ${method} /approvals`] = await status('alice', method, '/approvals');
      const expected: Record<string, number> = {};
      for (const path of [...auditorsOnly, ...anyRole]) {
        const events = path.endsWith('/events');
        for (const as of ['nobody', 'forged']) expected[`${as} GET ${path}`] = events ? 401 : 303;
        expected[`mallory GET ${path}`] = 403;
        if (auditorsOnly.includes(path)) expected[`alice GET ${path}`] = 403;
      }
      for (const method of ['OPTIONS', 'PUT', 'DELETE', 'PATCH'])
        expected[`alice ${method} /approvals`] = 405;
      expect(seen).toEqual(expected);
      // The overview sends an approver to the approvals page, and someone without a role nowhere.
      expect(await status('alice', 'GET', '/overview')).toBe(303);
      expect(await status('mallory', 'GET', '/overview')).toBe(403);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'shows the overview to auditors, and nothing but its own message to someone without a role',
    async () => {
      const carol = await signIn('carol', '/');
      await carol.page.waitForSelector('#activity-chart');
      expect(await carol.page.locator('#activity-chart rect.commands').count()).toBe(24);
      await expect(carol.page.locator('a[href="/metrics"]').count()).resolves.toBe(1);
      expect(carol.cspViolations).toEqual([]);
      await carol.shot('09-overview');

      const mallory = await signIn('mallory', '/sessions', true);
      await expect(mallory.page.locator('h1').textContent()).resolves.toBe('No role');
      const status = await mallory.page.evaluate(async () => (await fetch('/sessions')).status);
      expect(status).toBe(403);
      // Sign-out ends the session on the server: the old cookie no longer works.
      const cookies = await mallory.context.cookies(consoleUrl);
      await Promise.all([mallory.page.waitForURL(/\/login/), mallory.page.click('.whoami button')]);
      const replay = await fetch(`${consoleUrl}/sessions`, {
        redirect: 'manual',
        headers: { cookie: cookies.map((c) => `${c.name}=${c.value}`).join('; ') },
      });
      expect(replay.status).toBe(303);
      expect(replay.headers.get('location')).toContain('/login');
    },
    TEST_TIMEOUT_MS,
  );
});
