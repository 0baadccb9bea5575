import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAgentgateError, silentLogger, type TranscriptEventType } from '@agentgate/core';
import { open } from 'lmdb';
import { BatchWriter, type WriteBatch } from './batch-writer.js';
import { decodeEvent, encodeEvent, eventKey, sessionKeyRange } from './event-codec.js';
import { openDatabases, type StoreDatabases } from './store-databases.js';
import { StoreWriter, type StoreWriterOptions } from './store-writer.js';
import {
  appendLegacyDecision,
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../test/test-store.js';

let temp: TempStore;
let dbs: StoreDatabases;
/** While set, commits fail as on a full disk (nothing of the batch is written). */
let diskFull: boolean;
let writer: StoreWriter;
let hookCalls: string[];

function makeWriter(overrides: Partial<StoreWriterOptions> = {}): StoreWriter {
  const batches = new BatchWriter(dbs.env, dbs.byIndex);
  return new StoreWriter(dbs, {
    failMode: 'closed',
    readOnly: false,
    signer: temp.signer,
    log: silentLogger,
    hooks: {
      event: (type) => void hookCalls.push(type),
      writableChanged: (w) => void hookCalls.push(`writable:${w}`),
    },
    recoveryProbeMs: 10,
    committer: {
      commit: (batch: WriteBatch) =>
        diskFull ? Promise.reject(new Error('Commit failed')) : batches.commit(batch),
      holds: (batch: WriteBatch) => batches.holds(batch),
    },
    lastCommittedEvent: (id) => {
      const { start, end } = sessionKeyRange(id);
      for (const { value } of dbs.events.getRange({ start: end, end: start, reverse: true, limit: 1 }))
        return decodeEvent(value);
      return undefined;
    },
    ...overrides,
  });
}

function storedTypes(id: string): TranscriptEventType[] {
  return [...dbs.events.getRange(sessionKeyRange(id))].map(({ value }) => decodeEvent(value).type);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isAgentgateError(err) ? err.code : String(err);
  }
}

beforeEach(async () => {
  temp = await makeTempStore();
  dbs = openDatabases(open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 }));
  diskFull = false;
  hookCalls = [];
  writer = makeWriter();
});
afterEach(async () => {
  await writer.close();
  await temp.cleanup();
});

describe('store writer', () => {
  it('indexes a session, chains its events, counts commands and denials, and writes the end summary', async () => {
    const info = sessionInfo();
    const recorder = writer.openSession(info, { database: 'app' });
    expect(codeOf(() => writer.openSession(info))).toBe('CONFLICT');
    recorder.append('command', commandBody('DROP TABLE t', 'deny'));
    expect(writer.liveSession(info.id)).toMatchObject({ nextSeq: 2, commands: 1, denied: 1 });
    recorder.append('command', commandBody('SELECT 1', 'allow'));
    expect(writer.liveSession(info.id)).toMatchObject({ nextSeq: 3, commands: 2, denied: 1 });
    // An older store's shape: a decision of its own counts the same.
    const legacy = recorder.append('command', commandBody('DROP TABLE u'));
    appendLegacyDecision(recorder, { commandSeq: legacy.seq, action: 'deny' });
    expect(writer.liveSession(info.id)).toMatchObject({ nextSeq: 5, commands: 3, denied: 2 });
    recorder.end({ cause: 'client-left', reason: 'client closed' });
    expect(writer.liveSession(info.id)).toBeUndefined();
    await writer.flush();
    const types = ['session.start', 'command', 'command', 'command', 'decision', 'session.end'];
    expect(storedTypes(info.id)).toEqual(types);
    expect(JSON.parse(dbs.sessions.get(info.id)!)).toMatchObject({ id: info.id, identity: 'devin' });
    expect(JSON.parse(dbs.ends.get(info.id)!)).toEqual({
      endedAt: expect.any(Number),
      commands: 3,
      denied: 2,
      lastSeq: 5,
      reason: 'client closed',
    });
    expect(dbs.checkpoints.get(eventKey(info.id, 5))).toBeDefined();
    expect(hookCalls).toEqual(types);
  });

  it('appendSeq stores and chains the event append would, answering its seq without building the event', async () => {
    const info = sessionInfo();
    const recorder = writer.openSession(info);
    const body = commandBody('SELECT 1', 'allow');
    expect(recorder.appendSeq!('command', body)).toBe(1);
    const next = recorder.append('notice', { event: 'test', text: 'after it' });
    expect(writer.liveSession(info.id)).toMatchObject({ nextSeq: 3, commands: 1 });
    await writer.flush();
    const stored = dbs.events.get(eventKey(info.id, 1))!;
    const event = decodeEvent(stored);
    expect(encodeEvent(info.id, 1, event.ts, 'command', event.prev, body).stored).toBe(stored);
    expect(next.prev).toBe(event.hash);
    expect(hookCalls).toEqual(['session.start', 'command', 'notice']);
  });

  it('failMode closed: after a failed commit, appends and new sessions are refused and end() does not throw', async () => {
    const info = sessionInfo();
    const recorder = writer.openSession(info);
    await writer.flush();
    diskFull = true;
    recorder.append('command', commandBody('SELECT 1'));
    await expect(writer.flush()).rejects.toMatchObject({ code: 'RECORDING_FAILED' });
    expect(writer.writable).toBe(false);
    expect(codeOf(() => recorder.append('command', commandBody('SELECT 2')))).toBe('RECORDING_FAILED');
    expect(codeOf(() => writer.openSession(sessionInfo()))).toBe('RECORDING_FAILED');
    expect(() => recorder.end(CLIENT_LEFT_END)).not.toThrow();
    expect(writer.health).toMatchObject({ writable: false, writeErrors: 1, lastError: 'Commit failed' });
    expect(storedTypes(info.id)).toEqual(['session.start']);
  });

  it('failMode open: appends while unwritable return the unchained event and are counted as dropped', async () => {
    writer = makeWriter({ failMode: 'open' }); // replaces the unused closed-mode writer (afterEach closes this one)
    const recorder = writer.openSession(sessionInfo());
    await writer.flush();
    diskFull = true;
    recorder.append('command', commandBody('SELECT 1'));
    await writer.flush();
    const event = recorder.append('command', commandBody('SELECT 2'));
    expect(event.seq).toBe(2); // what it would have been; the chain did not move
    expect(recorder.append('command', commandBody('SELECT 3')).seq).toBe(2);
    expect(writer.health.dropped).toBe(3); // the failed commit's event and the two refused
  });

  it('resumes each live session from its last committed event with a recording-gap notice', async () => {
    const kept = sessionInfo();
    const recorder = writer.openSession(kept);
    recorder.append('command', commandBody('committed'));
    await writer.flush();
    diskFull = true;
    recorder.append('command', commandBody('lost'));
    const unstarted = writer.openSession(sessionInfo()); // its session.start shares the failing commit
    await writer.flush().catch(() => undefined);
    expect(writer.writable).toBe(false);
    diskFull = false;
    while (!writer.writable) await sleep(5);
    expect(hookCalls.filter((c) => c.startsWith('writable'))).toEqual(['writable:false', 'writable:true']);
    recorder.append('command', commandBody('after'));
    recorder.end(CLIENT_LEFT_END);
    unstarted.end(CLIENT_LEFT_END);
    await writer.flush();
    expect(storedTypes(kept.id)).toEqual(['session.start', 'command', 'notice', 'command', 'session.end']);
    const notice = decodeEvent(dbs.events.get(eventKey(kept.id, 2))!);
    expect(notice).toMatchObject({
      event: 'recording-gap',
      reason: 'Commit failed',
      prev: expect.any(String),
    });
    expect(notice.prev).toBe(decodeEvent(dbs.events.get(eventKey(kept.id, 1))!).hash);
    expect(storedTypes(unstarted.sessionId)).toEqual([]);
  });

  it('returns pooled io buffers when an io event is refused', async () => {
    const recorder = writer.openSession(sessionInfo({ protocol: 'ssh' }));
    await writer.flush();
    diskFull = true;
    recorder.append('command', commandBody('x'));
    await writer.flush().catch(() => undefined);
    // Two chunks fill a slab (too many bytes to be copied out of it); the refused flush must hand it back.
    recorder.io('out', Buffer.alloc(20_000, 1), '0');
    recorder.io('out', Buffer.alloc(20_000, 2), '0');
    recorder.end(CLIENT_LEFT_END);
    expect(writer.ioSlabs.slabsInUse).toBe(0);
    expect(recorder.recordingLost?.aborted).toBe(true);
  });

  it('a read-only writer refuses to open sessions', () => {
    const readOnly = makeWriter({ readOnly: true });
    expect(readOnly.writable).toBe(false);
    expect(codeOf(() => readOnly.openSession(sessionInfo()))).toBe('RECORDING_FAILED');
  });
});
