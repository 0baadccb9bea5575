import { describe, it, expect } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger, type Signer } from '@agentgate/core';
import { dbIndex } from './batch-writer.js';
import { Checkpointer, type CheckpointSink } from './checkpointer.js';
import { checkpointPayload, eventKey, type CheckpointRecord } from './event-codec.js';
import { newLiveSession, setHead, type LiveSession } from './session-recorder.js';

/** Signs by echoing the payload, after `delayMs`; fails when told to. */
function fakeSigner(opts: { delayMs?: number; fail?: boolean } = {}): Signer & { signed: string[] } {
  const signed: string[] = [];
  return {
    kid: 'test',
    signed,
    async signCompact(payload) {
      await sleep(opts.delayMs ?? 0);
      if (opts.fail) throw new Error('HSM unavailable');
      signed.push(String(payload));
      return `jws(${String(payload)})`;
    },
    verifyCompact: () => Promise.reject(new Error('not used')),
    publicJwks: () => ({ keys: [] }),
  };
}

interface Put {
  db: number;
  key: string;
  value: string;
  admitted: boolean;
}

function fakeSink(): CheckpointSink & { puts: Put[]; recording: boolean } {
  const puts: Put[] = [];
  return {
    recording: true,
    puts,
    put: (db, key, value, admitted) => void puts.push({ db, key, value, admitted }),
    queue: (db, key, value) => void puts.push({ db, key, value, admitted: true }),
  };
}

function sessionAt(id: string, lastSeq: number, hash = 'a'.repeat(64)): LiveSession {
  const session = newLiveSession(id, { nextSeq: lastSeq + 1 });
  setHead(session, hash);
  return session;
}

/** Waits for `condition` (polled; the interval's rounds come late on a loaded machine). */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('checkpointer', () => {
  it('signs the last event once and stores the record under its key', async () => {
    const sink = fakeSink();
    const signer = fakeSigner();
    const checkpointer = new Checkpointer(signer, sink, silentLogger);
    const session = sessionAt('S1', 4);
    checkpointer.checkpoint(session);
    checkpointer.checkpoint(session); // covered already
    await checkpointer.settled();
    expect(signer.signed).toEqual([checkpointPayload('S1', 4, 'a'.repeat(64))]);
    expect(sink.puts).toHaveLength(1);
    expect(sink.puts[0]).toMatchObject({ db: dbIndex.checkpoints, key: eventKey('S1', 4), admitted: false });
    const record = JSON.parse(sink.puts[0]!.value) as CheckpointRecord;
    expect(record).toMatchObject({
      session: 'S1',
      seq: 4,
      hash: 'a'.repeat(64),
      jws: `jws(${signer.signed[0]})`,
    });
    expect(session.checkpointedSeq).toBe(4);
  });

  it('signs nothing for a session without events, or while the store cannot write', async () => {
    const sink = fakeSink();
    const signer = fakeSigner();
    const checkpointer = new Checkpointer(signer, sink, silentLogger);
    checkpointer.checkpoint(newLiveSession('EMPTY'));
    sink.recording = false;
    checkpointer.checkpoint(sessionAt('S2', 2));
    await checkpointer.settled();
    expect(signer.signed).toEqual([]);
    expect(sink.puts).toEqual([]);
  });

  it('drops a signature that completes after the store stopped writing', async () => {
    const sink = fakeSink();
    const checkpointer = new Checkpointer(fakeSigner({ delayMs: 20 }), sink, silentLogger);
    checkpointer.checkpoint(sessionAt('S3', 1));
    sink.recording = false;
    await checkpointer.settled();
    expect(sink.puts).toEqual([]);
  });

  it('logs a failed signature and still settles', async () => {
    const errors: string[] = [];
    const log: Logger = { ...silentLogger, error: (msg) => void errors.push(msg) };
    const sink = fakeSink();
    const checkpointer = new Checkpointer(fakeSigner({ fail: true }), sink, log);
    checkpointer.checkpoint(sessionAt('S4', 0));
    await checkpointer.settled();
    expect(errors).toEqual(['transcript: checkpoint failed']);
    expect(sink.puts).toEqual([]);
  });

  it("queues a session's end summary right after its final checkpoint, in the same turn", async () => {
    const sink = fakeSink();
    const checkpointer = new Checkpointer(fakeSigner({ delayMs: 5 }), sink, silentLogger);
    const summary = { db: dbIndex.ends, key: 'S6', value: '{"lastSeq":3}' };
    checkpointer.checkpoint(sessionAt('S6', 3), true, summary);
    expect(sink.puts).toEqual([]); // nothing before the signature: no reader sees an end without it
    await checkpointer.settled();
    expect(sink.puts.map((p) => [p.db, p.key])).toEqual([
      [dbIndex.checkpoints, eventKey('S6', 3)],
      [dbIndex.ends, 'S6'],
    ]);
  });

  it('still stores the end summary when signing fails (the next start signs it)', async () => {
    const sink = fakeSink();
    const checkpointer = new Checkpointer(fakeSigner({ fail: true }), sink, {
      ...silentLogger,
      error: () => {},
    });
    checkpointer.checkpoint(sessionAt('S7', 2), true, { db: dbIndex.ends, key: 'S7', value: '{}' });
    await checkpointer.settled();
    expect(sink.puts.map((p) => [p.db, p.key])).toEqual([[dbIndex.ends, 'S7']]);
  });

  it('periodically flushes io and checkpoints only sessions with new events', async () => {
    const sink = fakeSink();
    const checkpointer = new Checkpointer(fakeSigner(), sink, silentLogger);
    const session = sessionAt('S5', 1);
    let flushes = 0;
    session.recorder = { flushIo: () => void flushes++ } as unknown as NonNullable<LiveSession['recorder']>;
    checkpointer.startPeriodic(20, () => [session]);
    await until(() => flushes >= 2);
    await checkpointer.settled();
    expect(sink.puts.map((p) => p.key)).toEqual([eventKey('S5', 1)]);
    session.nextSeq = 3;
    const seen = flushes;
    await until(() => flushes > seen); // a round after the new event: it flushes, then checkpoints
    checkpointer.stopPeriodic();
    await checkpointer.settled();
    expect(sink.puts.map((p) => p.key)).toEqual([eventKey('S5', 1), eventKey('S5', 2)]);
    const count = sink.puts.length;
    session.nextSeq = 4;
    await sleep(50);
    expect(sink.puts).toHaveLength(count);
  });
});
