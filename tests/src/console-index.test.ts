/**
 * The console's session index against a real `agentgate serve` (its own process), real PostgreSQL and sshd: what
 * psql and ssh run through the gateway becomes searchable and filterable on the sessions page within a bounded time,
 * read over HTTP as a signed-in auditor; the index survives a restart and `serve --reindex` rebuilds it the same.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPair, mintToken } from '@agentgate/identity';
import { freePort, startPostgres, type TestPostgres } from './harness/postgres.js';
import { listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

/** How soon a finished command must be searchable; the indexer takes ~50 ms after a commit, loaded machines more. */
const SEARCHABLE_WITHIN_MS = 5_000;

let postgres: TestPostgres;
let sshd: TestSshd;
let gateway: ServedGateway;
let dir: string;
let configFile: string;
let consoleUrl: string;
let privateJwk: object;
let devinToken: string;
let devinKey: { path: string; publicKey: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-console-index-'));
  const adminPort = await freePort();
  consoleUrl = `http://127.0.0.1:${adminPort}`;
  [postgres, sshd] = await Promise.all([startPostgres(), startSshd()]);
  const local = await generateSigningKeyPair('ES256');
  privateJwk = local.privateJwk;
  writeFileSync(join(dir, 'idp-jwks.json'), JSON.stringify(local.jwks));
  devinToken = await mintToken({
    privateJwk,
    sub: 'devin',
    groups: ['agents'],
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
  sshKeys: [{ name: devin, publicKey: "${devinKey.publicKey}", groups: [agents] }]
console:
  publicUrl: ${consoleUrl}
  auditors: [group:auditors]
listeners:
${listenerYaml.postgres('db', postgres)}${listenerYaml.ssh('shell', sshd, dir)}rules:
  - { name: no-drops, protocol: postgres, match: { commands: [DROP] }, action: deny }
`,
  );
  gateway = await serveProcess(configFile);
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([postgres?.stop(), sshd?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** An auditor's console cookie, signed in with a one-time link (as `agentgate console link` makes). */
async function signInAuditor(): Promise<string> {
  const token = await mintToken({
    privateJwk,
    sub: 'carol',
    groups: ['auditors'],
    ttlSeconds: 600,
    issuer: 'agentgate-local',
    audience: 'agentgate',
    groupsClaim: 'groups',
    extraClaims: { purpose: 'console-link' },
  });
  const response = await fetch(`${consoleUrl}/auth/link`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: consoleUrl },
    body: new URLSearchParams({ token }).toString(),
  });
  expect(response.status).toBe(303);
  const cookie = response.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/^agentgate_console=/);
  return cookie.split(';')[0]!;
}

/** Session ids listed on the sessions page for this query string, in page order. */
async function listed(cookie: string, query: string): Promise<string[]> {
  const response = await fetch(`${consoleUrl}/sessions?${query}`, { headers: { cookie } });
  expect(response.status).toBe(200);
  const page = await response.text();
  return [...page.matchAll(/<td><a href="\/sessions\/([0-9A-Z]{26})">/g)].map((m) => m[1]!);
}

async function until<T>(find: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`not found within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function psql(sql: string) {
  return run(
    'psql',
    ['-X', '-h', '127.0.0.1', '-p', String(gateway.port('db')), '-U', 'devin', '-d', 'app', '-c', sql],
    { env: { ...process.env, PGPASSWORD: devinToken, PGSSLMODE: 'disable' }, timeoutMs: 60_000 },
  );
}

function ssh(command: string) {
  return run('ssh', [...sshClientOptions(gateway.port('shell'), devinKey.path), 'devin@127.0.0.1', command], {
    timeoutMs: 60_000,
  });
}

/** The id of the one session the search finds, once it finds it; how long that took after `since`. */
async function searchable(cookie: string, text: string, since: number): Promise<{ id: string; ms: number }> {
  const ids = await until(async () => {
    const found = await listed(cookie, `q=${encodeURIComponent(text)}`);
    return found.length > 0 ? found : undefined;
  }, SEARCHABLE_WITHIN_MS);
  expect(ids).toHaveLength(1);
  return { id: ids[0]!, ms: Date.now() - since };
}

describe('console session index', () => {
  let pgSession: string;
  let sshSession: string;
  let deniedSession: string;
  const marker = randomBytes(6).toString('hex');

  it('makes what psql and ssh run searchable within a bounded time', async () => {
    const cookie = await signInAuditor();
    const selected = await psql(`SELECT 'pg-${marker}' AS marker, 1 AS one FROM pg_catalog.pg_class LIMIT 1`);
    expect(selected.code).toBe(0);
    const pg = await searchable(cookie, `pg-${marker}`, Date.now());
    pgSession = pg.id;

    const echoed = await ssh(`echo ssh-${marker}`);
    expect(echoed.code).toBe(0);
    expect(echoed.stdout.toString()).toContain(`ssh-${marker}`);
    const sh = await searchable(cookie, `ssh-${marker}`, Date.now());
    sshSession = sh.id;

    const dropped = await psql(`DROP TABLE drop_${marker}`);
    expect(dropped.code).not.toBe(0);
    const denied = await searchable(cookie, `drop_${marker}`, Date.now());
    deniedSession = denied.id;

    process.stdout.write(
      `searchable after: psql ${pg.ms} ms, ssh ${sh.ms} ms, denied psql ${denied.ms} ms (bound ${SEARCHABLE_WITHIN_MS} ms)\n`,
    );
    expect(new Set([pgSession, sshSession, deniedSession]).size).toBe(3);
    // Words of one command, whatever their case, found inside longer words (`catalog` in `pg_catalog.pg_class`).
    expect(await listed(cookie, `q=${encodeURIComponent(`CATALOG.PG_CLASS limit pg-${marker}`)}`)).toEqual([
      pgSession,
    ]);
    expect(await listed(cookie, `q=${encodeURIComponent(`"echo ssh-${marker}"`)}`)).toEqual([sshSession]);
  }, 120_000);

  it('filters the same sessions by identity, protocol, listener and denials', async () => {
    const cookie = await signInAuditor();
    const mine = (ids: string[]): string[] =>
      ids.filter((id) => [pgSession, sshSession, deniedSession].includes(id));
    expect(mine(await listed(cookie, 'identity=devin'))).toEqual([deniedSession, sshSession, pgSession]);
    expect(mine(await listed(cookie, 'protocol=ssh'))).toEqual([sshSession]);
    expect(mine(await listed(cookie, 'listener=db'))).toEqual([deniedSession, pgSession]);
    expect(mine(await listed(cookie, 'denied=1'))).toEqual([deniedSession]);
    expect(mine(await listed(cookie, 'identity=nobody'))).toEqual([]);
    expect(mine(await listed(cookie, `q=${marker}&protocol=postgres`))).toEqual([deniedSession, pgSession]);
  }, 60_000);

  it('keeps the index across a restart, and rebuilds the same with serve --reindex', async () => {
    let cookie = await signInAuditor();
    const before = await listed(cookie, `q=${marker}`);
    expect(before).toEqual([deniedSession, sshSession, pgSession]);
    await gateway.stop();
    gateway = await serveProcess(configFile);
    cookie = await signInAuditor();
    expect(await listed(cookie, `q=${marker}`)).toEqual(before);
    await gateway.stop();
    gateway = await serveProcess(configFile, { args: ['--reindex'] });
    cookie = await signInAuditor();
    expect(
      await until(async () => {
        const found = await listed(cookie, `q=${marker}`);
        return found.length === before.length ? found : undefined;
      }, 20_000),
    ).toEqual(before);
    expect(await listed(cookie, 'denied=1')).toContain(deniedSession);
  }, 120_000);
});
