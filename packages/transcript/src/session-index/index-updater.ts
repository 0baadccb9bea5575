/**
 * Indexing one step of the commit feed: what the step's events change (indexed-events.ts), applied to the index's
 * databases in one transaction together with the feed position reached, so the index is always exactly "the feed
 * up to `position`". The indexer is the only writer of the index environment, so it reads what it is about to
 * change outside the transaction.
 */
import type { Logger } from '@agentgate/core';
import type { FeedBatch } from '../feed-reader.js';
import type { StartRecord } from '../stored-records.js';
import {
  indexVersion,
  ordAt,
  trigramKey,
  trigramRange,
  type ActivityCounts,
  type IndexDatabases,
  type IndexState,
  type PostingKey,
  type SessionRow,
} from './index-databases.js';
import { collectChanges, type SessionChanges } from './indexed-events.js';
import { decodePostings, encodePostings, postingCount, sortUnique } from './posting-lists.js';
import { addTrigrams } from './text-search.js';

/** Small posting chunks of one trigram merged once this many have been added. */
const mergeAfterChunks = 16;
/** A merged list at least this long is never merged again. */
const largeList = 4096;
/** Trigrams remembered as posted for open sessions, at most (beyond it they are forgotten: a repeat is harmless). */
const maxRemembered = 2_000_000;

export class IndexUpdater {
  /** trigrams already posted, per open session: a session is posted once per trigram */
  private readonly posted = new Map<number, Set<string>>();
  private remembered = 0;
  /** small chunks added per trigram since the last merge (this process) */
  private readonly smallChunks = new Map<string, number>();
  private readonly toMerge = new Set<string>();

  constructor(
    private readonly dbs: IndexDatabases,
    private state: IndexState,
    /** a session's start record from the store, for sessions whose first indexed event is not `session.start` */
    private readonly startRecord: (id: string) => StartRecord | undefined,
    private readonly log: Logger,
  ) {}

  get position(): number {
    return this.state.position;
  }

  /** Index one read of the feed; resolves once it is committed. */
  async apply(batch: FeedBatch): Promise<void> {
    const changes = collectChanges(batch.events);
    const writes: (() => void)[] = [];
    const counts = new Map<string, { key: [string, string]; delta: number }>();
    const post = (key: PostingKey, on: boolean): void => {
      writes.push(
        on ? () => void this.dbs.postings.put(key, true) : () => void this.dbs.postings.remove(key),
      );
      const countKey = JSON.stringify([key[0], key[1]]);
      const count = counts.get(countKey) ?? { key: [key[0], key[1]], delta: 0 };
      count.delta += on ? 1 : -1;
      counts.set(countKey, count);
    };
    const chunk = this.state.chunk;
    const newTrigrams = new Map<string, number[]>();
    const assigned = new Set<number>();
    // A session pruned in this read is not indexed, whatever of it the read still held.
    const removed = new Set(batch.removed.map((r) => r.session));
    for (const change of changes.sessions.values()) {
      if (removed.has(change.id)) continue;
      const { ord, row, isNew } = this.rowFor(change, assigned);
      const wasDenied = row.denied > 0;
      const hadApprovals = row.approvals > 0;
      const wasOpen = !isNew && row.endedAt === null;
      row.commands += change.commands;
      row.denied += change.denied;
      row.approvals += change.approvals;
      if (change.endedAt !== undefined && row.endedAt === null) {
        row.endedAt = change.endedAt;
        if (change.endReason !== undefined) row.endReason = change.endReason;
      }
      writes.push(() => void this.dbs.rows.put(ord, row));
      if (isNew) {
        writes.push(() => void this.dbs.ids.put(row.id, ord));
        post(['identity', row.identity, ord], true);
        post(['protocol', row.protocol, ord], true);
        post(['listener', row.listener, ord], true);
        if (row.endedAt === null) post(['open', '', ord], true);
      } else if (wasOpen && row.endedAt !== null) post(['open', '', ord], false);
      if (!wasDenied && row.denied > 0) post(['denied', '', ord], true);
      if (!hadApprovals && row.approvals > 0) post(['approvals', '', ord], true);
      if (change.lines.length > 0) {
        const text = change.lines.join('\n');
        writes.push(() => void this.dbs.texts.put([ord, chunk], text));
        this.collectTrigrams(ord, change.lines, newTrigrams);
      }
      if (row.endedAt !== null) this.forget(ord);
    }
    for (const id of removed) this.remove(id, writes, post);
    for (const { key, delta } of counts.values()) {
      if (delta === 0) continue;
      const total = (this.dbs.counts.get(key) ?? 0) + delta;
      writes.push(() => void this.dbs.counts.put(key, total));
    }
    for (const [minute, add] of changes.activity) {
      const now = this.dbs.activity.get(minute) ?? [0, 0, 0];
      const next: ActivityCounts = [now[0] + add[0], now[1] + add[1], now[2] + add[2]];
      writes.push(() => void this.dbs.activity.put(minute, next));
    }
    for (const [trigram, ords] of newTrigrams) {
      const encoded = encodePostings(sortUnique(ords));
      writes.push(() => void this.dbs.trigrams.put(trigramKey(trigram, 0, chunk), encoded));
      const small = (this.smallChunks.get(trigram) ?? 0) + 1;
      this.smallChunks.set(trigram, small);
      if (small >= mergeAfterChunks) this.toMerge.add(trigram);
    }
    const next: IndexState = { ...this.state, position: batch.position, chunk: chunk + 1 };
    await this.commit(writes, next);
  }

  /** Merge the small posting chunks of up to `limit` trigrams that have collected many (one transaction). */
  async merge(limit: number): Promise<number> {
    if (this.toMerge.size === 0) return 0;
    const writes: (() => void)[] = [];
    let chunk = this.state.chunk;
    let merged = 0;
    for (const trigram of this.toMerge) {
      if (merged++ === limit) break;
      this.toMerge.delete(trigram);
      this.smallChunks.delete(trigram);
      const ords: number[] = [];
      const keys: Buffer[] = [];
      for (const { key, value } of this.dbs.trigrams.getRange(trigramRange(trigram, 0))) {
        keys.push(key);
        decodePostings(value, ords);
      }
      if (keys.length < 2) continue;
      const encoded = encodePostings(sortUnique(ords));
      const key = trigramKey(trigram, postingCount(encoded) >= largeList ? 1 : 0, chunk++);
      writes.push(() => {
        for (const old of keys) void this.dbs.trigrams.remove(old);
        void this.dbs.trigrams.put(key, encoded);
      });
    }
    await this.commit(writes, { ...this.state, chunk });
    return merged;
  }

  /** Trigrams that a query found in many small chunks: merged at the next opportunity. */
  requestMerge(trigram: string): void {
    this.toMerge.add(trigram);
  }

  private async commit(writes: (() => void)[], next: IndexState): Promise<void> {
    try {
      await this.dbs.env.batch(() => {
        for (const write of writes) write();
        void this.dbs.state.put('state', next);
      });
    } catch (err) {
      // lmdb-js reports the cause of a failed commit in a separate promise, which must be handled.
      (err as { commitError?: Promise<unknown> }).commitError?.catch(() => undefined);
      throw err;
    }
    this.state = next;
  }

  /**
   * Take a pruned session out of the rows, ids, posting lists and texts. Its ord stays in the trigram lists, which
   * only name candidates: a query drops an ord without a row, and checks the texts of any session that takes the
   * ord later.
   */
  private remove(id: string, writes: (() => void)[], post: (key: PostingKey, on: boolean) => void): void {
    const ord = this.dbs.ids.get(id);
    if (ord === undefined) return;
    writes.push(() => void this.dbs.ids.remove(id));
    const row = this.dbs.rows.get(ord);
    if (row?.id === id) {
      const texts = [...this.dbs.texts.getKeys({ start: [ord], end: [ord + 1] })];
      writes.push(() => {
        void this.dbs.rows.remove(ord);
        for (const key of texts) void this.dbs.texts.remove(key);
      });
      post(['identity', row.identity, ord], false);
      post(['protocol', row.protocol, ord], false);
      post(['listener', row.listener, ord], false);
      if (row.endedAt === null) post(['open', '', ord], false);
      if (row.denied > 0) post(['denied', '', ord], false);
      if (row.approvals > 0) post(['approvals', '', ord], false);
    }
    this.forget(ord);
  }

  /** The session's ord and row: as indexed, or new (its start from `session.start`, else the store's record). */
  private rowFor(
    change: SessionChanges,
    assigned: Set<number>,
  ): { ord: number; row: SessionRow; isNew: boolean } {
    const known = this.dbs.ids.get(change.id);
    if (known !== undefined) {
      const row = this.dbs.rows.get(known);
      if (row !== undefined) return { ord: known, row: { ...row }, isNew: false };
    }
    const start = change.start ?? this.startRecord(change.id);
    if (start === undefined)
      this.log.warn('session index: a session without a start record', { session: change.id });
    const startedAt = start?.startedAt ?? change.firstTs;
    const ord = known ?? this.freeOrd(startedAt, assigned);
    assigned.add(ord);
    const row: SessionRow = {
      id: change.id,
      listener: start?.listener ?? '',
      protocol: start?.protocol ?? '',
      identity: start?.identity ?? '',
      groups: start?.groups ?? [],
      client: start?.client ?? {},
      startedAt,
      endedAt: null,
      commands: 0,
      denied: 0,
      approvals: 0,
    };
    return { ord, row, isNew: known === undefined };
  }

  /** The first ord of `startedAt`'s millisecond not taken (the next millisecond's after 256 sessions in one). */
  private freeOrd(startedAt: number, assigned: Set<number>): number {
    for (let ord = ordAt(startedAt); ; ord++) {
      if (assigned.has(ord)) continue;
      if (!this.dbs.rows.doesExist(ord)) return ord;
    }
  }

  private collectTrigrams(ord: number, lines: readonly string[], into: Map<string, number[]>): void {
    let posted = this.posted.get(ord);
    if (posted === undefined) this.posted.set(ord, (posted = new Set()));
    const found = new Set<string>();
    for (const line of lines) addTrigrams(line, found);
    for (const trigram of found) {
      if (posted.has(trigram)) continue;
      posted.add(trigram);
      this.remembered++;
      const ords = into.get(trigram);
      if (ords === undefined) into.set(trigram, [ord]);
      else ords.push(ord);
    }
    if (this.remembered > maxRemembered) {
      this.posted.clear();
      this.remembered = 0;
    }
  }

  private forget(ord: number): void {
    const posted = this.posted.get(ord);
    if (posted === undefined) return;
    this.remembered -= posted.size;
    this.posted.delete(ord);
  }
}

export function initialState(storeId: string): IndexState {
  return { version: indexVersion, storeId, position: 0, chunk: 1 };
}
