/**
 * File transfer through agentgate with the OpenSSH scp (SFTP mode and legacy `-O`) and sftp clients against a real
 * sshd: content intact both ways (SHA-256), transfers recorded with name, size, direction and hash, and a `paths`
 * rule denying writes under a prefix.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuleConfig } from '@agentgate/core';
import {
  makeKeyPair,
  run,
  sshClientOptions,
  startSshd,
  startStandaloneSshGateway,
  type StandaloneSshGateway,
  type TestSshd,
} from './harness/sshd.js';

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let local: string;
let agentKey: { path: string; publicKey: string };
let remote: string;
let protectedDir: string;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function clientOpts(): string[] {
  // scp and sftp take the port as -P; drop ssh's -p pair.
  const o = sshClientOptions(gw.port, agentKey.path);
  const i = o.indexOf('-p');
  o.splice(i, 2);
  return [...o, '-P', String(gw.port)];
}

function transfers(): Record<string, unknown>[] {
  return gw.transcript.all('result').filter((r) => r['event'] === 'file.transfer');
}

beforeAll(async () => {
  sshd = await startSshd();
  local = mkdtempSync(join(tmpdir(), 'agentgate-ssh-files-'));
  agentKey = makeKeyPair(local, 'agent');
  remote = join(sshd.dir, 'remote');
  protectedDir = join(sshd.dir, 'protected');
  mkdirSync(remote);
  mkdirSync(protectedDir);
  const rules: RuleConfig[] = [
    { name: 'no-writes-in-protected', protocol: 'ssh', match: { paths: [protectedDir] }, action: 'deny' },
  ];
  gw = await startStandaloneSshGateway({
    sshd,
    rules,
    identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (local) rmSync(local, { recursive: true, force: true });
});

describe.each([
  ['scp (sftp protocol)', [] as string[]],
  ['scp -O (legacy protocol)', ['-O']],
])('%s through agentgate', (name, extra) => {
  it('uploads and downloads with intact content and records both transfers', async () => {
    const content = randomBytes(2 * 1024 * 1024 + 17);
    const tag = extra.length > 0 ? 'legacy' : 'sftp';
    const src = join(local, `up-${tag}.bin`);
    writeFileSync(src, content);
    const dest = join(remote, `up-${tag}.bin`);
    const up = await run('scp', [...clientOpts(), ...extra, src, `agent@127.0.0.1:${dest}`]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(sha256(readFileSync(dest))).toBe(sha256(content));

    const back = join(local, `down-${tag}.bin`);
    const down = await run('scp', [...clientOpts(), ...extra, `agent@127.0.0.1:${dest}`, back]);
    expect(down.code).toBe(0);
    expect(sha256(readFileSync(back))).toBe(sha256(content));

    const recorded = transfers().filter((t) => String(t['path']).endsWith(`up-${tag}.bin`));
    expect(recorded).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          direction: 'upload',
          bytes: content.length,
          sha256: sha256(content),
          via: extra.length > 0 ? 'scp' : 'sftp',
        }),
        expect.objectContaining({ direction: 'download', bytes: content.length, sha256: sha256(content) }),
      ]),
    );
  });

  it(`denies a write under a protected path (${name})`, async () => {
    const src = join(local, 'payload.txt');
    writeFileSync(src, 'payload\n');
    const dest = join(protectedDir, `blocked-${extra.length}.txt`);
    const r = await run('scp', [...clientOpts(), ...extra, src, `agent@127.0.0.1:${dest}`]);
    expect(r.code).not.toBe(0);
    // Legacy scp shows the exec's stderr; the sftp client shows only the status code (SSH_FX_PERMISSION_DENIED).
    expect(r.stderr).toContain(
      extra.length > 0 ? 'agentgate: denied by rule no-writes-in-protected' : 'Permission denied',
    );
    expect(existsSync(dest)).toBe(false);
    expect(
      gw.transcript.decisions().some((d) => d['rule'] === 'no-writes-in-protected' && d['action'] === 'deny'),
    ).toBe(true);
    // The same place spelled through `..`, `.` or `//`: the sshd writes it all the same.
    for (const spelled of [
      `${remote}/../protected/blocked-dots-${extra.length}.txt`,
      `/${protectedDir}/./blocked-slashes-${extra.length}.txt`,
    ]) {
      const again = await run('scp', [...clientOpts(), ...extra, src, `agent@127.0.0.1:${spelled}`]);
      expect([spelled, again.code]).not.toEqual([spelled, 0]);
    }
    expect(readdirSync(protectedDir).filter((f) => f.startsWith('blocked-'))).toEqual([]);
  });
});

describe('sftp through agentgate', () => {
  it('puts and gets files, and refuses writes, removals and mkdir under the protected path', async () => {
    const content = randomBytes(700_000);
    writeFileSync(join(local, 'sftp-src.bin'), content);
    writeFileSync(join(protectedDir, 'keep.txt'), 'keep\n');
    const batch = join(local, 'batch');
    writeFileSync(
      batch,
      [
        `put ${join(local, 'sftp-src.bin')} ${join(remote, 'sftp-up.bin')}`,
        `get ${join(remote, 'sftp-up.bin')} ${join(local, 'sftp-back.bin')}`,
        `-put ${join(local, 'sftp-src.bin')} ${join(protectedDir, 'nope.bin')}`,
        `-rm ${join(protectedDir, 'keep.txt')}`,
        `-mkdir ${join(protectedDir, 'sub')}`,
        `ls ${remote}`,
      ].join('\n') + '\n',
    );
    const r = await run('sftp', [...clientOpts(), '-b', batch, 'agent@127.0.0.1']);
    expect(r.code).toBe(0);
    expect(sha256(readFileSync(join(remote, 'sftp-up.bin')))).toBe(sha256(content));
    expect(sha256(readFileSync(join(local, 'sftp-back.bin')))).toBe(sha256(content));
    expect(r.stderr).toContain('dest open');
    expect(r.stderr).toContain('Permission denied');
    expect(existsSync(join(protectedDir, 'nope.bin'))).toBe(false);
    expect(existsSync(join(protectedDir, 'keep.txt'))).toBe(true);
    expect(existsSync(join(protectedDir, 'sub'))).toBe(false);
    expect(r.stdout.toString()).toContain('sftp-up.bin');

    const decisions = gw.transcript.all('command').filter((c) => c['kind'] === 'file-write');
    expect(decisions.map((c) => c['path'])).toEqual(
      expect.arrayContaining([
        join(remote, 'sftp-up.bin'),
        join(protectedDir, 'nope.bin'),
        join(protectedDir, 'keep.txt'),
        join(protectedDir, 'sub'),
      ]),
    );
  });
});
