/**
 * How group-commit batches reach LMDB: one lmdb-js batch transaction per batch, on this thread (a worker-thread
 * writer cost throughput and saved nothing measurable: docs/performance.md, "Transcript store").
 */
import type { Database, RootDatabase } from 'lmdb';
import type { FeedWriter } from './commit-feed.js';

/** The store's databases, by index in batches. */
export const dbNames = ['events', 'sessions', 'ends', 'checkpoints', 'meta', 'iodata', 'feed'] as const;
export type DbName = (typeof dbNames)[number];
export const dbIndex: Readonly<Record<DbName, number>> = {
  events: 0,
  sessions: 1,
  ends: 2,
  checkpoints: 3,
  meta: 4,
  iodata: 5,
  feed: 6,
};

/**
 * A value to store: a string, or a Buffer (an event's UTF-8 bytes, event-codec.ts; io payloads in the binary
 * `iodata` db), which lmdb-js writes from the Buffer's own memory (write.js records its address; no copy on this
 * thread). The batch arrays keep the Buffers alive until the transaction settles (group-commit.ts).
 */
export type StoredValue = string | Buffer;

/** In a batch, a key to delete rather than a value to put (pruning whole sessions, prune.ts). */
export type BatchValue = StoredValue | null;

export interface WriteBatch {
  readonly dbs: readonly number[];
  readonly keys: readonly string[];
  readonly values: readonly BatchValue[];
}

export class BatchWriter {
  constructor(
    private readonly env: RootDatabase<string, string>,
    /** indexed like dbNames */
    private readonly dbs: readonly Database<StoredValue, string>[],
    /** adds each commit's record to the commit feed, in the same transaction (commit-feed.ts) */
    private readonly feed?: FeedWriter,
  ) {}

  /**
   * Write the batch as one transaction; rejects when it did not commit (then nothing of it is written), with
   * lmdb-js's error as is (its cause follows in `err.commitError`, see the store's onWriteError).
   */
  commit(batch: WriteBatch): Promise<void> {
    const { dbs, keys, values } = batch;
    // lmdb-js encodes the puts here and applies them on its writer thread, as one transaction (README, batch).
    // With encoding 'string' there is no encoder: a string is stored as its UTF-8 (write.js), a Buffer as its
    // bytes, as in the 'binary' db.
    const feed = this.feed;
    const record = feed?.recordFor(batch);
    return this.env
      .batch(() => {
        for (let i = 0; i < keys.length; i++) {
          const value = values[i]!;
          if (value === null) void this.dbs[dbs[i]!]!.remove(keys[i]!);
          else void this.dbs[dbs[i]!]!.put(keys[i]!, value);
        }
        if (record !== undefined) void feed!.db.put(record.key, record.value);
      })
      .then(() => {
        if (record !== undefined) feed!.committed(record);
      });
  }
}
