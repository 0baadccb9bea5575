/**
 * The commit feed's state, and the one-off backfill of stores written before the feed existed.
 *
 * `meta` key `feed` holds `{version, storeId, backfill}`. A new store starts its feed with its first commit. A store
 * that already holds events gets, when a writer first opens it, records for those events: per session in key order
 * (`[session, firstSeq, lastSeq]` read from the first and last event keys, and each checkpoint), at most 2,000
 * events per record (a longer session spans records), 2,000 sessions per transaction, with the progress (`backfill: {after: <last session done>}`) in the same transaction,
 * so a crash part-way resumes where it stopped. It runs before the store writes anything else, so these records
 * come first and the feed holds every event once, older ones before newer ones.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '@agentgate/core';
import { feedKey, lastFeedPosition } from './commit-feed.js';
import { sessionKeyRange } from './event-codec.js';
import type { StoreDatabases } from './store-databases.js';
import { parseJson } from './stored-records.js';

export const feedVersion = 1;
const stateKey = 'feed';

export interface FeedState {
  readonly version: number;
  /** made when the feed began: tells a copy of this store from another store */
  readonly storeId: string;
  /** `done`, or the last session (key order) the backfill covered so far */
  readonly backfill: 'done' | { readonly after: string };
}

/** Sessions per backfill transaction. */
const defaultSessionsPerTransaction = 2000;
/**
 * Events per backfill record, at most: a reader reads whole commits, so a record is the most it may have to read at
 * once (the session index reads 2,000 events per step); a longer session is split over several records.
 */
const defaultEventsPerRecord = 2000;

export function readFeedState(dbs: Pick<StoreDatabases, 'meta'>): FeedState | undefined {
  const value = dbs.meta.get(stateKey);
  return value === undefined ? undefined : parseJson<FeedState>(value);
}

/** The feed's state of a writable store, starting its feed (and backfilling older events) when it has none. */
export async function prepareFeed(
  dbs: StoreDatabases,
  log: Logger,
  sessionsPerTransaction = defaultSessionsPerTransaction,
  eventsPerRecord = defaultEventsPerRecord,
): Promise<FeedState> {
  const { meta } = dbs;
  const feed = dbs.feed!;
  let state = readFeedState(dbs);
  if (state === undefined) {
    state = { version: feedVersion, storeId: randomUUID(), backfill: isEmpty(dbs) ? 'done' : { after: '' } };
    await dbs.env.batch(() => void meta.put(stateKey, JSON.stringify(state)));
  }
  if (state.backfill === 'done') return state;
  const started = Date.now();
  log.info('transcript: adding the events stored before the commit feed existed to it (once)', {});
  let after = state.backfill.after;
  let position = lastFeedPosition(feed);
  let sessions = 0;
  let events = 0;
  for (let done = false; !done;) {
    const records: string[] = [];
    let ranges: string[] = [];
    let checkpoints: string[] = [];
    let inRecord = 0;
    const closeRecord = (): void => {
      if (ranges.length > 0 || checkpoints.length > 0)
        records.push(
          `{"ts":${Date.now()},"events":[${ranges.join(',')}],"checkpoints":[${checkpoints.join(',')}],"backfill":true}`,
        );
      ranges = [];
      checkpoints = [];
      inRecord = 0;
    };
    let inTransaction = 0;
    done = true;
    for (const id of dbs.sessions.getKeys(after === '' ? {} : { start: after, exclusiveStart: true })) {
      after = id;
      const { start, end } = sessionKeyRange(id);
      const firstKey = first(dbs.events.getKeys({ start, end, limit: 1 }));
      const lastKey = first(dbs.events.getKeys({ start: end, end: start, reverse: true, limit: 1 }));
      if (firstKey !== undefined && lastKey !== undefined) {
        const quoted = JSON.stringify(id);
        const to = seqOf(lastKey);
        for (let from = seqOf(firstKey); from <= to;) {
          const take = Math.min(to - from + 1, eventsPerRecord - inRecord);
          ranges.push('[' + quoted + ',' + from + ',' + (from + take - 1) + ']');
          events += take;
          from += take;
          inRecord += take;
          if (inRecord >= eventsPerRecord && from <= to) closeRecord();
        }
      }
      for (const key of dbs.checkpoints.getKeys({ start, end }))
        checkpoints.push('[' + JSON.stringify(id) + ',' + seqOf(key) + ']');
      if (inRecord >= eventsPerRecord) closeRecord();
      sessions++;
      if (++inTransaction === sessionsPerTransaction) {
        done = false;
        break;
      }
    }
    closeRecord();
    const next: FeedState = { ...state, backfill: done ? 'done' : { after } };
    // A session's records and the progress past it commit together: a crash resumes after a whole session.
    await dbs.env.batch(() => {
      for (const record of records) void feed.put(feedKey(++position), record);
      void meta.put(stateKey, JSON.stringify(next));
    });
    state = next;
    if (!done && sessions % 50_000 === 0)
      log.info('transcript: backfilling the commit feed', { sessions, events });
  }
  log.info('transcript: commit feed backfilled', { sessions, events, ms: Date.now() - started });
  return state;
}

function isEmpty(dbs: StoreDatabases): boolean {
  for (const _ of dbs.events.getKeys({ limit: 1 })) return false;
  return true;
}

function first<T>(items: Iterable<T>): T | undefined {
  for (const item of items) return item;
  return undefined;
}

/** seq of an event or checkpoint key (`<session>/<12 digits>`). */
function seqOf(key: string): number {
  return Number(key.slice(key.length - 12));
}
