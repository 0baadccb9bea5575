/**
 * Just-in-time approvals end to end (issue 4) with real node-postgres sessions through the real composition root:
 * the broker, the admin API with OIDC approvers, the signed webhook, the transcript.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { verifyWithJwks } from '@agentgate/transcript';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { RawClient, typed } from './harness/pg-raw-client.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';

type HookMode = 'leave' | 'approve' | 'deny' | 'down';
let hookMode: HookMode = 'leave';
const hookCalls: { id: string; verified: boolean; command: string }[] = [];
let hook: Server;
let server: TestPostgres;
let gw: TestGateway;

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const parsed = JSON.parse(body) as { id: string; command: string };
      const signature = String(req.headers['x-agentgate-signature'] ?? '');
      void (async () => {
        // The outcome of each request follows as its own event; only requests are counted and decided here.
        if (req.headers['x-agentgate-event'] !== 'approval.requested') return res.writeHead(204).end();
        const jwks = (await (await fetch(`${gw.adminUrl}/.well-known/jwks.json`)).json()) as {
          keys: Record<string, unknown>[];
        };
        const payload = await verifyWithJwks(signature, jwks).catch(() => undefined);
        hookCalls.push({ id: parsed.id, verified: payload?.toString() === body, command: parsed.command });
        if (hookMode === 'down') return res.writeHead(503).end();
        if (hookMode === 'leave') return res.writeHead(200).end('{}');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ decision: hookMode, reason: `bot says ${hookMode}` }));
      })().catch(() => res.writeHead(503).end());
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  server = await startPostgres();
  await server.psql(['-d', 'app'], {
    input:
      'SET ROLE app; CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users SELECT g, $$u$$ || g FROM generate_series(1, 50) g;',
  });
  gw = await startTestGateway(
    `
approvals:
  timeout: 3s
  approvers: [group:dba]
  webhook: { url: "http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook", timeout: 1s, retries: 2 }
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
rules:
  - { name: deletes-need-review, protocol: postgres, match: { commands: [DELETE], tables: [users] }, action: approve }
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await server?.stop();
  await new Promise((r) => hook?.close(r));
});

beforeEach(() => {
  hookMode = 'leave';
});

async function connect(sub: string, groups: string[]): Promise<pg.Client> {
  const addr = gw.address('db') as { host: string; port: number };
  const client = new pg.Client({
    ...addr,
    user: sub,
    database: 'app',
    password: await gw.token(sub, groups),
  });
  await client.connect();
  return client;
}

interface Pending {
  id: string;
  identity: string;
  command: string;
  rule: string;
}

async function pendingFor(identity: string, text: string): Promise<Pending> {
  const token = await gw.token('carol', ['dba']);
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${gw.adminUrl}/api/approvals`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const found = ((await res.json()) as Pending[]).find(
      (p) => p.identity === identity && p.command.includes(text),
    );
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no pending approval for ${identity}: ${text}`);
}

async function decide(
  id: string,
  verdict: 'approve' | 'deny',
  sub: string,
  groups: string[],
  reason?: string,
): Promise<number> {
  const res = await fetch(`${gw.adminUrl}/api/approvals/${id}/${verdict}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.token(sub, groups)}`, 'content-type': 'application/json' },
    body: JSON.stringify(reason ? { reason } : {}),
  });
  return res.status;
}

describe('approvals with PostgreSQL sessions', () => {
  it('holds one statement until an approver approves, then runs exactly that statement', async () => {
    const devin = await connect('devin', ['agents']);
    const notices: string[] = [];
    devin.on('notice', (n) => void notices.push(n.message ?? ''));
    const held = devin.query('DELETE FROM users WHERE id = 1');
    const p = await pendingFor('devin', 'id = 1');
    expect(p.rule).toBe('deletes-need-review');
    // The client is told at once that it waits, and for what.
    for (let i = 0; i < 100 && notices.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(notices).toEqual([
      expect.stringMatching(
        new RegExp(
          `^agentgate: waiting for approval ${p.id} \\(rule deletes-need-review\\), expires in \\d+s — http`,
        ),
      ),
    ]);
    // other sessions run on while it is held
    const other = await connect('sam', ['agents']);
    expect((await other.query('SELECT count(*)::int AS n FROM users')).rows[0].n).toBe(50);
    await other.end();
    expect(await decide(p.id, 'approve', 'devin', ['agents'])).toBe(403); // not an approver
    expect(await decide(p.id, 'approve', 'carol', ['dba'], 'ticket 42')).toBe(200);
    expect((await held).rowCount).toBe(1);
    expect(await decide(p.id, 'approve', 'carol', ['dba'])).toBe(409); // settled once
    expect(await decide('no-such-id', 'approve', 'carol', ['dba'])).toBe(404);
    await devin.end();
  });

  it('answers what a pipeline flushed before its held Execute while the Execute waits', async () => {
    const addr = gw.address('db') as { host: string; port: number };
    const raw = await RawClient.open(addr);
    expect((await raw.login(await gw.token('devin', ['agents']))).at(-1)?.[0]).toBe('Z');
    const cstr = (t: string) => Buffer.from(t + '\0');
    const parse = (name: string, text: string) =>
      typed('P', Buffer.concat([cstr(name), cstr(text), Buffer.from([0, 0])]));
    const bind = (stmt: string) =>
      typed('B', Buffer.concat([cstr(''), cstr(stmt), Buffer.from([0, 0, 0, 0, 0, 0])]));
    // Parse and Describe of a harmless statement, Flush, then a held DELETE in the same write: the server answers
    // the flushed part while the gateway holds the DELETE for approval.
    raw.socket.write(
      Buffer.concat([
        parse('cnt', 'SELECT count(*) FROM users'),
        typed('D', cstr('Scnt')),
        typed('H', Buffer.alloc(0)),
        parse('', 'DELETE FROM users WHERE id = 3'),
        bind(''),
        typed('E', Buffer.concat([cstr(''), Buffer.from([0, 0, 0, 0])])),
        typed('S', Buffer.alloc(0)),
      ]),
    );
    const flushed = await raw.until('T');
    // N: the waiting notice, sent when the DELETE is held.
    expect(flushed.map((m) => m[0]).join(',')).toMatch(/^(N,)?1,t,(N,)?T$/);
    const p = await pendingFor('devin', 'id = 3');
    expect(await decide(p.id, 'approve', 'carol', ['dba'])).toBe(200);
    const rest = await raw.until('Z');
    expect([...flushed, ...rest].map((m) => m[0]).join(',')).toMatch(/^[^N]*N[^N]*$/);
    expect(
      rest
        .filter((m) => m[0] !== 'N')
        .map((m) => m[0])
        .join(','),
    ).toBe('1,2,C,Z');
    raw.socket.end(typed('X', Buffer.alloc(0)));
  });

  it('psql prints the waiting notice while its statement is held', async () => {
    const addr = gw.address('db') as { host: string; port: number };
    const psql = spawn(
      'psql',
      [
        '-X',
        '-h',
        addr.host,
        '-p',
        String(addr.port),
        '-U',
        'devin',
        '-d',
        'app',
        '-c',
        'DELETE FROM users WHERE id = 6',
      ],
      { env: { ...process.env, PGPASSWORD: await gw.token('devin', ['agents']), PGSSLMODE: 'disable' } },
    );
    let stderr = '';
    psql.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => psql.on('close', r));
    const p = await pendingFor('devin', 'id = 6');
    for (let i = 0; i < 100 && !stderr.includes('NOTICE'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toContain(`NOTICE:  agentgate: waiting for approval ${p.id} (rule deletes-need-review)`);
    expect(await decide(p.id, 'deny', 'carol', ['dba'], 'not this one')).toBe(200);
    expect(await exited).toBe(1);
    expect(stderr).toContain('not this one');
  });

  it('a rejected statement fails with 42501 naming the approval id; the session stays usable', async () => {
    const devin = await connect('devin', ['agents']);
    const held = devin.query('DELETE FROM users WHERE id = 2');
    const p = await pendingFor('devin', 'id = 2');
    expect(await decide(p.id, 'deny', 'carol', ['dba'], 'not today')).toBe(200);
    await expect(held).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(p.id) });
    expect((await devin.query('SELECT count(*)::int AS n FROM users WHERE id = 2')).rows[0].n).toBe(1);
    await devin.end();
  });

  it('an unanswered statement expires and is refused', async () => {
    const devin = await connect('devin', ['agents']);
    const started = Date.now();
    await expect(devin.query('DELETE FROM users WHERE id = 3')).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/approval \S+ expired/),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    expect((await devin.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    await devin.end();
  });

  it('an approver may not approve their own statement; another approver may', async () => {
    const alice = await connect('alice', ['agents', 'dba']);
    const held = alice.query('DELETE FROM users WHERE id = 4');
    const p = await pendingFor('alice', 'id = 4');
    expect(await decide(p.id, 'approve', 'alice', ['agents', 'dba'])).toBe(403);
    expect(await decide(p.id, 'approve', 'carol', ['dba'])).toBe(200);
    expect((await held).rowCount).toBe(1);
    await alice.end();
  });

  it('a client that leaves while waiting withdraws its request', async () => {
    const devin = await connect('devin', ['agents']);
    devin.on('error', () => undefined); // the test drops the connection on purpose
    devin.query('DELETE FROM users WHERE id = 5').catch(() => undefined);
    const p = await pendingFor('devin', 'id = 5');
    (devin as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const token = await gw.token('carol', ['dba']);
    for (let i = 0; i < 100; i++) {
      const list = (await (
        await fetch(`${gw.adminUrl}/api/approvals`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as Pending[];
      if (!list.some((x) => x.id === p.id)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await decide(p.id, 'approve', 'carol', ['dba'])).toBe(409);
    const check = await connect('sam', ['agents']);
    expect((await check.query('SELECT count(*)::int AS n FROM users WHERE id = 5')).rows[0].n).toBe(1);
    await check.end();
    await gw.store.flush();
    const decided = gw.store
      .listSessions({ identity: 'devin' })
      .flatMap((s) => [...gw.store.events(s.id)])
      .find((e) => e.type === 'approval.decided' && e['approvalId'] === p.id);
    expect(decided).toMatchObject({ outcome: 'cancelled', cause: 'client-left', reason: 'the client left' });
  });

  it('two held statements from two sessions are decided in the opposite order', async () => {
    const a = await connect('devin', ['agents']);
    const b = await connect('sam', ['agents']);
    const order: string[] = [];
    const qa = a.query('DELETE FROM users WHERE id = 6').then((r) => order.push('a') && r);
    const qb = b.query('DELETE FROM users WHERE id = 7').then((r) => order.push('b') && r);
    const pa = await pendingFor('devin', 'id = 6');
    const pb = await pendingFor('sam', 'id = 7');
    expect(await decide(pb.id, 'approve', 'carol', ['dba'])).toBe(200);
    await qb;
    expect(await decide(pa.id, 'approve', 'carol', ['dba'])).toBe(200);
    await qa;
    expect(order).toEqual(['b', 'a']);
    await a.end();
    await b.end();
  });

  it('a webhook that answers approve settles the request, signed with the gateway key', async () => {
    hookMode = 'approve';
    const devin = await connect('devin', ['agents']);
    expect((await devin.query('DELETE FROM users WHERE id = 8')).rowCount).toBe(1);
    const call = hookCalls.find((c) => c.command.includes('id = 8'));
    expect(call?.verified).toBe(true);
    hookMode = 'deny';
    await expect(devin.query('DELETE FROM users WHERE id = 9')).rejects.toMatchObject({
      code: '42501',
      message: expect.stringContaining('bot says deny'),
    });
    await devin.end();
  });

  it('a webhook that is down leaves the decision to a person and wedges nothing', async () => {
    hookMode = 'down';
    const devin = await connect('devin', ['agents']);
    const held = devin.query('DELETE FROM users WHERE id = 10');
    const p = await pendingFor('devin', 'id = 10');
    // The webhook fails and is retried (however slowly under load), before the 3 s expiry.
    const calls = () => hookCalls.filter((c) => c.id === p.id).length;
    for (const deadline = Date.now() + 2500; calls() < 2 && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 20));
    expect(calls()).toBeGreaterThanOrEqual(2);
    expect(await decide(p.id, 'approve', 'carol', ['dba'])).toBe(200);
    expect((await held).rowCount).toBe(1);
    await devin.end();
  });
});
