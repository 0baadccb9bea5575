import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TranscriptEvent } from '@agentgate/core';
import { loadOrCreateSigningKey, openTranscriptStore, type TranscriptStore } from '@agentgate/transcript';
import { checkSessionChain } from './chain-check.js';

const dirs: string[] = [];
const stores: TranscriptStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A real store with one ended session: a decided command and terminal bytes. */
async function recordedSession() {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-chain-'));
  dirs.push(dir);
  const signer = await loadOrCreateSigningKey(join(dir, 'key.json'));
  const store = await openTranscriptStore({
    path: join(dir, 'store'),
    failMode: 'closed',
    checkpointIntervalMs: 0,
    signer,
  });
  stores.push(store);
  const recorder = store.openSession({
    id: '01J00000000000000000000001',
    listener: 'db',
    protocol: 'postgres',
    identity: { name: 'devin', groups: ['agents'], source: 'token' },
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: Date.now(),
  });
  recorder.append('command', {
    protocol: 'postgres',
    text: 'SELECT 1',
    statements: [],
    decision: { action: 'allow' },
  });
  recorder.io('out', Buffer.from('one row\r\n'));
  recorder.end({ cause: 'client-left', reason: 'client closed' });
  await store.flush();
  const id = recorder.sessionId;
  return {
    events: [...store.events(id)],
    checkpoints: [...store.checkpoints(id)],
    verify: (jws: string) => signer.verifyCompact(jws),
  };
}

describe('session chain check', () => {
  it('finds an untouched session intact, its end covered by a valid checkpoint', async () => {
    const { events, checkpoints, verify } = await recordedSession();
    const report = await checkSessionChain(events, checkpoints, verify);
    expect(report).toMatchObject({ intact: true, problems: [], checkpoints: 1, endSigned: true });
    expect(report.lastCheckpoint?.seq).toBe(events.length - 1);
  });

  it('reports an altered event, a missing one, and a checkpoint whose signature does not verify', async () => {
    const { events, checkpoints, verify } = await recordedSession();
    const altered: TranscriptEvent[] = events.map((e) =>
      e.type === 'command' ? { ...e, text: 'DROP TABLE x' } : e,
    );
    expect((await checkSessionChain(altered, checkpoints, verify)).problems).toEqual([
      'event 1 does not match its hash',
    ]);
    const gap = events.filter((e) => e.seq !== 2);
    expect((await checkSessionChain(gap, checkpoints, verify)).problems).toEqual([
      'event 2 is missing (found 3)',
      'event 3 does not link to the event before it',
    ]);
    const forged = await checkSessionChain(events, checkpoints, () => Promise.reject(new Error('bad')));
    expect(forged).toMatchObject({ intact: false, checkpoints: 0, endSigned: false });
    expect(forged.problems[0]).toMatch(/has a bad signature$/);
  });
});
