/**
 * A channel's stdout and stderr share one window. When the client stops reading, both writes of the gateway's
 * channel wait for the client's window; when it reads again, both must resume, each exactly once. ssh2 1.17.0 resumed
 * only stdout and kept it for later: the session hung, and a later stderr wait sent the old stdout bytes again
 * (patched in patches/ssh2@1.17.0.patch). OpenSSH client, real sshd; the client's reading is paused by not draining
 * its stdout or stderr pipe.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import {
  sshClientOptions,
  startAgentSshFixture,
  type AgentSshFixture,
  type StandaloneSshGateway,
} from './harness/sshd.js';

let fixture: AgentSshFixture;
let gw: StandaloneSshGateway;
let agentKey: { path: string; publicKey: string };

beforeAll(async () => {
  fixture = await startAgentSshFixture();
  ({ gw, agentKey } = fixture);
});

afterAll(async () => {
  await fixture?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects a pipe once `startAfter` has passed; until then the pipe fills and the ssh client stops reading. */
function collectLater(stream: Readable, startAfter: Promise<void>): () => Buffer {
  const chunks: Buffer[] = [];
  stream.pause();
  void startAfter.then(() => {
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.resume();
  });
  return () => Buffer.concat(chunks);
}

/** `ssh agent@gateway command` with stdout and stderr read only from the given moments on. */
async function runWithPausedReads(
  command: string,
  readStdoutAfterMs: number,
  readStderrAfterMs: number,
): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }> {
  const child = spawn('ssh', [...sshClientOptions(gw.port, agentKey.path), 'agent@127.0.0.1', command], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = collectLater(child.stdout, sleep(readStdoutAfterMs));
  const stderr = collectLater(child.stderr, sleep(readStderrAfterMs));
  // A hung channel fails the test with what arrived, not with the test's timeout and a client left behind.
  const deadline = setTimeout(() => child.kill(), 20_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(deadline);
  return { code, stdout: stdout(), stderr: stderr() };
}

const seqOutput = (n: number): Buffer =>
  execFileSync('seq', ['1', String(n)], { maxBuffer: 64 * 1024 * 1024 });

describe('ssh channel window shared by stdout and stderr', () => {
  it('delivers stderr written while stdout waits for the window, and all of stdout once', async () => {
    // stdout (~15 MB) exhausts the client's window while unread; the marker reaches the gateway meanwhile.
    const result = await runWithPausedReads('seq 1 2000000 & sleep 1; echo marker >&2; wait', 2500, 0);
    expect(result.code).toBe(0);
    expect(result.stderr.toString()).toContain('marker');
    expect(result.stdout.equals(seqOutput(2000000))).toBe(true);
  }, 30_000);

  it('does not send stdout again when only stderr waits for the window later', async () => {
    // stdout waits for the window first (unread for 1 s), then 4 MB of stderr waits on its own (unread for 3 s).
    const result = await runWithPausedReads(
      "seq 1 1000000; head -c 4000000 /dev/zero | tr '\\0' e >&2",
      1000,
      3000,
    );
    expect(result.code).toBe(0);
    expect(result.stdout.equals(seqOutput(1000000))).toBe(true);
    expect(result.stderr.length).toBe(4_000_000);
    expect(result.stderr.every((b) => b === 0x65)).toBe(true);
  }, 30_000);
});
