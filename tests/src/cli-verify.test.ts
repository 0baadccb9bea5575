/**
 * `agentgate verify` as an auditor runs it: against the store a stopped gateway left, exit 0 when intact, exit 1
 * and a named problem after the LMDB environment is edited behind the gateway's back.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { open } from 'lmdb';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { LineClient } from './harness/line-client.js';
import { runCli } from './harness/cli.js';

let gw: TestGateway;
let sessionId: string;

beforeAll(async () => {
  gw = await startTestGateway(`rules: [{ name: no-secrets, match: { pattern: secret }, action: deny }]`, {
    testListeners: [{ name: 'echo', allow: ['group:agents'] }],
  });
  const client = await LineClient.connect(gw.address('echo'));
  sessionId = (await client.send(`AUTH ${await gw.token('devin', ['agents'])}`)).split(' ')[2]!;
  await client.send('hello');
  await client.send('a secret');
  await client.close();
  await new Promise((r) => setTimeout(r, 200));
  await gw.stop({ keepFiles: true });
});

afterAll(async () => {
  if (gw) await rm(gw.dir, { recursive: true, force: true });
});

describe('agentgate verify', () => {
  it('passes on an intact store and fails, naming the session, after an event is altered', async () => {
    const intact = await runCli(['verify', '--config', gw.configFile, '--json']);
    expect(intact.code).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true, problems: [] });

    const env = open({ path: join(gw.dir, 'transcripts'), encoding: 'string', compression: false });
    const events = env.openDB<string, string>('events', { encoding: 'string', compression: false });
    const found = [...events.getRange({ start: `${sessionId}/`, end: `${sessionId}0` })].find(
      (e) => e.value.includes('"hello"') && e.value.includes('"type":"command"'),
    );
    expect(found).toBeDefined();
    const { key, value: original } = found!;
    await events.put(key, original.replace('hello', 'HELLO'));
    await env.close();

    const broken = await runCli(['verify', '--config', gw.configFile, '--json']);
    expect(broken.code).toBe(1);
    const report = JSON.parse(broken.stdout) as {
      ok: boolean;
      problems: { session: string; kind: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.problems.some((p) => p.session === sessionId)).toBe(true);
    const text = await runCli(['verify', '--config', gw.configFile]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^BROKEN/);
  });

  it('says a copy cut short is incomplete (exit 1) instead of dying on its missing pages', async () => {
    const backup = join(gw.dir, 'backup');
    // exit 1: the store is the one the test above altered; the copy stays all the same
    expect((await runCli(['backup', '--store', join(gw.dir, 'transcripts'), '--to', backup])).code).toBe(1);
    // A copy cut off halfway (a transfer interrupted, a backup still being written): before, SIGBUS (exit 135).
    const copied = await readFile(join(backup, 'data.mdb'));
    const cut = join(gw.dir, 'cut');
    await mkdir(cut);
    await writeFile(join(cut, 'data.mdb'), copied.subarray(0, copied.length >> 1));
    const verify = await runCli(['verify', '--store', cut]);
    expect(verify).toMatchObject({ code: 1, stdout: '' });
    expect(verify.stderr).toMatch(
      /^agentgate: transcript store \S+ is incomplete: its data file lacks \d+ bytes/,
    );
  });
});
