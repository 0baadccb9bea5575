/**
 * No secret lands in the record: credentials typed into commands, printed by them, or sent as SQL and container
 * environment are redacted before the transcript store sees them, in all three protocols, while decisions are made
 * on the real text. Each case ends with the whole store directory searched byte for byte (and its io decoded) and
 * `agentgate verify` passing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import ssh2 from 'ssh2';
import type { TranscriptEvent } from '@agentgate/core';
import { runCli } from './harness/cli.js';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSshd, type TestSshd } from './harness/sshd.js';

const MYSQL_PASSWORD = 'execpw-123';
const DENIED_PASSWORD = 'execpw-999';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const BEARER = 'pgbearer-s3cr3t-token-42';
const DB_PASSWORD = 'dockpw-s3cr3t-77';
const HELD_TOKEN = 'apitok-s3cr3t-9';
const APP_NAME_TOKEN = 'appname-s3cr3t-5';
const KEY_BASE = 'keybase-s3cr3t-3';
const PASS_PHRASE = 'open phrase-s3cr3t-8';
const SECRETS = [
  MYSQL_PASSWORD,
  DENIED_PASSWORD,
  AWS_SECRET,
  BEARER,
  DB_PASSWORD,
  HELD_TOKEN,
  APP_NAME_TOKEN,
  KEY_BASE,
  'phrase-s3cr3t-8',
];

let sshd: TestSshd;
let postgres: TestPostgres;
let dockerd: TestDockerd;
let gw: TestGateway;
let stopped = false;

function exec(command: string, password: string): Promise<{ out: string; code: number | null }> {
  const addr = gw.address('build-host') as { port: number };
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () =>
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        let out = '';
        let code: number | null = null;
        ch.on('data', (d: Buffer) => (out += d.toString()));
        ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
        ch.on('exit', (x: number | null) => (code = x));
        ch.on('close', () => {
          c.end();
          resolve({ out, code });
        });
      }),
    );
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port: addr.port, username: 'agent', password, tryKeyboard: false });
  });
}

/** Every event of every session, and the bytes of every io event. */
async function recorded(): Promise<{ events: TranscriptEvent[]; io: Buffer }> {
  await gw.store.flush();
  const events = gw.store.listSessions({}).flatMap((s) => [...gw.store.events(s.id)]);
  const io = Buffer.concat(
    events.filter((e) => e.type === 'io').map((e) => Buffer.from(String(e['data']), 'base64')),
  );
  return { events, io };
}

async function storeFiles(dir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await storeFiles(path)));
    else out.push(await readFile(path));
  }
  return out;
}

beforeAll(async () => {
  [sshd, postgres, dockerd] = await Promise.all([startSshd(), startPostgres(), startDockerd()]);
  gw = await startTestGateway(
    `
listeners:
  - name: build-host
    protocol: ssh
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: root, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
  - name: db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${postgres.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
approvals:
  timeout: 30s
  approvers: [group:dba]
rules:
  - name: not-that-password
    protocol: ssh
    match: { pattern: "${DENIED_PASSWORD}" }
    action: deny
  - name: deploys-need-review
    protocol: ssh
    match: { pattern: "^deploy-step" }
    action: approve
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
}, 120_000);

afterAll(async () => {
  if (gw && !stopped) await gw.stop();
  else if (gw) await rm(gw.dir, { recursive: true, force: true });
  await Promise.all([sshd?.stop(), postgres?.stop(), dockerd?.stop()]);
});

describe('redaction before recording', () => {
  it('ssh exec: mysql -p<password> is recorded without it; a rule still sees the real text', async () => {
    const token = await gw.token('devin', ['agents']);
    const ran = await exec(`mysql -p${MYSQL_PASSWORD} -e 'select 1'`, token);
    expect(ran.code).not.toBe(126); // mysql need not exist upstream: only the decision matters here
    const denied = await exec(`mysql -p${DENIED_PASSWORD} -e 'select 1'`, token);
    expect(denied.code).toBe(126);
    expect(denied.out).toContain('denied by rule not-that-password');

    const { events } = await recorded();
    const commands = events.filter((e) => e.type === 'command' && String(e['text']).startsWith('mysql'));
    expect(commands).toHaveLength(2);
    for (const command of commands) {
      expect(command['text']).toBe("mysql -p[REDACTED] -e 'select 1'");
      expect(command['redacted']).toEqual(['default:mysql-password']);
      expect(command['simpleCommands']).toEqual([
        {
          program: 'mysql',
          argv: ['mysql', '-p[REDACTED]', '-e', 'select 1'],
          text: "mysql -p[REDACTED] -e 'select 1'",
        },
      ]);
    }
    const notices = events.filter((e) => e.type === 'notice' && e['request'] === 'exec');
    expect(
      notices.some((e) => e['text'] === "mysql -p[REDACTED] -e 'select 1'" && Array.isArray(e['redacted'])),
    ).toBe(true);
  });

  it('ssh exec: a quoted password with a space in it is replaced whole in the argv as in the text', async () => {
    const token = await gw.token('devin', ['agents']);
    await exec(`mysql --password '${PASS_PHRASE}' -e 'select 1'`, token);
    const { events } = await recorded();
    const command = events.find(
      (e) => e.type === 'command' && String(e['text']).startsWith('mysql --password'),
    );
    expect(command).toMatchObject({
      text: "mysql --password '[REDACTED]' -e 'select 1'",
      simpleCommands: [{ argv: ['mysql', '--password', '[REDACTED]', '-e', 'select 1'] }],
    });
  });

  it('ssh exec: a secret printed in two parts, a moment apart, is redacted in the recorded output', async () => {
    const token = await gw.token('devin', ['agents']);
    const encoded = Buffer.from(AWS_SECRET).toString('base64');
    const ran = await exec(
      `K=$(echo ${encoded} | base64 -d); printf 'AWS_SECRET_ACCESS_KEY=%s' "\${K%????????????????????}"; sleep 0.3; printf '%s\\n' "\${K#????????????????????}"`,
      token,
    );
    expect(ran).toEqual({ out: `AWS_SECRET_ACCESS_KEY=${AWS_SECRET}\n`, code: 0 }); // the client sees it all
    const { events, io } = await recorded();
    expect(io.toString()).toContain(`AWS_SECRET_ACCESS_KEY=${'*'.repeat(AWS_SECRET.length)}\n`);
    expect(
      events.some(
        (e) =>
          e.type === 'io' &&
          (e['redacted'] as string[] | undefined)?.includes('default:credential-assignment'),
      ),
    ).toBe(true);
  });

  it('ssh exec held for approval: approvers see the command without the token', async () => {
    const token = await gw.token('devin', ['agents']);
    const held = exec(`deploy-step API_TOKEN=${HELD_TOKEN}; echo deployed`, token);
    const dba = await gw.token('dana', ['dba']);
    let pending: { id: string; command: string }[] = [];
    for (let i = 0; i < 100 && pending.length === 0; i++) {
      const res = await fetch(`${gw.adminUrl}/api/approvals`, {
        headers: { authorization: `Bearer ${dba}` },
      });
      pending = (await res.json()) as { id: string; command: string }[];
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pending).toHaveLength(1);
    expect(pending[0]!.command).toBe('deploy-step API_TOKEN=[REDACTED] echo deployed');
    const approved = await fetch(`${gw.adminUrl}/api/approvals/${pending[0]!.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dba}` },
    });
    expect(approved.status).toBe(200);
    expect((await held).out).toContain('deployed');
    const { events } = await recorded();
    const requested = events.find((e) => e.type === 'approval.requested');
    expect(requested?.['command']).toBe('deploy-step API_TOKEN=[REDACTED] echo deployed');
  });

  it('postgres: an Authorization header in a query is redacted in the recorded statement and result', async () => {
    const addr = gw.address('db') as { host: string; port: number };
    const client = new pg.Client({
      ...addr,
      user: 'devin',
      database: 'app',
      password: await gw.token('devin', ['agents']),
    });
    await client.connect();
    try {
      const result = await client.query(`SELECT 'Authorization: Bearer ${BEARER}' AS header`);
      expect(result.rows[0].header).toBe(`Authorization: Bearer ${BEARER}`); // the client gets its own data
    } finally {
      await client.end();
    }
    const { events } = await recorded();
    const command = events.find((e) => e.type === 'command' && String(e['text']).includes('Authorization'));
    expect(command?.['text']).toBe("SELECT 'Authorization: Bearer [REDACTED]' AS header");
    expect(command?.['redacted']).toEqual(expect.arrayContaining(['default:authorization-header']));
  }, 30_000);

  it('postgres: a credential in the client-chosen application_name is redacted in session.start', async () => {
    const addr = gw.address('db') as { host: string; port: number };
    const client = new pg.Client({
      ...addr,
      user: 'devin',
      database: 'app',
      application_name: `deploy api_token=${APP_NAME_TOKEN}`,
      password: await gw.token('devin', ['agents']),
    });
    await client.connect();
    await client.end();
    const { events } = await recorded();
    const start = events.find(
      (e) => e.type === 'session.start' && String(e['application_name']).startsWith('deploy'),
    );
    expect(start).toMatchObject({
      application_name: 'deploy api_token=[REDACTED]',
      redacted: ['default:credential-assignment'],
    });
  }, 30_000);

  it('docker: a container run with -e DB_PASSWORD=… that prints its environment is recorded without it', async () => {
    const addr = gw.address('docker') as { port: number };
    const r = await dockerd.docker(
      [
        'run',
        '--rm',
        '--network',
        'none',
        '-e',
        `DB_PASSWORD=${DB_PASSWORD}`,
        '-e',
        `SECRET_KEY_BASE=${KEY_BASE}`,
        dockerd.image,
        'env',
      ],
      { host: `tcp://127.0.0.1:${addr.port}`, token: await gw.token('devin', ['agents']) },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`DB_PASSWORD=${DB_PASSWORD}`);
    const { io } = await recorded();
    expect(io.toString()).toContain(`DB_PASSWORD=${'*'.repeat(DB_PASSWORD.length)}`);
    // A secret word inside the name, as docker inspect's Env masking reads it.
    expect(io.toString()).toContain(`SECRET_KEY_BASE=${'*'.repeat(KEY_BASE.length)}`);
  }, 60_000);

  it('the store, searched byte for byte, holds none of the secrets, and verifies', async () => {
    const { events, io } = await recorded();
    const everything = JSON.stringify(events);
    for (const secret of SECRETS) {
      expect(everything).not.toContain(secret);
      expect(io.includes(secret)).toBe(false);
    }
    await gw.stop({ keepFiles: true });
    stopped = true;
    const files = await storeFiles(join(gw.dir, 'transcripts'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) for (const secret of SECRETS) expect(file.includes(secret)).toBe(false);
    const verify = await runCli(['verify', '--config', gw.configFile, '--json'], { PG_PASSWORD: PASSWORD });
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, problems: [] });
  });
});
