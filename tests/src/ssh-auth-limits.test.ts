/**
 * Limits before authentication on the SSH listener, against `agentgate serve` as an operator runs it: the attempt
 * after `maxAuthTries` failures ends the connection (as OpenSSH's MaxAuthTries), every failure is logged at info
 * and counted in /metrics by reason, and a source with recent failures waits before its attempts are answered.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

const TOKEN = 'auth-limits-token-7c1e9b';
let sshd: TestSshd;
let dir: string;
let gateway: ServedGateway;
let devinKey: { path: string; publicKey: string };
let strangers: { path: string; publicKey: string }[];

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-auth-limits-'));
  devinKey = makeKeyPair(dir, 'devin');
  strangers = Array.from({ length: 8 }, (_, i) => makeKeyPair(dir, `stranger-${i}`));
  const configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(dir, { token: TOKEN, sshPublicKey: devinKey.publicKey }) +
      'listeners:\n' +
      listenerYaml.ssh('build-host', sshd, dir) +
      // Own host key and no penalty: the limit alone, on a second listener.
      listenerYaml
        .ssh('strict', sshd, dir)
        .replace('ssh_host_ed25519_key', 'ssh_host_ed25519_key.strict')
        .replace('    allow:', '    maxAuthTries: 2\n    authPenaltyMax: 0s\n    allow:'),
  );
  gateway = await serveProcess(configFile);
});

afterAll(async () => {
  await gateway?.stop();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `agentgate_auth_failures_total` by reason for one listener, from /metrics. */
async function failureCounts(listener: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${gateway.admin}/metrics`)).text();
  const counts: Record<string, number> = {};
  const re = new RegExp(
    `^agentgate_auth_failures_total\\{listener="${listener}",protocol="ssh",reason="([a-z-]+)"\\} (\\d+)$`,
    'gm',
  );
  for (const m of text.matchAll(re)) counts[m[1]!] = Number(m[2]);
  return counts;
}

function failureLogs(listener: string, from: number): Record<string, unknown>[] {
  return gateway.logs
    .slice(from)
    .filter((l) => l['msg'] === 'ssh authentication failed' && l['listener'] === listener);
}

interface PasswordRun {
  /** ms from connecting to each failure answer */
  readonly failedAt: number[];
  readonly disconnect?: { code: unknown; message: string };
  readonly authenticated: boolean;
}

/** One ssh2 connection trying the passwords in turn; resolves when it is authenticated or closed. */
function tryPasswords(port: number, passwords: string[]): Promise<PasswordRun> {
  return new Promise((resolve) => {
    const started = Date.now();
    const failedAt: number[] = [];
    let disconnect: PasswordRun['disconnect'];
    let tried = 0;
    const c = new ssh2.Client();
    c.on('ready', () => {
      c.end();
      resolve({ failedAt, authenticated: true });
    });
    c.on('error', (err: Error & { code?: unknown }) => {
      disconnect = { code: err.code, message: err.message };
    });
    c.on('close', () => resolve({ failedAt, ...(disconnect ? { disconnect } : {}), authenticated: false }));
    c.connect({
      host: '127.0.0.1',
      port,
      username: 'agent',
      readyTimeout: 60_000,
      authHandler: (_methodsLeft, _partial, next) => {
        if (tried > 0) failedAt.push(Date.now() - started);
        const password = passwords[tried++];
        if (password === undefined) return next(false as never);
        next({ type: 'password', username: 'agent', password });
      },
    });
  });
}

describe('SSH authentication limits', () => {
  it('disconnects the 7th attempt after six unknown keys (OpenSSH client), logging and counting each', async () => {
    const from = gateway.logs.length;
    const before = await failureCounts('build-host');
    const keys = strangers.slice(0, 7).flatMap((k) => ['-i', k.path]);
    const r = await run('ssh', [
      ...sshClientOptions(gateway.port('build-host')),
      '-o',
      'LogLevel=INFO',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'PreferredAuthentications=publickey',
      ...keys,
      'agent@127.0.0.1',
      'true',
    ]);
    expect(r.code).toBe(255);
    // The gateway's own lines say why, should the connection end any other way.
    expect({
      stderr: r.stderr,
      gateway: r.stderr.includes('Received disconnect') ? [] : gateway.logs.slice(from),
    }).toMatchObject({
      stderr: expect.stringMatching(/Received disconnect from 127\.0\.0\.1 port \d+:14/),
      gateway: [],
    });
    const logs = failureLogs('build-host', from);
    expect(logs.map((l) => l['reason'])).toEqual([...Array(6).fill('unknown-key'), 'too-many-attempts']);
    for (const l of logs)
      expect(l).toMatchObject({
        level: 'info',
        listener: 'build-host',
        protocol: 'ssh',
        source: '127.0.0.1',
      });
    expect(String(logs[0]!['fingerprint'])).toMatch(/^SHA256:/);
    const after = await failureCounts('build-host');
    expect((after['unknown-key'] ?? 0) - (before['unknown-key'] ?? 0)).toBe(6);
    expect((after['too-many-attempts'] ?? 0) - (before['too-many-attempts'] ?? 0)).toBe(1);
  });

  it('counts an unknown key before the right one, and the login goes on', async () => {
    const from = gateway.logs.length;
    const r = await run('ssh', [
      ...sshClientOptions(gateway.port('build-host')),
      '-o',
      'IdentitiesOnly=yes',
      '-i',
      strangers[7]!.path,
      '-i',
      devinKey.path,
      'agent@127.0.0.1',
      'echo in',
    ]);
    expect(r.stdout.toString()).toBe('in\n');
    expect(failureLogs('build-host', from).map((l) => l['reason'])).toEqual(['unknown-key']);
  });

  it('stops wrong passwords at the limit, delays a source that keeps failing, and still lets the right one in', async () => {
    const from = gateway.logs.length;
    const before = await failureCounts('build-host');
    const wrong = Array.from({ length: 10 }, (_, i) => `wrong-password-${i}`);
    const first = await tryPasswords(gateway.port('build-host'), wrong);
    expect(first.authenticated).toBe(false);
    expect(first.disconnect?.code).toBe(14);
    // Six answered failures, then the 7th attempt ended the connection.
    expect(first.failedAt).toHaveLength(6);
    // Three failures are free, then each waits longer: 250 ms, 500 ms, 1 s.
    const gaps = first.failedAt.map((t, i) => t - (first.failedAt[i - 1] ?? 0));
    expect(gaps[3]).toBeGreaterThanOrEqual(240);
    expect(gaps[4]).toBeGreaterThanOrEqual(490);
    expect(gaps[5]).toBeGreaterThanOrEqual(990);
    const logs = failureLogs('build-host', from);
    expect(logs.map((l) => l['reason'])).toEqual([...Array(6).fill('bad-token'), 'too-many-attempts']);
    expect(logs.every((l) => l['method'] === 'password' && l['source'] === '127.0.0.1')).toBe(true);
    expect(logs.slice(3, 6).map((l) => l['penaltyMs'])).toEqual([250, 500, 1000]);
    // No secret in the log: not even the wrong ones.
    expect(JSON.stringify(gateway.logs.slice(from))).not.toContain('wrong-password');
    const after = await failureCounts('build-host');
    expect((after['bad-token'] ?? 0) - (before['bad-token'] ?? 0)).toBe(6);

    // A new connection from the same source is answered late, right or wrong, so timing tells nothing; the
    // right token still gets in (a penalty, not a ban).
    const started = Date.now();
    const second = await tryPasswords(gateway.port('build-host'), [TOKEN]);
    expect(second.authenticated).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
  }, 60_000);

  it("applies a listener's own maxAuthTries (2: the 3rd attempt disconnects)", async () => {
    const from = gateway.logs.length;
    const r = await tryPasswords(gateway.port('strict'), ['a-1', 'a-2', 'a-3', 'a-4']);
    expect(r.disconnect?.code).toBe(14);
    expect(r.failedAt).toHaveLength(2);
    expect(failureLogs('strict', from).map((l) => l['reason'])).toEqual([
      'bad-token',
      'bad-token',
      'too-many-attempts',
    ]);
    expect((await failureCounts('strict'))['too-many-attempts']).toBe(1);
  });
});
