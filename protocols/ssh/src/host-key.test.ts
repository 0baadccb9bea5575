import { describe, it, expect } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { generateHostKey, loadOrCreateHostKey, type HostKeyPair } from './host-key.js';

const notAKey: HostKeyPair = {
  private: '-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n',
  public: 'ssh-ed25519 AAAA',
};

describe('generateHostKey', () => {
  it('gives keys ssh2 parses, every time (ssh2 alone gets one in 256 wrong)', () => {
    for (let i = 0; i < 2_000; i++) {
      const pair = generateHostKey();
      expect(ssh2.utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
    }
  });

  it('generates again when a pair does not parse, and gives up after eight', () => {
    const good = generateHostKey();
    const outputs = [notAKey, notAKey, good];
    expect(generateHostKey(() => outputs.shift()!)).toBe(good);
    expect(() => generateHostKey(() => notAKey)).toThrow(
      /could not generate an SSH host key ssh2 can read \(8 tries\)/,
    );
  });
});

describe('loadOrCreateHostKey', () => {
  it('creates a 0600 key and its .pub once, then keeps it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-host-key-'));
    try {
      const path = join(dir, 'keys', 'ssh_host_ed25519_key.shell');
      const first = await loadOrCreateHostKey(path);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const parsed = ssh2.utils.parseKey(first);
      if (parsed instanceof Error) throw parsed;
      const pub = readFileSync(`${path}.pub`, 'utf8').trim().split(' ');
      expect(Buffer.from(pub[1]!, 'base64').equals(parsed.getPublicSSH())).toBe(true);
      expect((await loadOrCreateHostKey(path)).equals(first)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file that is not a key, saying what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-host-key-'));
    try {
      const path = join(dir, 'ssh_host_ed25519_key');
      writeFileSync(path, notAKey.private, { mode: 0o600 });
      await expect(loadOrCreateHostKey(path)).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(`${path}: not an SSH private key (`),
      });
      await expect(loadOrCreateHostKey(path)).rejects.toThrow(
        /remove the file \(and its \.pub\) to have a new one/,
      );
      expect(readFileSync(path, 'utf8')).toBe(notAKey.private);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
