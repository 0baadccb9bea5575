/**
 * The store's LMDB databases, all append-only:
 * - `events`:      `<session>/<seq>` → stored event (the hashed JSON bytes + hash), see event-codec.ts
 * - `sessions`:    session id → start summary, written with `session.start`
 * - `ends`:        session id → end summary (counts), written with `session.end`
 * - `checkpoints`: `<session>/<seq>` → signed {session, seq, hash}
 * - `meta`:        the recovery probe's scratch key
 * - `iodata`:      `<session>/<seq>` → the raw bytes of that `io` event (binary), whose SHA-256 the event names
 * - `feed`:        commit position (16 digits) → what that commit stored, see commit-feed.ts
 */
import type { Database, RootDatabase } from 'lmdb';
import { dbNames, type StoredValue } from './batch-writer.js';

export interface StoreDatabases {
  readonly env: RootDatabase<string, string>;
  readonly events: Database<string, string>;
  readonly sessions: Database<string, string>;
  readonly ends: Database<string, string>;
  readonly checkpoints: Database<string, string>;
  readonly meta: Database<string, string>;
  /** undefined only when a store written before io bytes moved out of the events is opened read-only */
  readonly ioData: Database<Buffer, string> | undefined;
  /** undefined only when a store written before the commit feed is opened read-only */
  readonly feed: Database<string, string> | undefined;
  /** every database, indexed like dbNames (what batches address) */
  readonly byIndex: readonly Database<StoredValue, string>[];
}

export function openDatabases(env: RootDatabase<string, string>): StoreDatabases {
  const dbOptions = { encoding: 'string' as const, compression: false };
  const events = env.openDB<string, string>('events', dbOptions);
  const sessions = env.openDB<string, string>('sessions', dbOptions);
  const ends = env.openDB<string, string>('ends', dbOptions);
  const checkpoints = env.openDB<string, string>('checkpoints', dbOptions);
  const meta = env.openDB<string, string>('meta', dbOptions);
  // lmdb-js returns no db for a name a read-only environment lacks (a store from before `iodata`).
  const ioData = env.openDB<Buffer, string>('iodata', { encoding: 'binary', compression: false }) as
    Database<Buffer, string> | undefined;
  const feed = env.openDB<string, string>('feed', dbOptions) as Database<string, string> | undefined;
  // A read-only store may lack `iodata` or `feed`: those entries are undefined, and nothing writes through them.
  const byIndex = dbNames.map((name) =>
    name === 'iodata'
      ? ioData
      : name === 'feed'
        ? feed
        : name === 'meta'
          ? meta
          : env.openDB<string, string>(name, dbOptions),
  ) as Database<StoredValue, string>[];
  return { env, events, sessions, ends, checkpoints, meta, ioData, feed, byIndex };
}
