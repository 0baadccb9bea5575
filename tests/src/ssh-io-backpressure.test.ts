/**
 * The relay pauses while the recorder says its stream bytes wait for commits (SessionRecorder.ioBackpressure), with
 * the OpenSSH client and a real sshd: the transfer stalls, nothing is lost or reordered, and it completes once the
 * recorder lets it go.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  makeKeyPair,
  sshClientOptions,
  startSshd,
  startStandaloneSshGateway,
  type StandaloneSshGateway,
  type TestSshd,
} from './harness/sshd.js';
import { holdRecording, stalled } from './harness/io-hold.js';

const MiB = 1024 * 1024;
const payload = randomBytes(24 * MiB);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let keys: string;
let agentKey: { path: string; publicKey: string };

beforeAll(async () => {
  sshd = await startSshd();
  keys = mkdtempSync(join(tmpdir(), 'agentgate-ssh-keys-'));
  agentKey = makeKeyPair(keys, 'agent');
  gw = await startStandaloneSshGateway({
    sshd,
    rules: [],
    identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (keys) rmSync(keys, { recursive: true, force: true });
});

/** `ssh agent@gateway command`, stdout collected, stdin from `input`. */
function startSsh(command: string, input?: Buffer) {
  const child = spawn('ssh', [...sshClientOptions(gw.port, agentKey.path), 'agent@127.0.0.1', command], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let received = 0;
  child.stdout.on('data', (d: Buffer) => {
    out.push(d);
    received += d.length;
  });
  child.stdin.on('error', () => undefined);
  if (input !== undefined) child.stdin.end(input);
  else child.stdin.end();
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { received: () => received, stdout: () => Buffer.concat(out), exited, kill: () => child.kill() };
}

describe('ssh relay under the recorder’s backpressure', () => {
  it('holds a download while the recorder is behind, then delivers every byte in order', async () => {
    const file = join(sshd.dir, 'download.bin');
    writeFileSync(file, payload);
    const hold = holdRecording(gw.transcript);
    const ssh = startSsh(`cat ${file}`);
    try {
      const at = await stalled(ssh.received);
      expect(at).toBeLessThan(payload.length / 2);
      expect(hold.asked()).toBeGreaterThan(0);
      hold.letGo();
      expect(await ssh.exited).toBe(0);
      expect(sha256(ssh.stdout())).toBe(sha256(payload));
    } finally {
      ssh.kill();
      gw.transcript.ioBackpressure = undefined;
      rmSync(file, { force: true });
    }
  });

  it('holds an upload while the recorder is behind, then writes every byte in order', async () => {
    const file = join(sshd.dir, 'upload.bin');
    writeFileSync(file, '');
    const hold = holdRecording(gw.transcript);
    const ssh = startSsh(`cat > ${file}`, payload);
    try {
      const at = await stalled(() => statSync(file).size);
      expect(at).toBeLessThan(payload.length / 2);
      hold.letGo();
      expect(await ssh.exited).toBe(0);
      expect(sha256(readFileSync(file))).toBe(sha256(payload));
    } finally {
      ssh.kill();
      gw.transcript.ioBackpressure = undefined;
      rmSync(file, { force: true });
    }
  });
});
