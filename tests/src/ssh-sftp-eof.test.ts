/**
 * The sftp relay holds a client's packets while a write request is decided or the upstream is full; the client's
 * EOF must reach the upstream after them, not overtake them. Real sshd whose sftp subsystem is a capture script
 * that starts reading late (so the upstream's window fills and the gateway queues), ssh2 as the agent sending raw
 * sftp packets (INIT, then open-for-write and WRITE requests, ending with an open-for-write) and its EOF at once.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { startAgentSshFixture, type AgentSshFixture } from './harness/sshd.js';

let fixture: AgentSshFixture;
let captureDir: string;

beforeAll(async () => {
  captureDir = mkdtempSync(join(tmpdir(), 'agentgate-sftp-capture-'));
  const script = join(captureDir, 'capture.sh');
  writeFileSync(script, `#!/bin/sh\nsleep 1\nexec cat > ${join(captureDir, 'received')}\n`);
  chmodSync(script, 0o755);
  fixture = await startAgentSshFixture({ sftpSubsystem: script });
});

afterAll(async () => {
  await fixture?.stop();
  rmSync(captureDir, { recursive: true, force: true });
});

function packet(type: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: Buffer | string): Buffer => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([u32(b.length), b]);
};
const openForWrite = (id: number, path: string): Buffer =>
  packet(3, u32(id), str(path), u32(0x02 | 0x08), u32(0));
const write = (id: number, offset: number, data: Buffer): Buffer =>
  packet(6, u32(id), str('h1'), u64(offset), str(data));

describe('sftp through the gateway', () => {
  it('passes the client EOF on after the packets queued before it', async () => {
    const packets = [packet(1, u32(3))];
    const data = Buffer.alloc(4096, 0x61);
    for (let i = 0; i < 700; i++)
      packets.push(openForWrite(2 * i + 1, `/tmp/f${i}`), write(2 * i + 2, i * 4096, data));
    packets.push(openForWrite(9999, '/tmp/last'));
    const sent = Buffer.concat(packets);

    const client = await new Promise<ssh2.Client>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('ready', () => resolve(c)).on('error', reject);
      c.connect({
        host: '127.0.0.1',
        port: fixture.gw.port,
        username: 'agent',
        privateKey: readFileSync(fixture.agentKey.path),
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        client.subsys('sftp', (err, channel) => {
          if (err) return reject(err);
          channel.on('close', () => resolve());
          channel.resume();
          channel.end(sent);
        });
      });
    } finally {
      client.end();
    }
    const received = readFileSync(join(captureDir, 'received'));
    expect(received.length).toBe(sent.length);
    expect(received.equals(sent)).toBe(true);
  }, 60_000);
});
