/**
 * The session lifecycle every engine shares, through the full gateway with a real PostgreSQL and a real sshd:
 * each connection counted once, and the record naming why a session ended and why a held command was withdrawn —
 * an expired credential, an administrator, the gateway shutting down — each as itself.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import ssh2 from 'ssh2';
import type { TranscriptEvent } from '@agentgate/core';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSshd, type TestSshd } from './harness/sshd.js';

let server: TestPostgres;
let sshd: TestSshd;
let gw: TestGateway;
let db: { host: string; port: number };
let ssh: { host: string; port: number };

interface Pending {
  id: string;
  session: string;
  identity: string;
  command: string;
}

beforeAll(async () => {
  [server, sshd] = await Promise.all([startPostgres(), startSshd()]);
  await server.psql(['-d', 'app'], {
    input:
      'SET ROLE app; CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users SELECT g, $$u$$ || g FROM generate_series(1, 20) g;',
  });
  gw = await startTestGateway(
    `
approvals: { timeout: 60s, approvers: [group:dba] }
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
  - name: build-host
    protocol: ssh
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: root, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
rules:
  - { name: deletes-need-review, protocol: postgres, match: { commands: [DELETE], tables: [users] }, action: approve }
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
  db = gw.address('db') as { host: string; port: number };
  ssh = gw.address('build-host') as { host: string; port: number };
}, 90_000);

afterAll(async () => {
  await gw?.stop();
  await Promise.all([server?.stop(), sshd?.stop()]);
});

async function pgConnect(token: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: db.host,
    port: db.port,
    user: 'app',
    database: 'app',
    password: token,
  });
  client.on('error', () => undefined); // the gateway ends some of these sessions on purpose
  await client.connect();
  return client;
}

function sshExec(token: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () =>
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        let out = '';
        ch.on('data', (d: Buffer) => (out += d.toString()));
        ch.on('close', () => {
          c.end();
          resolve(out);
        });
      }),
    );
    c.on('error', reject);
    c.connect({ host: ssh.host, port: ssh.port, username: 'agent', password: token, tryKeyboard: false });
  });
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function heldFor(identity: string): Promise<Pending> {
  const token = await gw.token('carol', ['dba']);
  return waitFor(async () => {
    const res = await fetch(`${gw.adminUrl}/api/approvals`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return ((await res.json()) as Pending[]).find((p) => p.identity === identity);
  }, `a held command of ${identity}`);
}

function eventsOf(sessionId: string): TranscriptEvent[] {
  return [...gw.store.events(sessionId)];
}

describe('one session lifecycle for every engine', () => {
  it('counts each PostgreSQL and SSH connection once, and every session it opened ends', async () => {
    const token = await gw.token('devin', ['agents']);
    for (let i = 0; i < 3; i++) {
      const client = await pgConnect(token);
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await client.end();
    }
    for (let i = 0; i < 2; i++) expect(await sshExec(token, 'echo counted')).toBe('counted\n');
    expect(await metric('agentgate_connections_total', 'listener="db",protocol="postgres"')).toBe(3);
    expect(await metric('agentgate_connections_total', 'listener="build-host",protocol="ssh"')).toBe(2);
    await waitFor(
      async () =>
        (await metric('agentgate_sessions_active', 'listener="db",protocol="postgres"')) === 0 &&
        (await metric('agentgate_sessions_active', 'listener="build-host",protocol="ssh"')) === 0
          ? true
          : undefined,
      'every session to end',
    );
  }, 60_000);

  it('a credential that expires while a statement is held: the approval and the session name the expiry', async () => {
    const client = await pgConnect(await gw.token('erin', ['agents'], 6));
    const refused = client.query('DELETE FROM users WHERE id = 2').then(
      () => undefined,
      (err: { code?: string; message: string }) => err,
    );
    const held = await heldFor('erin');
    expect(await refused).toMatchObject({
      code: '28000',
      message: expect.stringMatching(/^agentgate: the token expired at .*; reconnect with a fresh one$/),
    });
    await gw.store.flush();
    const events = eventsOf(held.session);
    expect(events.find((e) => e.type === 'approval.decided')).toMatchObject({
      approvalId: held.id,
      outcome: 'cancelled',
      cause: 'credential-expired',
      reason: expect.stringMatching(/^the credential expired at /),
    });
    expect(events.filter((e) => e.type === 'error')).toEqual([
      expect.objectContaining({ event: 'identity.expired' }),
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'session.end', cause: 'credential-expired' });
    const check = await pgConnect(await gw.token('sam', ['agents']));
    expect((await check.query('SELECT count(*)::int AS n FROM users WHERE id = 2')).rows[0].n).toBe(1);
    await check.end();
  }, 60_000);

  it('an administrator ends a session holding a statement: FATAL 57P01, recorded with who and why', async () => {
    const client = await pgConnect(await gw.token('frank', ['agents']));
    const ended = client.query('DELETE FROM users WHERE id = 3').then(
      () => undefined,
      (err: { code?: string; message: string }) => err,
    );
    const held = await heldFor('frank');
    expect(
      gw.gateway.terminateSession(held.session, {
        by: 'alice',
        byGroups: ['ops'],
        reason: 'maintenance window',
      }),
    ).toBe(true);
    expect(await ended).toMatchObject({
      code: '57P01',
      message: 'agentgate: the session was ended by admin alice: maintenance window',
    });
    await gw.store.flush();
    const events = eventsOf(held.session);
    expect(events.find((e) => e.type === 'approval.decided')).toMatchObject({
      approvalId: held.id,
      outcome: 'cancelled',
      cause: 'terminated',
      reason: 'ended by admin alice: maintenance window',
    });
    expect(events.filter((e) => e.type === 'error')).toEqual([
      expect.objectContaining({
        event: 'session.terminated',
        by: 'alice',
        byGroups: ['ops'],
        reason: 'maintenance window',
      }),
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'session.end', cause: 'terminated', by: 'alice' });
    expect(gw.gateway.terminateSession(held.session, { by: 'alice' })).toBe(false);
  }, 60_000);

  it('the gateway shutting down during a held psql statement: the record says shutdown', async () => {
    const token = await gw.token('grace', ['agents']);
    const psql = spawn(
      'psql',
      [
        '-X',
        '-h',
        db.host,
        '-p',
        String(db.port),
        '-U',
        'app',
        '-d',
        'app',
        '-c',
        'DELETE FROM users WHERE id = 4',
      ],
      { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' } },
    );
    let stderr = '';
    psql.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => psql.on('close', resolve));
    const held = await heldFor('grace');
    await gw.stop({ keepFiles: true });
    expect(await exited).not.toBe(0);
    expect(stderr).toContain(`agentgate: approval ${held.id} cancelled: the gateway is shutting down`);

    const store = await openTranscriptStore({
      path: join(gw.dir, 'transcripts'),
      readOnly: true,
      failMode: 'closed',
      checkpointIntervalMs: 0,
      signer: await loadOrCreateSigningKey(join(gw.dir, 'signing-key.json')),
    });
    try {
      const events = [...store.events(held.session)];
      expect(events.find((e) => e.type === 'approval.decided')).toMatchObject({
        approvalId: held.id,
        outcome: 'cancelled',
        cause: 'shutdown',
        reason: 'the gateway is shutting down',
      });
      expect(events.at(-1)).toMatchObject({ type: 'session.end', cause: 'shutdown' });
      expect((await store.verify()).ok).toBe(true);
    } finally {
      await store.close();
    }
    const rows = await server.psql(['-d', 'app', '-At', '-c', 'SELECT count(*) FROM users WHERE id = 4']);
    expect(rows.trim()).toBe('1');
  }, 60_000);
});
