/**
 * State that lasts, on `agentgate serve` as an operator runs it: an SSH key registered with `agentgate ssh-login`
 * survives `kill -TERM` and a restart (the real OpenSSH client logs in with it before and after); `ssh-login` says
 * why a TTL is refused; and a service token removed from `identity.tokens` stops working at SIGHUP, its open SSH
 * session ending with the reason recorded.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import ssh2 from 'ssh2';
import { runCli } from './harness/cli.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

const TOKEN = 'identity-state-token-8d1f';
const CI_TOKEN = 'identity-state-ci-token-27b0';
let sshd: TestSshd;
let dir: string;
let configFile: string;
let gateway: ServedGateway | undefined;

function configYaml(withCiToken: boolean): string {
  const ciEntry = `  - { name: ci-bot, sha256: "${createHash('sha256').update(CI_TOKEN).digest('hex')}", groups: [agents] }\n`;
  // The base section lists one token in flow style; the CI token is added as a block list of the same key.
  const base = baseConfigYaml(dir, { token: TOKEN }).replace(
    / {2}tokens: \[(.*)\]\n/,
    (_all, devin: string) => `  tokens:\n  - ${devin}\n${withCiToken ? ciEntry : ''}`,
  );
  return base + 'listeners:\n' + listenerYaml.ssh('shell', sshd, dir);
}

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-identity-state-'));
  configFile = join(dir, 'agentgate.yaml');
  writeFileSync(configFile, configYaml(true));
  gateway = await serveProcess(configFile);
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Exec over SSH with a token as the password (ssh2: the OpenSSH client cannot take a password non-interactively). */
function execWithToken(
  token: string,
  command: string,
  onData?: (text: string) => void,
): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () =>
      c.exec(command, (err, ch) => {
        if (err) return reject(err);
        let out = '';
        let code: number | null = null;
        ch.on('data', (d: Buffer) => {
          out += d.toString();
          onData?.(out);
        });
        ch.on('exit', (x: number | null) => (code = x));
        ch.on('close', () => {
          c.end();
          resolve({ out, code });
        });
        c.on('close', () => resolve({ out, code }));
      }),
    );
    c.on('error', reject);
    c.connect({
      host: '127.0.0.1',
      port: gateway!.port('shell'),
      username: 'agent',
      password: token,
      tryKeyboard: false,
    });
  });
}

describe('state that lasts', () => {
  it('an ssh-login registration survives kill -TERM and a restart, with its expiry', async () => {
    const key = makeKeyPair(dir, 'agent-key');
    const login = await runCli([
      'ssh-login',
      '--admin',
      gateway!.admin,
      '--token',
      TOKEN,
      '--key',
      `${key.path}.pub`,
      '--ttl',
      '2h',
      '--json',
    ]);
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);
    const registered = JSON.parse(login.stdout) as { fingerprint: string; expiresAt: string };
    const sshArgs = (): string[] => [
      ...sshClientOptions(gateway!.port('shell'), key.path),
      'agent@127.0.0.1',
    ];
    expect((await run('ssh', [...sshArgs(), 'echo before-restart'])).stdout.toString()).toBe(
      'before-restart\n',
    );

    const file = join(dir, 'transcripts', 'ssh-key-registrations.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await gateway!.stop(); // SIGTERM
    gateway = await serveProcess(configFile);

    expect(gateway.logs).toContainEqual(
      expect.objectContaining({ msg: 'ssh key registrations restored', restored: 1, dropped: 0 }),
    );
    const after = await run('ssh', [...sshArgs(), 'echo after-restart']);
    expect(after.stdout.toString()).toBe('after-restart\n');
    const listed = (await (
      await fetch(`${gateway.admin}/api/ssh-keys`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { fingerprint: string; expiresAt: string }[];
    expect(listed).toEqual([expect.objectContaining(registered)]);
  }, 120_000);

  it('a fingerprint that is not valid percent-encoding is a bad request (400), not an internal error', async () => {
    const response = await fetch(`${gateway!.admin}/api/ssh-keys/%E0%A4%A`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      message: 'the fingerprint in the path is not valid percent-encoding',
    });
    expect(gateway!.logs).not.toContainEqual(expect.objectContaining({ msg: 'admin request failed' }));
  });

  it('ssh-login says why a TTL over the maximum is refused', async () => {
    const key = makeKeyPair(dir, 'long-key');
    const login = await runCli([
      'ssh-login',
      '--admin',
      gateway!.admin,
      '--token',
      TOKEN,
      '--key',
      `${key.path}.pub`,
      '--ttl',
      '30d',
    ]);
    expect(login.code).toBe(1);
    expect(login.stderr).toContain('ttl 720h is over the maximum of 168h; ask for 168h or less');
  });

  it('a token removed at SIGHUP stops working and its open session ends, with the reason recorded', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const session = execWithToken(CI_TOKEN, 'echo started; sleep 30; echo finished', (out) => {
      if (out.includes('started')) started();
    });
    await running;
    const begun = Date.now();

    writeFileSync(configFile, configYaml(false));
    const reloaded = gateway!.nextLog((l) => l['msg'] === 'configuration reloaded', 15_000);
    const ended = gateway!.nextLog((l) =>
      String(l['msg']).startsWith('session ends: the credential was revoked'),
    );
    gateway!.process.kill('SIGHUP');
    expect(await reloaded).toMatchObject({ identity: { tokensRemoved: ['ci-bot'] } });
    expect(await ended).toMatchObject({
      msg: 'session ends: the credential was revoked (token ci-bot was removed from identity.tokens by a reload)',
    });

    const result = await session;
    expect(result.out).toBe('started\n');
    expect(Date.now() - begun).toBeLessThan(15_000);
    await expect(execWithToken(CI_TOKEN, 'true')).rejects.toThrow(/authentication/);
    // The token that stayed still works.
    expect(await execWithToken(TOKEN, 'echo still-here')).toEqual({ out: 'still-here\n', code: 0 });
  }, 60_000);
});
