import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@agentgate/core';
import type { WriteBatch } from './batch-writer.js';
import { CommitPipeline } from './commit-pipeline.js';
import { ReservedPuts } from './reserved-puts.js';
import { newLiveSession } from './session-recorder.js';
import { SpaceReserve } from './space-reserve.js';

const pageSize = 4096;
let dir: string;
let reserve: SpaceReserve;
let commits: CommitPipeline;
let committed: WriteBatch[];
let failNext: boolean;
const sessions = new Map<string, ReturnType<typeof newLiveSession>>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-reserved-'));
  const file = join(dir, 'data.mdb');
  await writeFile(file, Buffer.alloc(4 * pageSize));
  reserve = await SpaceReserve.open({
    file,
    reserveBytes: 320 << 10,
    stats: { pageSize, lastPage: () => 3, maxTreeDepth: () => 1 },
    log: silentLogger,
    retryMs: 0,
    onFullChanged: () => undefined,
  });
  committed = [];
  failNext = false;
  sessions.clear();
  commits = new CommitPipeline({
    committer: {
      commit: (batch: WriteBatch) => {
        if (failNext) return Promise.reject(new Error('Commit failed'));
        committed.push({ dbs: [...batch.dbs], keys: [...batch.keys], values: [...batch.values] });
        return Promise.resolve();
      },
    },
    log: silentLogger,
    hooks: {},
    failMode: 'closed',
    recoveryProbeMs: 0,
    reserve,
    onSettled: () => undefined,
    onResumed: () => undefined,
  });
});
afterEach(async () => {
  commits.stop();
  await reserve.close();
  await rm(dir, { recursive: true, force: true });
});

/** Admit and queue one event as the store writer does. */
function append(puts: ReservedPuts, id: string, type: 'command' | 'io', bytes: number): void {
  const session = sessions.get(id) ?? newLiveSession(id);
  sessions.set(id, session);
  const stored = 'x'.repeat(Math.min(bytes, 500));
  const data = type === 'io' ? Buffer.alloc(bytes) : undefined;
  const charge = puts.admitEvent(session, type, 20, stored, data, 0);
  commits.put(0, `${id}/${type}`, stored, charge);
}
describe('reserved puts', () => {
  it('keeps what the reserve cannot vouch for out of the batch carrying a guaranteed command', async () => {
    const puts = new ReservedPuts(reserve, commits);
    append(puts, 'A', 'command', 300); // fits: guaranteed
    expect(puts.committed(sessions.get('A')!)).toBeUndefined();
    append(puts, 'B', 'io', 1 << 20); // 1 MiB of io cannot fit in 320 KiB: a batch of its own
    append(puts, 'C', 'command', 300); // no room left: C waits for its commit
    const waitC = puts.committed(sessions.get('C')!);
    expect(waitC).toBeDefined();
    await waitC;
    await commits.drain();
    expect(committed.map((b) => b.keys)).toEqual([['A/command'], ['B/io', 'C/command']]);
  });

  it("rejects a waiting command's promise with RECORDING_FAILED when its commit fails", async () => {
    const puts = new ReservedPuts(reserve, commits);
    append(puts, 'B', 'io', 1 << 20);
    append(puts, 'C', 'command', 300);
    const waitC = puts.committed(sessions.get('C')!);
    failNext = true;
    await expect(waitC).rejects.toMatchObject({
      code: 'RECORDING_FAILED',
      detail: { recordingFailure: 'io-error' },
    });
  });

  it('queues an uncharged final record when full only if its room came with the session end', async () => {
    const full = await SpaceReserve.open({
      file: '/dev/full',
      reserveBytes: 1 << 20,
      stats: { pageSize, lastPage: () => 0, maxTreeDepth: () => 1 },
      log: silentLogger,
      retryMs: 0,
      onFullChanged: () => undefined,
    });
    const puts = new ReservedPuts(full, commits);
    expect(puts.admitRecord(false)).toBeUndefined();
    expect(puts.admitRecord(true)).toBe(0);
    await full.close();
  });
});
