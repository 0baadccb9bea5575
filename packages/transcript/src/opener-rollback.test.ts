/**
 * A process opening the store while the gateway commits: lmdb-js's LMDB (without upstream's ITS#9496 fix) stores the
 * transaction id the opener read into the shared lock region, after the gateway's newer commit. The gateway's next
 * transaction then builds on the snapshot before that commit. Here the opener's write is made directly, as it
 * lands: the lock region's transaction id set back by one commit.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { open as openFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@agentgate/core';
import { open } from 'lmdb';
import { parseFeedRecord } from './commit-feed.js';
import { openStoreForReading } from './read-only-store.js';
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

/** lmdb-js's native environment: mdb_env_info. */
function lastTxnId(store: TranscriptStore): number {
  const native = (store as unknown as { dbs: { env: { env: { info(): { lastTxnId: number } } } } }).dbs.env
    .env;
  return native.info().lastTxnId;
}

/** Where the lock region keeps the last committed transaction id (found by value, then checked to follow a commit). */
async function txnIdOffset(lockFile: string, txnId: number): Promise<number> {
  const file = await openFile(lockFile, 'r');
  try {
    const head = Buffer.alloc(256);
    await file.read(head, 0, head.length, 0);
    for (let offset = 0; offset < head.length; offset += 8)
      if (head.readBigUInt64LE(offset) === BigInt(txnId)) return offset;
  } finally {
    await file.close();
  }
  throw new Error(`transaction id ${txnId} not found in ${lockFile}`);
}

async function setLockTxnId(lockFile: string, offset: number, txnId: number): Promise<void> {
  const file = await openFile(lockFile, 'r+');
  try {
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(BigInt(txnId));
    await file.write(value, 0, 8, offset);
  } finally {
    await file.close();
  }
}

async function readLockTxnId(lockFile: string, offset: number): Promise<number> {
  const file = await openFile(lockFile, 'r');
  try {
    const value = Buffer.alloc(8);
    await file.read(value, 0, 8, offset);
    return Number(value.readBigUInt64LE(0));
  } finally {
    await file.close();
  }
}

function recordingLogger(lines: { msg: string; fields?: Record<string, unknown> }[]): Logger {
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: (msg, fields) => void lines.push({ msg, ...(fields ? { fields } : {}) }),
    error: (msg, fields) => void lines.push({ msg, ...(fields ? { fields } : {}) }),
    child: () => log,
  };
  return log;
}

describe('transcript store: a process opening the store while it commits', () => {
  it('writes a commit again that the opener made LMDB lose, so every chain stays whole', async () => {
    const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
    const store = await temp.open({ log: recordingLogger(warnings), commitWindowMs: 0 });
    const lockFile = join(temp.storePath, 'lock.mdb');
    const info = sessionInfo();
    const recorder = store.openSession(info);
    await store.flush();
    const before = lastTxnId(store);
    const offset = await txnIdOffset(lockFile, before);

    // The commit the opener races: the session's decided command.
    recorder.append('command', commandBody('SELECT 1', 'allow'));
    await store.flush();
    expect(lastTxnId(store)).toBe(before + 1);
    expect(await readLockTxnId(lockFile, offset)).toBe(before + 1);
    // The opener read the header before that commit and stores what it read after it.
    await setLockTxnId(lockFile, offset, before);

    recorder.append('result', { event: 'sql', tag: 'SELECT 1', rows: 1 });
    recorder.end(CLIENT_LEFT_END);
    await store.flush();

    expect([...store.events(info.id)].map((e) => e.type)).toEqual([
      'session.start',
      'command',
      'result',
      'session.end',
    ]);
    expect(warnings).toContainEqual(
      expect.objectContaining({ msg: expect.stringContaining('written again'), fields: { commits: 1 } }),
    );
    const live = await store.verify();
    expect(live.problems).toEqual([]);
    await store.close();

    // The commit feed names each of the session's commits once, the one written again included.
    const env = open<string, string>({ path: temp.storePath, readOnly: true, encoding: 'string', maxDbs: 8 });
    try {
      const feed = env.openDB<string, string>('feed', { encoding: 'string' });
      const ranges = [...feed.getRange()].flatMap(({ value }) =>
        parseFeedRecord(value)!.events.filter(([session]) => session === info.id),
      );
      expect(ranges).toEqual([
        [info.id, 0, 0],
        [info.id, 1, 1],
        [info.id, 2, 3],
      ]);
    } finally {
      await env.close();
    }

    // What another process reads from the store: the same whole session.
    const reader = await openStoreForReading(temp.storePath);
    try {
      expect([...reader.events(info.id)].map((e) => e.seq)).toEqual([0, 1, 2, 3]);
      const report = await reader.verify((jws) => temp.signer.verifyCompact(jws));
      expect(report.problems).toEqual([]);
    } finally {
      await reader.close();
    }
  });

  it('writes a lost commit of io bytes again with the bytes it hashed, though the next commit reuses slabs', async () => {
    const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
    const store = await temp.open({ log: recordingLogger(warnings), commitWindowMs: 0 });
    const lockFile = join(temp.storePath, 'lock.mdb');
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    await store.flush();
    const before = lastTxnId(store);
    const offset = await txnIdOffset(lockFile, before);

    // Events this big are stored from pooled slabs, which go back to the pool once nothing needs them.
    const lostBytes = Buffer.alloc(48 * 1024, 0x61);
    recorder.io('out', lostBytes, '0');
    await store.flush();
    await setLockTxnId(lockFile, offset, before);

    // The next commit fills a slab with other bytes: the slab of the lost commit, had it been given back.
    recorder.io('in', Buffer.alloc(48 * 1024, 0x62), '0');
    recorder.end(CLIENT_LEFT_END);
    await store.flush();

    expect(warnings).toContainEqual(
      expect.objectContaining({ msg: expect.stringContaining('written again'), fields: { commits: 1 } }),
    );
    expect(warnings.filter(({ msg }) => msg.includes('failed'))).toEqual([]);
    const io = [...store.events(info.id)].filter((e) => e.type === 'io');
    expect(io.map((e) => Buffer.from(String(e['data']), 'base64').equals(lostBytes))).toEqual([true, false]);
    expect((await store.verify()).problems).toEqual([]);
    await store.close();
  });
});
