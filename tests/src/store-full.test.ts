/**
 * The transcript store fills up (here: the file-size limit of the process, which LMDB hits like a full disk) while
 * an SSH download streams through `agentgate serve` with the default failMode (closed): the stream is ended instead
 * of going on unrecorded, new sessions are refused, the gateway stays up and says so on /readyz, and what was
 * recorded before the store failed verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from './harness/cli.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

/** LMDB's file may not grow past this: a few MB of io events after startup. */
const FILE_SIZE_LIMIT = 24 << 20;
let sshd: TestSshd;
let dir: string;
let configFile: string;
let agentKey: { path: string; publicKey: string };
let gateway: ChildProcess | undefined;

beforeAll(async () => {
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'agentgate-full-'));
  agentKey = makeKeyPair(dir, 'agent');
  configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    `store: { path: ${join(dir, 'transcripts')} }
signingKey: ${join(dir, 'signing-key.json')}
admin: { listen: "127.0.0.1:0" }
identity:
  sshKeys: [{ name: devin, publicKey: "${agentKey.publicKey}", groups: [agents] }]
listeners:
  - name: shell
    protocol: ssh
    listen: "127.0.0.1:0"
    hostKey: ${join(dir, 'ssh_host_ed25519_key')}
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
`,
  );
}, 60_000);

afterAll(async () => {
  gateway?.kill('SIGKILL');
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('store full during a stream (failMode closed)', () => {
  it('ends the stream, refuses new sessions, stays up, and what was recorded verifies', async () => {
    const child = spawn(
      'prlimit',
      [
        `--fsize=${FILE_SIZE_LIMIT}`,
        process.execPath,
        join(repoRoot, 'bin', 'agentgate'),
        'serve',
        '--config',
        configFile,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    gateway = child;
    const logs: Record<string, unknown>[] = [];
    let buffered = '';
    const started = new Promise<{ admin: string; listeners: { name: string; address: { port: number } }[] }>(
      (resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`agentgate exited (${code})`)));
        child.stderr!.on('data', (d: Buffer) => {
          buffered += d.toString();
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const l of lines) {
            if (!l.startsWith('{')) continue;
            const line = JSON.parse(l) as Record<string, unknown>;
            logs.push(line);
            if (line['msg'] === 'agentgate started') resolve(line as never);
          }
        });
      },
    );
    const info = await started;
    const port = info.listeners.find((l) => l.name === 'shell')!.address.port;

    // Unbounded output: without fail-closed streams this would run until the client gave up.
    const download = spawn(
      'ssh',
      [...sshClientOptions(port, agentKey.path), 'devin@127.0.0.1', 'cat /dev/zero'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let downloaded = 0;
    download.stdout!.on('data', (d: Buffer) => (downloaded += d.length));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => download.kill('SIGKILL'), 30_000);
      download.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull(); // ended by the gateway, not by the 30 s timer
    expect(downloaded).toBeGreaterThan(0);
    expect(downloaded).toBeLessThan(FILE_SIZE_LIMIT * 4);
    expect(logs.some((l) => String(l['msg']).includes('the transcript store refuses its bytes'))).toBe(true);

    // Still up, and honest about it: not ready while the store cannot write; a new session is refused.
    expect(child.exitCode).toBeNull();
    const ready = await fetch(`${info.admin}/readyz`);
    expect(ready.status).toBe(503);
    const refused = await run(
      'ssh',
      [...sshClientOptions(port, agentKey.path), 'devin@127.0.0.1', 'echo hi'],
      {
        timeoutMs: 20_000,
      },
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stdout.toString()).not.toContain('hi');

    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    gateway = undefined;
    const verified = await runCli(['verify', '--config', configFile, '--json']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
  }, 90_000);
});
