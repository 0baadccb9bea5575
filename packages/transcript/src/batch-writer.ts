/**
 * How group-commit batches reach LMDB: one lmdb-js batch transaction per batch, on this thread (a worker-thread
 * writer cost throughput and saved nothing measurable: docs/performance.md, "Transcript store").
 */
import { IF_EXISTS, type Database, type RootDatabase } from 'lmdb';
import { feedKey, lastFeedPosition, type FeedWriter, type PendingFeedRecord } from './commit-feed.js';

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

interface KeptCommit {
  readonly batch: WriteBatch;
  readonly record: PendingFeedRecord | undefined;
  /** the feed position this commit followed (its own, less one, when it has a record) */
  readonly after: number;
}

export interface BatchWriterHooks {
  /** told how many commits were written again after LMDB had lost them */
  recommitted?(commits: number): void;
  /**
   * A committed batch is no longer kept for a re-commit: its io slabs may be reused. Until then they must not be,
   * so a re-commit writes the bytes the chain hashed.
   */
  letGo?(batch: WriteBatch): void;
}

export class BatchWriter {
  /**
   * The last commit, kept after it settles for writing it again when LMDB turns out to have lost it (commit). One
   * such loss takes at most the latest commit (the writer builds on the meta page of the transaction id it finds,
   * one of the last two), and the next commit finds it; a commit without a feed record (the key history written
   * at start) is not checked.
   */
  private last: KeptCommit | undefined;

  constructor(
    private readonly env: RootDatabase<string, string>,
    /** indexed like dbNames */
    private readonly dbs: readonly Database<StoredValue, string>[],
    /** adds each commit's record to the commit feed, in the same transaction (commit-feed.ts) */
    private readonly feed?: FeedWriter,
    private readonly hooks: BatchWriterHooks = {},
  ) {}

  /** Whether a committed batch is kept for a re-commit (then `letGo` tells when it no longer is). */
  holds(batch: WriteBatch): boolean {
    return this.last?.batch === batch;
  }

  /**
   * Write the batch as one transaction; rejects when it did not commit (then nothing of it is written), with
   * lmdb-js's error as is (its cause follows in `err.commitError`, see the store's onWriteError).
   *
   * With a commit feed, each transaction is written only if the snapshot it builds on holds the previous commit's
   * feed record. lmdb-js's LMDB lacks upstream's fix ITS#9496: a process opening the store (any `agentgate`
   * reader) stores the transaction id it read into the shared lock region, and when this process committed
   * meanwhile, its next transaction builds on the snapshot before that commit, which is then lost. The condition
   * refuses such a transaction; the commit missing from the snapshot is written again with it, or, when an older one
   * is missing too (never seen: one loss takes at most the latest commit), the commit fails as on a write error
   * (recording stops and resumes with a gap notice).
   */
  async commit(batch: WriteBatch): Promise<void> {
    const feed = this.feed;
    if (feed === undefined) {
      await this.write([batch], [], undefined);
      return;
    }
    const record = feed.recordFor(batch);
    const after = feed.position;
    const applied = await this.write([batch], record ? [record] : [], after);
    if (!applied) await this.recommit(batch, record);
    this.keep({ batch, record, after });
    if (record !== undefined) feed.committed(record);
  }

  /** The write, conditional on feed record `after` (none when 0); resolves false when the condition failed. */
  private write(
    batches: readonly WriteBatch[],
    records: readonly PendingFeedRecord[],
    after: number | undefined,
  ): Promise<boolean> {
    // lmdb-js encodes the puts here and applies them on its writer thread, as one transaction (README, batch).
    // With encoding 'string' there is no encoder: a string is stored as its UTF-8 (write.js), a Buffer as its
    // bytes, as in the 'binary' db.
    const puts = (): void => {
      for (const { dbs, keys, values } of batches) {
        for (let i = 0; i < keys.length; i++) {
          const value = values[i]!;
          if (value === null) void this.dbs[dbs[i]!]!.remove(keys[i]!);
          else void this.dbs[dbs[i]!]!.put(keys[i]!, value);
        }
      }
      for (const record of records) void this.feed!.db.put(record.key, record.value);
    };
    const written =
      after === undefined || after === 0
        ? this.env.batch(puts)
        : this.feed!.db.ifVersion(feedKey(after), IF_EXISTS, puts);
    return written.then((applied) => applied !== false);
  }

  /**
   * The previous commit is not in the snapshot LMDB builds on: write it again, with this one, in one transaction.
   * The snapshot read here is the one the next transaction builds on (both start from the lock region's
   * transaction id).
   */
  private async recommit(batch: WriteBatch, record: PendingFeedRecord | undefined): Promise<void> {
    const feed = this.feed!;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.env.resetReadTxn();
      const surviving = lastFeedPosition(feed.db);
      const last = this.last;
      const lost =
        last !== undefined &&
        (last.record !== undefined ? last.record.position > surviving : last.after >= surviving)
          ? last
          : undefined;
      const firstLost = lost?.record?.position ?? feed.position + 1;
      if (firstLost > surviving + 1) {
        const newest = feed.position;
        // What follows continues from what is on disk: the feed from its last record, sessions from their last
        // committed events (the store resumes them with a gap notice).
        feed.rewind(surviving);
        this.letGoOfLast();
        throw new Error(
          `commits ${surviving + 1}..${newest} were lost by LMDB (a process opened the store while it ` +
            'committed) and are no longer held to write again',
        );
      }
      const records = [lost?.record, record].filter((r): r is PendingFeedRecord => r !== undefined);
      const batches = lost ? [lost.batch, batch] : [batch];
      if (await this.write(batches, records, surviving)) {
        if (lost) this.hooks.recommitted?.(1);
        return;
      }
    }
    throw new Error('the store keeps building on a snapshot without its last commit');
  }

  private keep(commit: KeptCommit): void {
    this.letGoOfLast();
    this.last = commit;
  }

  private letGoOfLast(): void {
    if (this.last !== undefined) this.hooks.letGo?.(this.last.batch);
    this.last = undefined;
  }
}
