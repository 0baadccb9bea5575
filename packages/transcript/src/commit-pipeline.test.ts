import { describe, it, expect } from '@jest/globals';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '@agentgate/core';
import type { WriteBatch } from './batch-writer.js';
import { CommitPipeline, type CommitPipelineOptions } from './commit-pipeline.js';

/** Records batches; fails while `failing` is set, like lmdb-js (generic error, cause in `commitError`). */
function fakeCommitter() {
  const committed: WriteBatch[] = [];
  const state = { failing: false, committed, attempts: 0 };
  return Object.assign(state, {
    commit(batch: WriteBatch): Promise<void> {
      state.attempts++;
      if (!state.failing) {
        committed.push(batch);
        return Promise.resolve();
      }
      const err = Object.assign(new Error('Commit failed (see commitError for details)'), {
        commitError: Promise.reject(new Error('MDB_DISK_FULL')),
      });
      return Promise.reject(err);
    },
  });
}

/** A committer whose commits settle only when told: `finish[i]()` settles the i-th started one. */
function committerSettlingWhenTold() {
  const started: WriteBatch[] = [];
  const finish: (() => void)[] = [];
  const committer = {
    commit(batch: WriteBatch): Promise<void> {
      started.push(batch);
      return new Promise<void>((resolve) => finish.push(resolve));
    },
  };
  return { started, finish, committer };
}

function pipeline(overrides: Partial<CommitPipelineOptions> = {}) {
  const committer = fakeCommitter();
  const events: string[] = [];
  const settled: WriteBatch[] = [];
  const resumed: { since: number; reason: string }[] = [];
  const commits = new CommitPipeline({
    committer,
    log: silentLogger,
    failMode: 'closed',
    recoveryProbeMs: 10,
    hooks: {
      writeError: () => void events.push('writeError'),
      writableChanged: (w) => void events.push(`writable:${w}`),
    },
    onSettled: (batch) => void settled.push(batch),
    onResumed: (since, reason) => void resumed.push({ since, reason }),
    ...overrides,
  });
  return { commits, committer, events, settled, resumed };
}

describe('commit pipeline', () => {
  it('commits what one turn queued as one batch and settles it', async () => {
    const { commits, committer, settled } = pipeline();
    commits.put(0, 'S/1', 'a');
    commits.put(5, 'S/1', Buffer.from('io'));
    expect(commits.queued).toBe(2);
    await commits.drain();
    expect(committer.committed.map((b) => b.keys)).toEqual([['S/1', 'S/1']]);
    expect(settled).toHaveLength(1);
    expect(commits.failed).toBe(false);
    commits.stop();
  });

  it('starts commits nothing waits for at most once per window, and at once when something waits', async () => {
    const windowMs = 2000;
    const { commits, committer } = pipeline({ commitWindowMs: windowMs });
    commits.put(0, 'S/1', 'a');
    await sleep(10);
    // The first commit starts on the next turn: the window counts from the previous commit's start.
    expect(committer.committed.map((b) => b.keys)).toEqual([['S/1']]);
    const firstStarted = performance.now();
    commits.put(0, 'S/2', 'b');
    await nextTurn();
    commits.put(0, 'S/3', 'c');
    await sleep(10);
    expect(committer.committed).toHaveLength(1);
    expect(commits.queued).toBe(2);
    // A waiter does not wait for the window: both queued puts commit together, now.
    await commits.whenCommitted();
    const secondStarted = performance.now();
    expect(secondStarted - firstStarted).toBeLessThan(windowMs / 2);
    expect(committer.committed.map((b) => b.keys)).toEqual([['S/1'], ['S/2', 'S/3']]);
    // …and without a waiter, the next commit comes once the window has passed.
    commits.put(0, 'S/4', 'd');
    while (committer.committed.length < 3) await sleep(20);
    expect(performance.now() - secondStarted).toBeGreaterThanOrEqual(windowMs - 50);
    expect(committer.committed.map((b) => b.keys)).toEqual([['S/1'], ['S/2', 'S/3'], ['S/4']]);
    // drain() does not wait for it either.
    commits.put(0, 'S/5', 'e');
    const drainStarted = performance.now();
    await commits.drain();
    expect(performance.now() - drainStarted).toBeLessThan(windowMs / 2);
    expect(committer.committed).toHaveLength(4);
    commits.stop();
  });

  it('starts the next commit when one settles, before the settle lets anything resume, once the window has passed', async () => {
    // onSettled notes how many commits had started by then.
    const { started, finish, committer } = committerSettlingWhenTold();
    const startedAtSettle: number[] = [];
    const { commits } = pipeline({
      committer,
      commitWindowMs: 1,
      onSettled: () => void startedAtSettle.push(started.length),
    });
    commits.put(0, 'S/1', 'a');
    while (started.length < 1) await nextTurn();
    commits.put(0, 'S/2', 'b');
    await sleep(5);
    finish[0]!();
    while (startedAtSettle.length < 1) await nextTurn();
    // A paused stream resumed by the settle would fill the rest of the turn; the second commit is already running.
    expect(startedAtSettle).toEqual([2]);
    expect(started.map((b) => b.keys)).toEqual([['S/1'], ['S/2']]);
    finish[1]!();
    await commits.drain();
    expect(startedAtSettle).toEqual([2, 2]);
    commits.stop();
  });

  it('leaves the next commit to the window when one settles within it', async () => {
    const { started, finish, committer } = committerSettlingWhenTold();
    const startedAtSettle: number[] = [];
    const { commits } = pipeline({
      committer,
      commitWindowMs: 2000,
      onSettled: () => void startedAtSettle.push(started.length),
    });
    commits.put(0, 'S/1', 'a');
    while (started.length < 1) await nextTurn();
    commits.put(0, 'S/2', 'b');
    finish[0]!();
    while (startedAtSettle.length < 1) await nextTurn();
    await sleep(10);
    expect(startedAtSettle).toEqual([1]);
    expect(started).toHaveLength(1);
    commits.stop();
  });

  it('stops at the first failed commit, drops later puts, and resumes once a probe commits', async () => {
    const { commits, committer, events, resumed } = pipeline();
    committer.failing = true;
    commits.put(0, 'S/1', 'lost');
    await commits.drain();
    expect(commits.failed).toBe(true);
    expect(events).toEqual(['writeError', 'writable:false']);
    await nextTurn();
    expect(commits.lastError).toBe('Commit failed (see commitError for details): MDB_DISK_FULL');
    commits.put(0, 'S/2', 'also lost');
    await commits.drain();
    expect(commits.dropped).toBe(2);
    await sleep(40); // probes keep failing
    expect(commits.failed).toBe(true);
    expect(committer.attempts).toBeGreaterThan(2);

    committer.failing = false;
    const since = Date.now();
    while (commits.failed) await sleep(5);
    expect(events).toEqual(['writeError', 'writable:false', 'writable:true']);
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.since).toBeLessThanOrEqual(since);
    expect(resumed[0]!.reason).toContain('MDB_DISK_FULL');
    expect(committer.committed.at(-1)!.keys).toEqual(['probe']);
    commits.put(0, 'S/3', 'kept');
    await commits.drain();
    expect(committer.committed.at(-1)!.keys).toEqual(['S/3']);
    commits.stop();
  });

  async function failOnceThenHeal(p: ReturnType<typeof pipeline>): Promise<number> {
    p.committer.failing = true;
    p.commits.put(0, 'S/1', 'x');
    await p.commits.drain();
    const attempts = p.committer.attempts;
    p.committer.failing = false;
    await sleep(40);
    return p.committer.attempts - attempts;
  }

  it('does not probe once stopped (the store is closing)', async () => {
    const p = pipeline();
    p.commits.stop();
    expect(await failOnceThenHeal(p)).toBe(0);
    expect(p.commits.failed).toBe(true);
  });

  it('does not probe with recoveryProbeMs 0', async () => {
    const p = pipeline({ recoveryProbeMs: 0 });
    expect(await failOnceThenHeal(p)).toBe(0);
    expect(p.commits.failed).toBe(true);
    p.commits.stop();
  });
});
