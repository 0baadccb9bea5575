/**
 * Reading the commit feed (commit-feed.ts): everything committed after a position, in commit order, and a way to
 * wait for the next commit without polling. What a reader remembers is a position (a number); reading after it
 * again, after a restart too, continues exactly where it stopped.
 */
import type { TranscriptEvent } from '@agentgate/core';
import {
  decodeEvent,
  eventKey,
  hasExternalIoData,
  storedEventHeader,
  type CheckpointRecord,
} from './event-codec.js';
import { feedKey, lastFeedPosition, parseFeedRecord, type FeedWriter } from './commit-feed.js';
import { readFeedState } from './feed-backfill.js';
import type { StoreDatabases } from './store-databases.js';
import { parseJson } from './stored-records.js';

export interface FeedReadOptions {
  /** Stop adding commits once this many events were read; a commit is never split (default 1000). */
  readonly limit?: number;
  /** Read io events' bytes into `data` (default: not read). */
  readonly ioData?: boolean;
}

/** One commit of a read. */
export interface FeedCommit {
  readonly position: number;
  /** when the commit started, ms since the epoch */
  readonly ts: number;
  readonly events: number;
  readonly checkpoints: number;
  /** sessions the commit removed (pruned) */
  readonly removed: number;
  /** a record of the one-off backfill of events stored before the feed existed */
  readonly backfill?: true;
}

export interface FeedEvent {
  /** the commit that stored it */
  readonly position: number;
  readonly session: string;
  readonly seq: number;
  /** '' (and ts 0) for a stored value that is not an event: verify reports it */
  readonly type: string;
  readonly ts: number;
  /** the exact stored JSON: what its hash covers, followed by the hash (docs/transcript.md) */
  readonly stored: string;
  /** an io event's bytes, when asked for (`ioData`) and kept outside the event's JSON */
  readonly data: Buffer | undefined;
  /** the parsed event (parsed on first use), without io bytes */
  readonly event: TranscriptEvent;
}

export interface FeedCheckpoint extends CheckpointRecord {
  readonly position: number;
}

/** A session a commit removed from the store (prune.ts): every event, checkpoint and summary of it. */
export interface FeedRemoval {
  readonly position: number;
  readonly session: string;
}

export interface FeedBatch {
  /** The last position read, or `after` when nothing was committed since: the next read's `after`. */
  readonly position: number;
  readonly commits: readonly FeedCommit[];
  /** in commit order; within a commit, each session's events in seq order */
  readonly events: readonly FeedEvent[];
  readonly checkpoints: readonly FeedCheckpoint[];
  /** in commit order */
  readonly removed: readonly FeedRemoval[];
}

/** Commits in a range of positions, counted from the feed's records alone. */
export interface FeedSpan {
  readonly commits: number;
  /** events the commits stored (pruned ones included) */
  readonly events: number;
  /** when the first commit of the span started, ms since the epoch; undefined for an empty span */
  readonly firstTs: number | undefined;
}

export interface CommitFeed {
  /**
   * Identifies the store: made when its feed began; a different value means a different store (one restored or
   * replaced), whose positions mean other commits.
   */
  readonly storeId: string | undefined;
  /** The position of the last commit in the feed, 0 before the first. */
  head(): number;
  /**
   * Commits after `after`, in commit order: whole commits, at least one when there is one, and no more once
   * `limit` events have been read. Events removed from the store since (pruned) are left out; the commit that
   * removed them names their sessions (`removed`).
   */
  read(after: number, options?: FeedReadOptions): FeedBatch;
  /** Commits after `after` up to `upTo` (default: the head), without reading any event: how far a reader lags. */
  span(after: number, upTo?: number): FeedSpan;
  /** Called after each commit of this process that added to the feed, with its position, once it is readable. */
  onCommit(listener: (position: number) => void): () => void;
  /**
   * Resolves with the head once it is past `after`: at once when it already is, else after the next commit (of
   * this process; commits of another process writing the store are noticed within a second). Rejects when
   * `signal` aborts.
   */
  waitForCommit(after: number, signal?: AbortSignal): Promise<number>;
}

/** How often a reader without a writer in its process (a read-only store) looks for new commits. */
const pollMs = 1000;

class StoredFeedEvent implements FeedEvent {
  private parsed: TranscriptEvent | undefined;

  constructor(
    readonly position: number,
    readonly session: string,
    readonly seq: number,
    readonly type: string,
    readonly ts: number,
    readonly stored: string,
    readonly data: Buffer | undefined,
  ) {}

  get event(): TranscriptEvent {
    return (this.parsed ??= decodeEvent(this.stored));
  }
}

export class StoreFeed implements CommitFeed {
  constructor(
    private readonly dbs: StoreDatabases,
    /** the write side, in the process that writes the store */
    private readonly writer: FeedWriter | undefined,
  ) {}

  get storeId(): string | undefined {
    return readFeedState(this.dbs)?.storeId;
  }

  head(): number {
    if (this.writer !== undefined) return this.writer.position;
    return this.dbs.feed === undefined ? 0 : lastFeedPosition(this.dbs.feed);
  }

  read(after: number, options: FeedReadOptions = {}): FeedBatch {
    const limit = options.limit ?? 1000;
    const commits: FeedCommit[] = [];
    const events: FeedEvent[] = [];
    const checkpoints: FeedCheckpoint[] = [];
    const removed: FeedRemoval[] = [];
    let position = after;
    const feed = this.dbs.feed;
    if (feed === undefined) return { position, commits, events, checkpoints, removed };
    for (const { key, value } of feed.getRange({ start: feedKey(after + 1) })) {
      if (events.length >= limit) break;
      const at = Number(key);
      const record = parseFeedRecord(value);
      position = at;
      if (record === undefined) continue; // not written by agentgate: nothing to read
      const before = events.length;
      for (const [session, first, last] of record.events)
        this.readEvents(at, session, first, last, options, events);
      for (const [session, seq] of record.checkpoints) {
        const stored = this.dbs.checkpoints.get(eventKey(session, seq));
        const checkpoint = stored === undefined ? undefined : parseJson<CheckpointRecord>(stored);
        if (checkpoint !== undefined) checkpoints.push({ ...checkpoint, position: at });
      }
      for (const session of record.removed ?? [])
        if (typeof session === 'string') removed.push({ position: at, session });
      commits.push({
        position: at,
        ts: record.ts,
        events: events.length - before,
        checkpoints: record.checkpoints.length,
        removed: record.removed?.length ?? 0,
        ...(record.backfill === true ? { backfill: true as const } : {}),
      });
    }
    return { position, commits, events, checkpoints, removed };
  }

  span(after: number, upTo?: number): FeedSpan {
    let commits = 0;
    let events = 0;
    let firstTs: number | undefined;
    const feed = this.dbs.feed;
    if (feed === undefined) return { commits, events, firstTs };
    const end = upTo === undefined ? undefined : feedKey(upTo + 1);
    for (const { value } of feed.getRange({
      start: feedKey(after + 1),
      ...(end === undefined ? {} : { end }),
    })) {
      const record = parseFeedRecord(value);
      if (record === undefined) continue;
      commits++;
      firstTs ??= record.ts;
      for (const [, first, last] of record.events) events += last - first + 1;
    }
    return { commits, events, firstTs };
  }

  onCommit(listener: (position: number) => void): () => void {
    if (this.writer === undefined) return () => undefined;
    return this.writer.subscribe(listener);
  }

  waitForCommit(after: number, signal?: AbortSignal): Promise<number> {
    const now = this.head();
    if (now > after) return Promise.resolve(now);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<number>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        unsubscribe();
        if (timer !== undefined) clearInterval(timer);
        signal?.removeEventListener('abort', aborted);
      };
      const aborted = (): void => {
        done();
        reject(signal?.reason);
      };
      const check = (): void => {
        const head = this.head();
        if (head > after) {
          done();
          resolve(head);
        }
      };
      const unsubscribe = this.onCommit(check);
      if (this.writer === undefined) {
        timer = setInterval(check, pollMs);
        timer.unref();
      }
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  private readEvents(
    position: number,
    session: string,
    first: number,
    last: number,
    options: FeedReadOptions,
    out: FeedEvent[],
  ): void {
    const range = { start: eventKey(session, first), end: eventKey(session, last + 1) };
    for (const { key, value } of this.dbs.events.getRange(range)) {
      const seq = Number(key.slice(key.length - 12));
      const header = storedEventHeader(value);
      let data: Buffer | undefined;
      if (options.ioData === true && header?.type === 'io') {
        const event = decodeEvent(value);
        if (hasExternalIoData(event)) data = this.dbs.ioData?.getBinary(key);
      }
      out.push(new StoredFeedEvent(position, session, seq, header?.type ?? '', header?.ts ?? 0, value, data));
    }
  }
}
