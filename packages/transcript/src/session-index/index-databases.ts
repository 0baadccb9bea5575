/**
 * The session index's LMDB environment: its own directory beside the store (never the store's environment, so its
 * writes neither wait for nor share the space reserve of the store's commits), holding
 *
 * - `state`     `state` → {version, storeId, position, chunk}: the feed position indexed so far, in the same
 *               transaction as what it indexed;
 * - `rows`      ord → the session's row (session-order.ts: ords sort by start time);
 * - `ids`       session id → ord;
 * - `postings`  [dimension, value, ord] → true, for `identity`, `protocol`, `listener`, and `denied`, `approvals`,
 *               `open` (value '');
 * - `counts`    [dimension, value] → sessions posted (which posting list is shortest);
 * - `trigrams`  `<trigram>\x01<level><chunk>` (UTF-8 bytes) → posting list of ords (posting-lists.ts); level 0 for
 *               the small lists each indexing step adds, 1 for merged lists of 4096 or more;
 * - `texts`     [ord, chunk] → the normalised command texts a step added to the session, one per line;
 * - `activity`  minute (ms) → [commands, denials, approval requests].
 *
 * It is a cache of what the events say: deleting the directory (or `agentgate serve --reindex`) rebuilds it from the
 * commit feed, and nothing verifies anything against it.
 */
import { rm } from 'node:fs/promises';
import { open, type Database, type RootDatabase } from 'lmdb';

/** Changing how anything is indexed changes this: an index of another version is rebuilt at open. */
export const indexVersion = 1;

export interface IndexState {
  readonly version: number;
  /** the store whose feed this index follows (CommitFeed.storeId) */
  readonly storeId: string;
  /** the feed position indexed so far */
  readonly position: number;
  /** the next chunk number (trigram and text chunks) */
  readonly chunk: number;
}

/** A session as the index keeps it. */
export interface SessionRow {
  id: string;
  listener: string;
  protocol: string;
  identity: string;
  groups: string[];
  client: Record<string, unknown>;
  startedAt: number;
  endedAt: number | null;
  commands: number;
  /** denied decisions and approvals rejected or expired */
  denied: number;
  /** approval requests */
  approvals: number;
  endReason?: string;
}

export type PostingKey = [dimension: string, value: string, ord: number];
export type ActivityCounts = [commands: number, denials: number, approvals: number];

export interface IndexDatabases {
  readonly env: RootDatabase;
  readonly state: Database<IndexState, string>;
  readonly rows: Database<SessionRow, number>;
  readonly ids: Database<number, string>;
  readonly postings: Database<true, PostingKey>;
  readonly counts: Database<number, [string, string]>;
  readonly trigrams: Database<Buffer, Buffer>;
  readonly texts: Database<string, [number, number]>;
  readonly activity: Database<ActivityCounts, number>;
}

export function openIndexDatabases(path: string): IndexDatabases {
  // lmdb-js's event-turn batching leaves a promise unhandled when a commit fails; the index batches itself.
  const env = open({ path, maxDbs: 10, compression: false, eventTurnBatching: false });
  const db = <V, K extends import('lmdb').Key>(name: string, options: object = {}): Database<V, K> =>
    env.openDB<V, K>(name, { compression: false, ...options });
  return {
    env,
    state: db('state'),
    rows: db('rows'),
    ids: db('ids'),
    postings: db('postings'),
    counts: db('counts'),
    trigrams: db('trigrams', { keyEncoding: 'binary', encoding: 'binary' }),
    texts: db('texts', { encoding: 'string' }),
    activity: db('activity'),
  };
}

/** Remove an index's files (its directory holds nothing else). */
export async function removeIndex(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** Ords: per start millisecond, 256 of them; 2^45 ms (the year 3084) × 256 stays below 2^53. */
export const ordsPerMs = 256;

/** The first ord of sessions started at `ms` (ms since the epoch). */
export function ordAt(ms: number): number {
  return Math.max(0, Math.floor(ms)) * ordsPerMs;
}

/** A key of the `trigrams` database. */
export function trigramKey(trigram: string, level: 0 | 1, chunk: number): Buffer {
  return Buffer.from(trigram + '\x01' + level + chunk.toString(36).padStart(10, '0'), 'utf8');
}

/** The key range of every posting list chunk of one trigram, or of those at one level. */
export function trigramRange(trigram: string, level?: 0 | 1): { start: Buffer; end: Buffer } {
  const low = level === undefined ? '\x01' : '\x01' + level;
  const high = level === undefined ? '\x02' : '\x01' + (level + 1);
  return { start: Buffer.from(trigram + low, 'utf8'), end: Buffer.from(trigram + high, 'utf8') };
}

/** The key range of every chunk of every trigram that starts with `prefix` (one or two characters). */
export function trigramPrefixRange(prefix: string): { start: Buffer; end: Buffer } {
  return { start: Buffer.from(prefix, 'utf8'), end: Buffer.from(prefix + '\u{10ffff}', 'utf8') };
}

/** The trigram a key belongs to. */
export function trigramOfKey(key: Buffer): string {
  const text = key.toString('utf8');
  return text.slice(0, text.indexOf('\x01'));
}
