/**
 * The SSH listener inside the full gateway (config file, OIDC identity, LMDB transcript store, admin API): OIDC
 * token as password, a key registered through `POST /api/ssh-keys`, a denied exec, and a pty session exported
 * as asciicast from the store.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { exportAsciicast } from '@agentgate/transcript';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

let sshd: TestSshd;
let gw: TestGateway;
let port: number;
let registeredKey: { path: string; publicKey: string };
let keyDir: string;

function execWithPassword(password: string, command: string): Promise<{ out: string; code: number | null }> {
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
        // The gateway may end the whole connection (an expired token) rather than the channel.
        c.on('close', () => resolve({ out, code }));
      }),
    );
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port, username: 'agent', password, tryKeyboard: false });
  });
}

beforeAll(async () => {
  sshd = await startSshd();
  keyDir = mkdtempSync(join(tmpdir(), 'agentgate-ssh-e2e-'));
  registeredKey = makeKeyPair(keyDir, 'registered');
  gw = await startTestGateway(`
listeners:
  - name: build-host
    protocol: ssh
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: root, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
approvals:
  timeout: 30s
  approvers: [group:dba]
rules:
  - name: touch-needs-review
    protocol: ssh
    match: { programs: [touch] }
    action: approve
  - name: no-rm-rf
    protocol: ssh
    match: { programs: [rm], pattern: "-[a-zA-Z]*r" }
    action: deny
`);
  const addr = gw.address('build-host');
  if (!('port' in addr)) throw new Error('expected a TCP listener');
  port = addr.port;
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

describe('ssh listener in the full gateway', () => {
  it('accepts an OIDC token as password, runs allowed commands and denies others (SPEC §4)', async () => {
    const token = await gw.token('devin', ['agents']);
    expect(await execWithPassword(token, 'echo via-oidc')).toEqual({ out: 'via-oidc\n', code: 0 });
    const denied = await execWithPassword(token, 'sh -c "rm -rf /tmp/nothing-here"');
    expect(denied.code).toBe(126);
    expect(denied.out).toContain('agentgate: denied by rule no-rm-rf');
    await expect(execWithPassword(await gw.token('eve', ['visitors']), 'true')).rejects.toThrow(
      /authentication/,
    );
  });

  it('ends the connection when the token expires, stopping what runs and recording why', async () => {
    // Long enough for the exec to start on a busy machine; the 30 s sleep is what must be cut short.
    const token = await gw.token('devin', ['agents'], 10);
    const started = Date.now();
    const r = await execWithPassword(token, 'echo started; sleep 30; echo finished');
    const tookMs = Date.now() - started;
    expect(r.out).toBe('started\n');
    expect(tookMs).toBeLessThan(20_000);
    await gw.store.flush();
    const sessions = gw.store.listSessions({ identity: 'devin' });
    const events = sessions.flatMap((s) => [...gw.store.events(s.id)]);
    expect(events.some((e) => e.type === 'error' && e['event'] === 'identity.expired')).toBe(true);
  });

  it('holds an exec for approval until an approver approves it through the admin API', async () => {
    const token = await gw.token('devin', ['agents']);
    const file = join(sshd.dir, 'approved-by-dba');
    const pending = execWithPassword(token, `touch ${file} && echo touched`);
    const dba = await gw.token('dana', ['dba']);
    let id: string | undefined;
    for (let i = 0; i < 100 && id === undefined; i++) {
      const list = (await (
        await fetch(`${gw.adminUrl}/api/approvals`, { headers: { authorization: `Bearer ${dba}` } })
      ).json()) as { id: string; protocol: string }[];
      id = list.find((a) => a.protocol === 'ssh')?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(id).toBeDefined();
    expect(existsSync(file)).toBe(false);
    const res = await fetch(`${gw.adminUrl}/api/approvals/${id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dba}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBeLessThan(300);
    // While held, the client read on stderr why nothing happened, with the approval's link.
    const result = await pending;
    expect(result.code).toBe(0);
    expect(result.out).toBe(
      `agentgate: waiting for approval ${id} (rule touch-needs-review), expires in 30s — ` +
        `${gw.adminUrl}/api/approvals/${id}\ntouched\n`,
    );
    expect(existsSync(file)).toBe(true);
  });

  it('accepts a key registered with POST /api/ssh-keys as the token identity', async () => {
    const opts = [...sshClientOptions(port, registeredKey.path), 'agent@127.0.0.1', 'echo registered'];
    expect((await run('ssh', opts)).code).toBe(255);
    const res = await fetch(`${gw.adminUrl}/api/ssh-keys`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await gw.token('devin', ['agents'])}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ publicKey: registeredKey.publicKey, ttl: '1h' }),
    });
    expect(res.status).toBeLessThan(300);
    const r = await run('ssh', opts);
    expect(r.stdout.toString()).toBe('registered\n');
  });

  it('ends the connections made with a registered key when the registration is revoked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-ssh-revoke-'));
    const key = makeKeyPair(dir, 'revocable');
    const admin = { authorization: `Bearer ${await gw.token('devin', ['agents'])}` };
    const res = await fetch(`${gw.adminUrl}/api/ssh-keys`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ publicKey: key.publicKey, ttl: '1h' }),
    });
    const { fingerprint } = (await res.json()) as { fingerprint: string };
    const started = Date.now();
    let runningNow: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (runningNow = resolve));
    const session = run(
      'ssh',
      [...sshClientOptions(port, key.path), 'agent@127.0.0.1', 'echo started; sleep 30; echo finished'],
      { onStdout: (soFar) => soFar.includes('started') && runningNow() },
    );
    await Promise.race([running, session]);
    // Renewed first: revoking must still end the connection made before the renewal.
    const renewed = await fetch(`${gw.adminUrl}/api/ssh-keys`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ publicKey: key.publicKey, ttl: '1h' }),
    });
    expect(renewed.status).toBeLessThan(300);
    const del = await fetch(`${gw.adminUrl}/api/ssh-keys/${encodeURIComponent(fingerprint)}`, {
      method: 'DELETE',
      headers: admin,
    });
    expect(del.status).toBe(200);
    const r = await session;
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout.toString()).toBe('started\n');
    expect(r.code).not.toBe(0);
    await gw.store.flush();
    const events = gw.store.listSessions({ identity: 'devin' }).flatMap((s) => [...gw.store.events(s.id)]);
    expect(events.some((e) => e.type === 'error' && e['event'] === 'identity.revoked')).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a connection made with a registered key open when the registration is renewed before it ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-ssh-renew-'));
    const key = makeKeyPair(dir, 'renewable');
    const admin = { authorization: `Bearer ${await gw.token('devin', ['agents'])}` };
    const register = (ttl: string) =>
      fetch(`${gw.adminUrl}/api/ssh-keys`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ publicKey: key.publicKey, ttl }),
      });
    expect((await register('3s')).status).toBeLessThan(300);
    const session = run('ssh', [
      ...sshClientOptions(port, key.path),
      'agent@127.0.0.1',
      'echo started; sleep 5; echo finished',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await register('1h')).status).toBeLessThan(300);
    // Without the renewal the connection would end at 3 s (the registration's expiry), before `finished`.
    const r = await session;
    expect(r.stdout.toString()).toBe('started\nfinished\n');
    expect(r.code).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('records a pty session in the store and exports it as asciicast', async () => {
    const token = await gw.token('devin', ['agents']);
    const c = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      c.on('ready', resolve).on('error', reject);
      c.connect({ host: '127.0.0.1', port, username: 'agent', password: token, tryKeyboard: false });
    });
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      c.shell({ term: 'xterm', cols: 91, rows: 27 }, (err, s) => (err ? reject(err) : resolve(s))),
    );
    let out = '';
    ch.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 750 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 20));
      expect(out).toMatch(re);
    };
    await waitFor(/[#$] $/m);
    ch.write('echo cast-$((6*7))\r');
    await waitFor(/cast-42/);
    const closed = new Promise((r) => ch.on('close', r));
    ch.write('exit\r');
    await closed;
    c.end();
    await new Promise((r) => setTimeout(r, 200));
    await gw.store.flush();
    const session = gw.store
      .listSessions()
      .find(
        (s) =>
          s.listener === 'build-host' &&
          [...gw.store.events(s.id)].some((e) => e.type === 'command' && e['text'] === 'echo cast-$((6*7))'),
      );
    expect(session).toBeDefined();
    const cast = exportAsciicast(gw.store.events(session!.id)).trim().split('\n');
    const header = JSON.parse(cast[0]!) as { version: number; width: number; height: number };
    expect(header).toMatchObject({ version: 2, width: 91, height: 27 });
    expect(
      cast
        .slice(1)
        .map((l) => (JSON.parse(l) as [number, string, string])[2])
        .join(''),
    ).toContain('cast-42');
    expect((await gw.store.verify()).ok).toBe(true);
  });
});
