import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { dbIndex } from './batch-writer.js';
import { FeedWriter, feedRecordText } from './commit-feed.js';
import { eventKey } from './event-codec.js';
import type { FeedEvent } from './feed-reader.js';
import type { TranscriptStore } from './transcript-store.js';
import {
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../test/test-store.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await makeTempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

/** Everything the feed holds after `after`, read `limit` events at a time. */
function readAll(
  store: TranscriptStore,
  after = 0,
  limit = 1000,
): { position: number; events: FeedEvent[]; commits: number[] } {
  const events: FeedEvent[] = [];
  const commits: number[] = [];
  let position = after;
  for (;;) {
    const batch = store.feed.read(position, { limit });
    if (batch.position === position) return { position, events, commits };
    expect(batch.position).toBeGreaterThan(position);
    position = batch.position;
    events.push(...batch.events);
    commits.push(...batch.commits.map((c) => c.position));
  }
}

/** Every stored event key, in key order. */
function storedKeys(store: TranscriptStore): string[] {
  const keys: string[] = [];
  for (const summary of store.listSessions())
    for (const event of store.events(summary.id)) keys.push(eventKey(event.session, event.seq));
  return keys;
}

describe('commit feed', () => {
  it('names each commit once, in commit order, with every event of it', async () => {
    const store = await temp.open();
    expect(store.feed.head()).toBe(0);
    const a = store.openSession(sessionInfo());
    const b = store.openSession(sessionInfo({ protocol: 'ssh', listener: 'shell' }));
    a.append('command', commandBody('SELECT 1'));
    b.append('command', commandBody('ls'));
    a.append('command', commandBody('SELECT 2', 'allow'));
    await store.flush();
    b.append('command', commandBody('rm -rf /', 'deny'));
    a.end(CLIENT_LEFT_END);
    await store.flush();
    const batch = store.feed.read(0);
    expect(batch.position).toBe(store.feed.head());
    expect(batch.commits.map((c) => c.position)).toEqual(
      Array.from({ length: batch.commits.length }, (_, i) => i + 1),
    );
    // Commit order first, then each session's events in seq order within a commit.
    const firstCommit = batch.events.filter((e) => e.position === 1);
    expect(firstCommit.map((e) => [e.session, e.seq, e.type])).toEqual([
      [a.sessionId, 0, 'session.start'],
      [a.sessionId, 1, 'command'],
      [a.sessionId, 2, 'command'],
      [b.sessionId, 0, 'session.start'],
      [b.sessionId, 1, 'command'],
    ]);
    const later = batch.events.filter((e) => e.position > 1).map((e) => [e.session, e.seq, e.type]);
    expect(later).toEqual([
      [b.sessionId, 2, 'command'],
      [a.sessionId, 3, 'session.end'],
    ]);
    // The stored bytes and the parsed event agree with what the store reads.
    const fromStore = [...store.events(a.sessionId)];
    for (const event of batch.events.filter((e) => e.session === a.sessionId)) {
      expect(event.event).toEqual(fromStore[event.seq]);
      expect(event.ts).toBe(fromStore[event.seq]!.ts);
      expect(event.stored.endsWith(`"hash":"${fromStore[event.seq]!.hash}"}`)).toBe(true);
    }
    // Nothing new: the same position, nothing read.
    expect(store.feed.read(batch.position)).toEqual({
      position: batch.position,
      commits: [],
      events: [],
      checkpoints: [],
      removed: [],
    });
    await store.close();
  });

  it("counts what lies after a position from the feed records alone (a reader's lag)", async () => {
    const store = await temp.open();
    expect(store.feed.span(0)).toEqual({ commits: 0, events: 0, firstTs: undefined });
    const recorder = store.openSession(sessionInfo());
    recorder.append('command', commandBody('SELECT 1'));
    await store.flush();
    const first = store.feed.head();
    for (let i = 0; i < 5; i++) recorder.append('command', commandBody(`SELECT ${i}`));
    await store.flush();
    const batch = store.feed.read(0, { limit: 1_000_000 });
    const all = store.feed.span(0);
    expect(all.events).toBe(batch.events.length);
    expect(all.commits).toBe(batch.commits.length);
    expect(all.firstTs).toBe(batch.commits[0]!.ts);
    const after = store.feed.span(first);
    expect(after.events).toBe(batch.events.filter((e) => e.position > first).length);
    expect(store.feed.span(0, first).events).toBe(batch.events.filter((e) => e.position <= first).length);
    expect(store.feed.span(store.feed.head()).commits).toBe(0);
    await store.close();
  });

  it('resumes from a remembered position, also after a restart, never splitting a commit', async () => {
    let store = await temp.open();
    const recorder = store.openSession(sessionInfo());
    for (let i = 0; i < 30; i++) {
      recorder.append('command', commandBody(`SELECT ${i}`));
      if (i % 7 === 0) await store.flush();
    }
    await store.flush();
    const all = readAll(store).events.map((e) => e.seq);
    expect(all).toEqual(Array.from({ length: 31 }, (_, i) => i));
    // Small reads: each ends at a commit boundary and the next one continues exactly there.
    const first = store.feed.read(0, { limit: 3 });
    expect(first.events.length).toBeGreaterThanOrEqual(3);
    const commitEvents = first.commits.reduce((n, c) => n + c.events, 0);
    expect(commitEvents).toBe(first.events.length);
    const remembered = first.position;
    await store.close();

    store = await temp.open();
    recorder.end(CLIENT_LEFT_END); // a recorder of the closed store: nothing more is written by it
    const rest = readAll(store, remembered, 4).events.map((e) => e.seq);
    expect([...first.events.map((e) => e.seq), ...rest]).toEqual(all);
    // New commits after the restart continue the numbering.
    const before = store.feed.head();
    const next = store.openSession(sessionInfo());
    next.end(CLIENT_LEFT_END);
    await store.flush();
    const after = store.feed.read(before);
    expect(after.commits[0]?.position).toBe(before + 1);
    expect(after.events.map((e) => e.type)).toEqual(['session.start', 'session.end']);
    await store.close();
  });

  it('carries checkpoints, final and periodic, with the commit that stored them', async () => {
    const store = await temp.open({ checkpointIntervalMs: 20 });
    const recorder = store.openSession(sessionInfo());
    recorder.append('command', commandBody('SELECT 1'));
    await new Promise((resolve) => setTimeout(resolve, 80)); // a periodic checkpoint
    await store.flush();
    recorder.append('command', commandBody('SELECT 2'));
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    const { checkpoints, commits } = store.feed.read(0);
    const stored = [...store.checkpoints(recorder.sessionId)];
    expect(stored.length).toBeGreaterThanOrEqual(2);
    expect(checkpoints.map(({ position: _, ...c }) => c)).toEqual(stored);
    for (const checkpoint of checkpoints) {
      const commit = commits.find((c) => c.position === checkpoint.position);
      expect(commit?.checkpoints).toBeGreaterThan(0);
    }
    expect(checkpoints.at(-1)).toMatchObject({ seq: 3 }); // covers session.end
    await store.close();
  });

  it('reads io bytes only when asked', async () => {
    const store = await temp.open();
    const recorder = store.openSession(sessionInfo({ protocol: 'ssh' }));
    recorder.io('out', Buffer.from('hello\n'));
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    const plain = store.feed.read(0).events.find((e) => e.type === 'io');
    expect(plain?.data).toBeUndefined();
    expect(plain?.event).toMatchObject({ type: 'io', bytes: 6 });
    expect(plain?.event['data']).toBeUndefined();
    const withBytes = store.feed.read(0, { ioData: true }).events.find((e) => e.type === 'io');
    expect(withBytes?.data?.toString()).toBe('hello\n');
    await store.close();
  });

  it('tells listeners after each commit and wakes a waiting reader without polling', async () => {
    const store = await temp.open();
    const seen: number[] = [];
    const unsubscribe = store.feed.onCommit((position) => {
      // Readable by the time the listener hears of it.
      expect(store.feed.read(position - 1).position).toBe(position);
      seen.push(position);
    });
    const head = store.feed.head();
    const waiting = store.feed.waitForCommit(head);
    const recorder = store.openSession(sessionInfo());
    await expect(waiting).resolves.toBe(head + 1);
    await expect(store.feed.waitForCommit(head)).resolves.toBe(head + 1); // already past: at once
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    // The end, and its final checkpoint in the same commit or (signed late) the next one.
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual(Array.from({ length: store.feed.head() - head }, (_, i) => head + 1 + i));
    unsubscribe();
    const abort = new AbortController();
    const abandoned = store.feed.waitForCommit(store.feed.head(), abort.signal);
    abort.abort(new Error('stopped'));
    await expect(abandoned).rejects.toThrow('stopped');
    await store.close();
  });

  it('gives a failed commit no record: the next commit takes its number', () => {
    const writer = new FeedWriter(undefined as never, 7, () => undefined);
    const batch = {
      dbs: [
        dbIndex.events,
        dbIndex.events,
        dbIndex.iodata,
        dbIndex.sessions,
        dbIndex.events,
        dbIndex.checkpoints,
      ],
      keys: [
        eventKey('S1', 4),
        eventKey('S1', 5),
        eventKey('S1', 5),
        'S2',
        eventKey('S2', 0),
        eventKey('S1', 5),
      ],
      values: ['{}', '{}', Buffer.from('x'), '{}', '{}', '{}'],
    };
    const first = writer.recordFor(batch)!;
    expect(first.position).toBe(8);
    expect(JSON.parse(first.value)).toEqual({
      ts: expect.any(Number),
      events: [
        ['S1', 4, 5],
        ['S2', 0, 0],
      ],
      checkpoints: [['S1', 5]],
    });
    // Not committed (the transaction failed): the next one is 8 again.
    expect(writer.recordFor(batch)!.position).toBe(8);
    writer.committed(first);
    expect(writer.recordFor(batch)!.position).toBe(9);
    // A batch without events or checkpoints (the recovery probe) adds nothing.
    expect(feedRecordText({ dbs: [dbIndex.meta], keys: ['probe'], values: ['1'] }, 0)).toBeUndefined();
    // A session whose events in one batch are not consecutive gets one range per run.
    const runs = feedRecordText(
      {
        dbs: [dbIndex.events, dbIndex.events, dbIndex.events, dbIndex.events],
        keys: [eventKey('A', 1), eventKey('B', 0), eventKey('A', 2), eventKey('A', 9)],
        values: ['{}', '{}', '{}', '{}'],
      },
      5,
    );
    expect(JSON.parse(runs!)).toEqual({
      ts: 5,
      events: [
        ['A', 1, 2],
        ['A', 9, 9],
        ['B', 0, 0],
      ],
      checkpoints: [],
    });
  });

  it('after kill -9 shows exactly what was committed', async () => {
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(new URL('../test/append-until-killed.js', import.meta.url)),
        temp.storePath,
        join(temp.dir, 'keys', 'signing-key.json'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('READY')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before it was ready`)));
    });
    await new Promise((resolve) => setTimeout(resolve, 150)); // mid-stream
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;

    const store = await temp.open({ readOnly: true });
    const { position, events, commits } = readAll(store, 0, 500);
    expect(position).toBe(store.feed.head());
    expect(commits).toEqual(Array.from({ length: position }, (_, i) => i + 1)); // no gaps
    const fromFeed = events.map((e) => eventKey(e.session, e.seq));
    expect(new Set(fromFeed).size).toBe(fromFeed.length); // each event once
    expect([...fromFeed].sort()).toEqual(storedKeys(store)); // and every committed event
    await store.close();

    // Recovery's own commits follow in the feed.
    const writable = await temp.open();
    const head = writable.feed.head();
    expect(await writable.recoverInterrupted()).toBeGreaterThan(0);
    const recovered = readAll(writable, head).events;
    expect(recovered.filter((e) => e.type === 'session.end').length).toBeGreaterThan(0);
    const all = readAll(writable).events.map((e) => eventKey(e.session, e.seq));
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort()).toEqual(storedKeys(writable));
    await writable.close();
  }, 60_000);
});

describe('commit feed backfill', () => {
  /** Make the store look like one written before the feed: no feed records, no feed state. */
  async function removeFeed(): Promise<void> {
    const env = open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 });
    env.openDB('feed', { encoding: 'string' }).clearSync();
    env.openDB('meta', { encoding: 'string' }).removeSync('feed');
    await env.close();
  }

  async function writeSessions(store: TranscriptStore, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const recorder = store.openSession(sessionInfo());
      recorder.append('command', commandBody(`SELECT ${i}`));
      if (i % 2 === 0) recorder.end(CLIENT_LEFT_END);
      ids.push(recorder.sessionId);
    }
    await store.flush();
    return ids;
  }

  it('adds the events of an older store once, in key order, before the first new commit', async () => {
    let store = await temp.open();
    await writeSessions(store, 7);
    await store.close();
    await removeFeed();

    store = await temp.open();
    const backfilled = store.feed.read(0, { limit: 1_000_000 });
    expect(backfilled.commits.every((c) => c.backfill === true)).toBe(true);
    const keys = backfilled.events.map((e) => eventKey(e.session, e.seq));
    expect(keys).toEqual(storedKeys(store)); // key order, all of them
    expect(backfilled.checkpoints.length).toBe(4); // the ended sessions' final checkpoints
    const storeId = store.feed.storeId;
    expect(storeId).toEqual(expect.any(String));
    const next = store.openSession(sessionInfo());
    next.end(CLIENT_LEFT_END);
    await store.flush();
    const after = store.feed.read(backfilled.position);
    expect(after.commits.map((c) => c.backfill)).toEqual([undefined]);
    expect(after.events.map((e) => e.session)).toEqual([next.sessionId, next.sessionId]);
    await store.close();
    // Done once: a restart adds nothing, the store keeps its id.
    store = await temp.open();
    expect(store.feed.read(after.position).events).toEqual([]);
    expect(store.feed.storeId).toBe(storeId);
    await store.close();
  });

  it('splits a long session over records of a bounded number of events', async () => {
    let store = await temp.open();
    const long = store.openSession(sessionInfo());
    for (let i = 0; i < 24; i++) long.append('command', commandBody(`SELECT ${i}`));
    long.end(CLIENT_LEFT_END);
    await writeSessions(store, 5);
    await store.close();
    await removeFeed();

    const { openDatabases } = await import('./store-databases.js');
    const { prepareFeed } = await import('./feed-backfill.js');
    const { silentLogger } = await import('@agentgate/core');
    const env = open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 });
    await prepareFeed(openDatabases(env), silentLogger, 2000, 10);
    await env.close();

    store = await temp.open();
    const batch = store.feed.read(0, { limit: 1_000_000 });
    expect(batch.commits.length).toBeGreaterThanOrEqual(4); // 26 + 5 × 2-3 events, 10 a record
    for (const commit of batch.commits) expect(commit.events).toBeLessThanOrEqual(10);
    expect(batch.events.map((e) => eventKey(e.session, e.seq))).toEqual(storedKeys(store));
    expect(batch.checkpoints.length).toBe(4); // the long session's and the ended ones' final checkpoints
    // A reader asking for fewer events than a record holds still gets whole records, never more than one.
    expect(store.feed.read(0, { limit: 1 }).events.length).toBeLessThanOrEqual(10);
    await store.close();
  });

  it('resumes a backfill a crash interrupted without naming an event twice', async () => {
    let store = await temp.open();
    await writeSessions(store, 9);
    await store.close();
    await removeFeed();

    // The first backfill transaction commits, the second fails as a crash would leave it.
    const { openDatabases } = await import('./store-databases.js');
    const { prepareFeed } = await import('./feed-backfill.js');
    const { silentLogger } = await import('@agentgate/core');
    const env = open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 });
    const dbs = openDatabases(env);
    const batch = env.batch.bind(env);
    let calls = 0;
    env.batch = ((action: () => void) => {
      if (++calls === 3) throw new Error('killed'); // state, first record, then the crash
      return batch(action);
    }) as typeof env.batch;
    await expect(prepareFeed(dbs, silentLogger, 4)).rejects.toThrow('killed');
    env.batch = batch;
    await env.close();

    store = await temp.open();
    const events = readAll(store).events;
    // The first 4 sessions from before the crash, the other 5 from the resumed backfill.
    expect([...new Set(events.map((e) => e.position))]).toEqual([1, 2]);
    expect(events.map((e) => eventKey(e.session, e.seq))).toEqual(storedKeys(store));
    await store.close();
  });
});
