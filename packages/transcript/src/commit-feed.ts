/**
 * The commit feed's stored records, and how the write path adds one to each commit.
 *
 * Every group commit that stores events or checkpoints also stores one record in the `feed` database, in the same
 * LMDB transaction, keyed by its commit number (its *position*, 1, 2, 3, … as 16 digits):
 *
 *   {"ts":<ms>,"events":[["<session>",firstSeq,lastSeq],…],"checkpoints":[["<session>",seq],…]}
 *
 * and, for a commit that removes whole sessions (a part of a prune, prune.ts), `"removed":["<session>",…]`.
 * One put per commit, whatever the number of events it holds: the ranges are read off the batch's keys when the
 * commit starts (no work per append). A commit that fails stores neither its events nor its record, and the next
 * commit takes the same number, so positions have no gaps and the feed names exactly what is on disk.
 * Records written by the one-off backfill of a store older than the feed carry `"backfill":true`
 * (feed-backfill.ts). The reader is feed-reader.ts; the format is documented in docs/transcript.md.
 */
import type { Database } from 'lmdb';
import { dbIndex, type WriteBatch } from './batch-writer.js';
import { eventKeySeqSuffix } from './event-codec.js';
import { parseJson } from './stored-records.js';

/** A feed record as stored. */
export interface FeedRecord {
  /** when the commit started, ms since the epoch */
  readonly ts: number;
  /** `[session, firstSeq, lastSeq]`: that session's events firstSeq…lastSeq, in this order */
  readonly events: readonly (readonly [string, number, number])[];
  /** `[session, seq]` of each checkpoint committed */
  readonly checkpoints: readonly (readonly [string, number])[];
  /** sessions this commit removed from the store, every key of them (prune) */
  readonly removed?: readonly string[];
  /** written by the backfill of events stored before the feed existed */
  readonly backfill?: true;
}

/** The key of position `n`: 16 digits, so keys sort as positions do. */
export function feedKey(position: number): string {
  return String(position).padStart(16, '0');
}

export function parseFeedRecord(value: string): FeedRecord | undefined {
  const record = parseJson<FeedRecord>(value);
  if (record === undefined || !Array.isArray(record.events) || !Array.isArray(record.checkpoints))
    return undefined;
  if (record.removed !== undefined && !Array.isArray(record.removed)) return undefined;
  return record;
}

/** The position of the feed's last record, 0 when it has none. */
export function lastFeedPosition(feed: Database<string, string>): number {
  for (const key of feed.getKeys({ reverse: true, limit: 1 })) return Number(key);
  return 0;
}

/**
 * The ranges a batch commits, as the record's JSON text: events per session in runs of consecutive seqs (a session's
 * events in one batch are consecutive; a run breaks only if they are not), checkpoints one by one, in batch order,
 * and the sessions whose start summary it deletes (a prune removes a session's every key with it).
 */
export function feedRecordText(batch: WriteBatch, ts: number): string | undefined {
  const { dbs, keys, values } = batch;
  // session → flat [first, last, first, last, …] runs; most batches hold a few sessions, each several times over
  let runs: Map<string, number[]> | undefined;
  let checkpoints = '';
  let lastSession = '';
  let lastRuns: number[] | undefined;
  let removed = '';
  for (let i = 0; i < keys.length; i++) {
    const db = dbs[i];
    if (db === dbIndex.sessions) {
      if (values[i] === null) removed += (removed === '' ? '' : ',') + JSON.stringify(keys[i]);
      continue;
    }
    if (db !== dbIndex.events && db !== dbIndex.checkpoints) continue;
    // Only stored values name a committed event (a deletion is not one); events are stored as bytes.
    if (values[i] === null) continue;
    const key = keys[i]!;
    const cut = key.length - eventKeySeqSuffix;
    if (cut <= 0 || key.charCodeAt(cut) !== 0x2f) continue;
    const seq = keySeq(key, cut + 1);
    if (seq < 0) continue;
    if (db === dbIndex.checkpoints) {
      checkpoints += (checkpoints === '' ? '[' : ',[') + JSON.stringify(key.slice(0, cut)) + ',' + seq + ']';
      continue;
    }
    let sessionRuns: number[] | undefined;
    if (lastRuns !== undefined && cut === lastSession.length && key.startsWith(lastSession))
      sessionRuns = lastRuns;
    else {
      lastSession = key.slice(0, cut);
      runs ??= new Map();
      sessionRuns = runs.get(lastSession);
      if (sessionRuns === undefined) runs.set(lastSession, (sessionRuns = []));
      lastRuns = sessionRuns;
    }
    const n = sessionRuns.length;
    if (n > 0 && sessionRuns[n - 1] === seq - 1) sessionRuns[n - 1] = seq;
    else sessionRuns.push(seq, seq);
  }
  if (runs === undefined && checkpoints === '' && removed === '') return undefined;
  let events = '';
  if (runs !== undefined) {
    for (const [session, flat] of runs) {
      const quoted = JSON.stringify(session);
      for (let r = 0; r < flat.length; r += 2)
        events += (events === '' ? '[' : ',[') + quoted + ',' + flat[r] + ',' + flat[r + 1] + ']';
    }
  }
  const removals = removed === '' ? '' : ',"removed":[' + removed + ']';
  return '{"ts":' + ts + ',"events":[' + events + '],"checkpoints":[' + checkpoints + ']' + removals + '}';
}

/** The decimal digits of `key` from `from` on as a number, -1 when there are none or another character. */
function keySeq(key: string, from: number): number {
  if (from >= key.length) return -1;
  let seq = 0;
  for (let i = from; i < key.length; i++) {
    const digit = key.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    seq = seq * 10 + digit;
  }
  return seq;
}

/** A feed record built for a commit that has not settled yet. */
export interface PendingFeedRecord {
  readonly position: number;
  readonly key: string;
  readonly value: string;
}

export type CommitListener = (position: number) => void;

/**
 * The write side: numbers each commit's record, and tells listeners once the commit has settled. Exactly one commit
 * is in flight at a time (group-commit.ts), so `head + 1` is always the next number.
 */
export class FeedWriter {
  private readonly listeners = new Set<CommitListener>();

  constructor(
    readonly db: Database<string, string>,
    /** the position of the last committed record */
    private head: number,
    private readonly onListenerError: (err: unknown) => void,
  ) {}

  get position(): number {
    return this.head;
  }

  /** The record for a batch about to commit; undefined when it holds no event or checkpoint and removes nothing. */
  recordFor(batch: WriteBatch): PendingFeedRecord | undefined {
    const value = feedRecordText(batch, Date.now());
    if (value === undefined) return undefined;
    const position = this.head + 1;
    return { position, key: feedKey(position), value };
  }

  /** The record's commit succeeded: it is the head, and listeners learn of it. */
  committed(record: PendingFeedRecord): void {
    this.head = record.position;
    for (const listener of this.listeners) {
      try {
        listener(record.position);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Commits after `position` are not on disk after all (batch-writer.ts): the next record takes `position + 1`. */
  rewind(position: number): void {
    this.head = Math.min(this.head, position);
  }

  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
