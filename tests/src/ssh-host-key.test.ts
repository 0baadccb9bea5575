/**
 * The SSH listener's own host key, on `agentgate serve` as an operator runs it: a missing key is created, real
 * OpenSSH reads it and finds the gateway presenting it; a file that is not a key stops the gateway at start with
 * what to do, rather than a listener that resets every connection.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from './harness/cli.js';
import { baseConfigYaml, listenerYaml, serveProcess } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

let sshd: TestSshd;
let dir: string;
let agentKey: { path: string; publicKey: string };

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-host-key-'));
  agentKey = makeKeyPair(dir, 'agent');
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A configuration in its own directory, whose listener `shell` keeps its host key at `<home>/ssh_host_ed25519_key`. */
function configIn(name: string): { home: string; configFile: string; hostKey: string } {
  const home = join(dir, name);
  mkdirSync(home);
  const configFile = join(home, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(home, { token: 'host-key-token', sshPublicKey: agentKey.publicKey }) +
      'listeners:\n' +
      listenerYaml.ssh('shell', sshd, home),
  );
  return { home, configFile, hostKey: join(home, 'ssh_host_ed25519_key') };
}

describe('the SSH listener host key', () => {
  it('is created when missing, OpenSSH reads it, and the gateway presents it', async () => {
    const { home, configFile, hostKey } = configIn('created');
    const gateway = await serveProcess(configFile);
    try {
      expect(statSync(hostKey).mode & 0o777).toBe(0o600);
      const pub = readFileSync(`${hostKey}.pub`, 'utf8').trim();
      expect(execFileSync('ssh-keygen', ['-y', '-f', hostKey]).toString().trim()).toBe(pub);
      // Strict host key checking against the .pub alone: the key the gateway presents is the one on disk.
      const knownHosts = join(home, 'known_hosts');
      writeFileSync(knownHosts, `[127.0.0.1]:${gateway.port('shell')} ${pub}\n`);
      const options = sshClientOptions(gateway.port('shell'), agentKey.path).map((o) =>
        o === 'StrictHostKeyChecking=no'
          ? 'StrictHostKeyChecking=yes'
          : o === 'UserKnownHostsFile=/dev/null'
            ? `UserKnownHostsFile=${knownHosts}`
            : o,
      );
      const r = await run('ssh', [...options, 'agent@127.0.0.1', 'echo through']);
      expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }).toEqual({
        code: 0,
        stdout: 'through\n',
        stderr: '',
      });
    } finally {
      await gateway.stop();
    }
  });

  it('that is not a key stops the gateway at start, saying what to do', async () => {
    const { configFile, hostKey } = configIn('broken');
    writeFileSync(
      hostKey,
      '-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n',
      {
        mode: 0o600,
      },
    );
    const r = await runCli(['serve', '--config', configFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `agentgate: ${hostKey}: not an SSH private key (Malformed OpenSSH private key); give the listener a valid ` +
        'OpenSSH private key, or remove the file (and its .pub) to have a new one created',
    );
  });
});
