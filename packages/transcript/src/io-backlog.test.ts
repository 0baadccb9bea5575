/**
 * Stream bytes waiting for their commit are bounded: a session over its bound (or all sessions over the store's)
 * gets a promise from ioBackpressure that settles once commits catch up, and a relay pauses on it. Commits here
 * wait until the test lets them go, as a slow disk would.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { relayData, silentLogger, type SessionRecorder } from '@agentgate/core';
import { open } from 'lmdb';
import { BatchWriter, type WriteBatch } from './batch-writer.js';
import { decodeEvent, sessionKeyRange } from './event-codec.js';
import { IoBacklog } from './io-backlog.js';
import { openDatabases, type StoreDatabases } from './store-databases.js';
import { StoreWriter } from './store-writer.js';
import { CLIENT_LEFT_END, makeTempStore, sessionInfo, type TempStore } from '../test/test-store.js';

const KiB = 1024;
const sessionBound = 256 * KiB;
const storeBound = 384 * KiB;

let temp: TempStore;
let dbs: StoreDatabases;
let writer: StoreWriter;
/** Commits wait here until `letCommitsGo` (or fail, with `failCommits`). */
let gate: { promise: Promise<void>; open(): void; fail(err: Error): void };
let commitsStarted: number;
/** Called as a commit starts, before it waits for the gate. */
let onCommitStart: (() => void) | undefined;

function newGate(): typeof gate {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => ((open = resolve), (fail = reject)));
  // A gate nobody fails is never awaited with a rejection handler attached late.
  promise.catch(() => undefined);
  return { promise, open, fail };
}

beforeEach(async () => {
  temp = await makeTempStore();
  dbs = openDatabases(open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 }));
  const batches = new BatchWriter(dbs.env, dbs.byIndex);
  gate = newGate();
  commitsStarted = 0;
  onCommitStart = undefined;
  writer = new StoreWriter(dbs, {
    failMode: 'closed',
    readOnly: false,
    signer: temp.signer,
    log: silentLogger,
    hooks: {},
    recoveryProbeMs: 0,
    committer: {
      commit: async (batch: WriteBatch) => {
        commitsStarted++;
        onCommitStart?.();
        await gate.promise;
        return batches.commit(batch);
      },
      holds: (batch: WriteBatch) => batches.holds(batch),
    },
    lastCommittedEvent: () => undefined,
    ioBacklog: new IoBacklog(sessionBound, storeBound),
  });
});
afterEach(async () => {
  gate.open();
  await writer.close();
  await temp.cleanup();
});

/** The io bytes stored for a session, in order. */
function storedIo(id: string): Buffer {
  const parts: Buffer[] = [];
  for (const { key, value } of dbs.events.getRange(sessionKeyRange(id))) {
    if (decodeEvent(value).type !== 'io') continue;
    parts.push(Buffer.from(dbs.ioData!.get(key)!));
  }
  return Buffer.concat(parts);
}

/** Pass `bytes` through `recorder.io` in 64 KiB chunks. */
function record(recorder: SessionRecorder, bytes: number, fill = 1): void {
  for (let sent = 0; sent < bytes; sent += 64 * KiB) recorder.io('out', Buffer.alloc(64 * KiB, fill), '0');
}

describe('io backlog', () => {
  it('holds a session beyond its bound until its commits settle, then lets it go on', async () => {
    const recorder = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    record(recorder, 192 * KiB);
    expect(recorder.ioBackpressure?.()).toBeUndefined();
    record(recorder, 64 * KiB);
    const held = recorder.ioBackpressure?.();
    expect(held).toBeInstanceOf(Promise);
    expect(recorder.ioBackpressure?.()).toBe(held); // one wait per session, whoever asks
    let resumed = false;
    void held!.then(() => (resumed = true));
    await sleep(20);
    expect(resumed).toBe(false);
    gate.open();
    await held;
    expect(recorder.ioBackpressure?.()).toBeUndefined();
    expect(writer.ioBacklog.bytes).toBe(0);
  });

  it('resumes a held stream after the next commit has been handed on, not before', async () => {
    const recorder = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    record(recorder, 256 * KiB);
    const held = recorder.ioBackpressure?.();
    expect(held).toBeInstanceOf(Promise);
    while (commitsStarted < 1) await sleep(1);
    // The chunk that crossed the bound waits for the next commit.
    record(recorder, 64 * KiB, 2);
    // Like lmdb-js, which hands a batch to its writer thread from a setImmediate queued as the batch is made.
    const order: string[] = [];
    onCommitStart = () => void setImmediate(() => order.push('handed to the writer'));
    void held!.then(() => order.push('resumed'));
    gate.open();
    await held;
    // A resumed relay relays what its source buffered meanwhile within its turn: the commit goes first.
    expect(order).toEqual(['handed to the writer', 'resumed']);
    expect(commitsStarted).toBe(2);
  });

  it('holds every session while all of them together are beyond the store bound', async () => {
    const a = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    const b = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    record(a, 192 * KiB);
    record(b, 192 * KiB, 2);
    // Each is within its own bound; together they reach the store's.
    const heldA = a.ioBackpressure?.();
    const heldB = b.ioBackpressure?.();
    expect(heldA).toBeInstanceOf(Promise);
    expect(heldB).toBeInstanceOf(Promise);
    gate.open();
    await Promise.all([heldA, heldB]);
    expect(writer.ioBacklog.bytes).toBe(0);
  });

  it('lets a held stream go when its commit fails, and the recorder reports the loss', async () => {
    const recorder = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    await sleep(5); // session.start's commit is the one in flight; io goes to the next batches
    record(recorder, 320 * KiB);
    const held = recorder.ioBackpressure?.();
    expect(held).toBeInstanceOf(Promise);
    gate.fail(new Error('Commit failed'));
    await held; // resolves, never rejects and never hangs
    expect(writer.writable).toBe(false);
    expect(writer.ioBacklog.bytes).toBe(0);
    expect(writer.ioSlabs.slabsInUse).toBe(0);
    // The next bytes cannot be recorded: the engine is told to end the stream.
    record(recorder, 64 * KiB);
    expect(recorder.recordingLost?.aborted).toBe(true);
    expect(recorder.ioBackpressure?.()).toBeUndefined();
  });

  it('lets a held stream go when its session ends', async () => {
    const recorder = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    record(recorder, 320 * KiB);
    const held = recorder.ioBackpressure?.();
    expect(held).toBeInstanceOf(Promise);
    recorder.end(CLIENT_LEFT_END);
    await held;
    expect(recorder.ioBackpressure?.()).toBeUndefined();
  });

  it('a relay paused on it stays within the bound and delivers and records every byte in order', async () => {
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = writer.openSession(info);
    const src = new PassThrough();
    const dst = new PassThrough();
    const received: Buffer[] = [];
    dst.on('data', (c: Buffer) => received.push(c));
    let most = 0;
    relayData(src, dst, {
      observe: (c) => {
        recorder.io('out', c, '0');
        most = Math.max(most, writer.ioBacklog.bytes);
      },
      hold: () => recorder.ioBackpressure?.(),
    });
    // 4 MiB in 32 KiB chunks, each chunk's bytes telling its place; the source is written as fast as it drains.
    const chunks = Array.from({ length: 128 }, (_, i) => Buffer.alloc(32 * KiB, i));
    const written = (async () => {
      for (const chunk of chunks) if (!src.write(chunk)) await new Promise((r) => src.once('drain', r));
      src.end();
    })();
    // With commits held, the relay stops at the bound instead of reading on.
    await sleep(50);
    expect(received.length).toBeLessThan(chunks.length);
    const stalledAt = received.length;
    await sleep(50);
    expect(received.length).toBe(stalledAt);
    gate.open();
    await written;
    await new Promise((r) => src.once('end', r));
    recorder.end(CLIENT_LEFT_END);
    await writer.flush();
    const expected = Buffer.concat(chunks);
    expect(Buffer.concat(received).equals(expected)).toBe(true);
    expect(storedIo(info.id).equals(expected)).toBe(true);
    // The bound, plus what one event holds beyond it (the check follows the flush that crossed it).
    expect(most).toBeLessThanOrEqual(sessionBound + 96 * KiB);
    expect(commitsStarted).toBeGreaterThan(2);
  });
});
