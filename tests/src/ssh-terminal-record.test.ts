/**
 * What a pty session leaves in the store (LMDB, the full gateway): the screen output and the decided command lines,
 * never what the terminal did not echo. The store directory is searched byte for byte and every event decoded.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TranscriptEvent } from '@agentgate/core';
import { exportAsciicast, exportJsonl } from '@agentgate/transcript';
import { runCli } from './harness/cli.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { startSshd, type TestSshd } from './harness/sshd.js';
import { ScriptedShell } from './harness/ssh-terminal.js';

let sshd: TestSshd;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  sshd = await startSshd();
  gw = await startTestGateway(`
listeners:
  - name: build-host
    protocol: ssh
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: root, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
rules:
  - name: no-rm
    protocol: ssh
    match: { programs: [rm] }
    action: deny
`);
  const addr = gw.address('build-host');
  if (!('port' in addr)) throw new Error('expected a TCP listener');
  port = addr.port;
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Every place a secret could be kept: the raw store files, each event as JSON, and each io event's bytes. */
async function storeContains(secret: string): Promise<string[]> {
  await gw.store.flush();
  const found: string[] = [];
  for (const file of filesUnder(join(gw.dir, 'transcripts')))
    if (readFileSync(file).includes(secret)) found.push(file);
  for (const s of gw.store.listSessions()) {
    for (const event of gw.store.events(s.id) as Iterable<TranscriptEvent>) {
      if (JSON.stringify(event).includes(secret)) found.push(`${s.id} event ${event.seq}`);
      if (event.type === 'io' && Buffer.from(String(event['data'] ?? ''), 'base64').includes(secret))
        found.push(`${s.id} io ${event.seq}`);
    }
    for (const line of exportJsonl(gw.store.events(s.id)))
      if (line.includes(secret)) found.push(`${s.id} jsonl`);
  }
  return found;
}

describe('what a terminal session records', () => {
  it('keeps neither a password typed at `read -s` nor one typed at a prompt that prints asterisks', async () => {
    const token = await gw.token('devin', ['agents']);
    const sh = await ScriptedShell.open({ port, password: token });
    await sh.type('read -s pw\r', /read -s pw\r\n/);
    await new Promise((r) => setTimeout(r, 300));
    await sh.type('s3cret-typed\r', /[#$] $/);
    await sh.type('echo "got ${#pw} chars"\r', /got 12 chars/);
    // A prompt that echoes `*` per key: the screen line is `*****…`, the keys must not become a reading.
    await sh.type(
      `p=''; while IFS= read -rs -n1 c && [ -n "$c" ]; do p+=$c; printf '*'; done; echo; echo "len \${#p}"\r`,
      /read -rs -n1/,
    );
    await new Promise((r) => setTimeout(r, 300));
    await sh.type('hunter2-typed\r', /len \d+/);
    expect(await sh.exit()).toBe(0);
    await new Promise((r) => setTimeout(r, 200));

    expect(await storeContains('s3cret-typed')).toEqual([]);
    expect(await storeContains('hunter2-typed')).toEqual([]);

    // The session is still useful: the decided lines are recorded, and replay and asciicast show the screen.
    const session = gw.store
      .listSessions()
      .find((s) =>
        [...gw.store.events(s.id)].some((e) => e.type === 'command' && e['text'] === 'read -s pw'),
      );
    expect(session).toBeDefined();
    const events = [...gw.store.events(session!.id)];
    const commands = events.filter((e) => e.type === 'command').map((e) => String(e['text']));
    expect(commands).toEqual(expect.arrayContaining(['read -s pw', 'echo "got ${#pw} chars"', 'exit']));
    // The keys typed at the asterisk prompt went to that program, unseen: not a command line.
    expect(commands.filter((c) => c.includes('***'))).toEqual([]);
    expect(events.filter((e) => e.type === 'io' && e['direction'] === 'in')).toEqual([]);
    // What a player shows: the output frames in order (the pty may split a line across frames).
    const screen = exportAsciicast(gw.store.events(session!.id))
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => (JSON.parse(line) as [number, string, string])[2])
      .join('');
    expect(screen).toContain('got 12 chars');
    const replay = await runCli(['replay', session!.id, '--config', gw.configFile, '--speed', '0']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('got 12 chars');
    expect(replay.stdout).toContain('read -s pw');
    expect(replay.stdout).not.toContain('s3cret-typed');
  });
});
