/**
 * The session index: what the console's sessions page, search and overview read, kept off the recording path.
 *
 * An indexer in the gateway process tails the store's commit feed: after a commit it waits `settleMs` for more, reads
 * up to `stepEvents` events, indexes them in one transaction of the index's own environment (index-updater.ts),
 * yields to the event loop, and goes on until it has caught up. A step costs the gateway's main thread the feed
 * read and the parsing of the few event types indexed; the index's writes happen on lmdb-js's writer thread.
 *
 * The index is a cache: it is rebuilt from the feed when it is of another version, belongs to another store, or is
 * ahead of the feed (a store restored from a backup), or when asked (`rebuild`). Nothing verifies against it.
 */
import { extname, join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '@agentgate/core';
import type { CommitFeed } from '../feed-reader.js';
import type { StartRecord } from '../stored-records.js';
import {
  indexVersion,
  openIndexDatabases,
  removeIndex,
  type IndexDatabases,
  type IndexState,
} from './index-databases.js';
import {
  IndexQuery,
  type IndexFilter,
  type IndexPage,
  type IndexPageRequest,
  type IndexedSession,
} from './index-query.js';
import { IndexUpdater, initialState } from './index-updater.js';

export interface SessionIndexOptions {
  /** the store's commit feed, and its start records (for sessions whose `session.start` the feed does not hold) */
  readonly store: {
    readonly feed: CommitFeed;
    getSession(id: string): StartRecord | undefined;
  };
  /** the index's directory (created; nothing else may live in it) */
  readonly path: string;
  readonly log?: Logger;
  /** discard the index and build it again from the feed */
  readonly rebuild?: boolean;
  /** feed events per indexing step (default 2000) */
  readonly stepEvents?: number;
  /** after a commit, wait this long for more before indexing (default 50 ms) */
  readonly settleMs?: number;
  /** after a failed step, try again after this long (default 5 s) */
  readonly retryMs?: number;
}

export interface ActivityBucket {
  /** start of the bucket, ms since the epoch */
  readonly start: number;
  commands: number;
  /** denied decisions and approvals rejected or expired */
  denials: number;
  /** approval requests */
  approvals: number;
}

export interface SessionIndexStatus {
  /** feed position indexed */
  readonly position: number;
  /** feed position committed */
  readonly head: number;
}

export interface SessionIndex {
  list(filter: IndexFilter, page: IndexPageRequest): IndexPage;
  /** Sessions with a command holding every term of `text` (text-search.ts), filtered and paged like `list`. */
  search(text: string, filter: IndexFilter, page: IndexPageRequest): IndexPage;
  get(id: string): IndexedSession | undefined;
  /** Commands, denials and approval requests in `buckets` buckets of `bucketMs` from `from` (minute granularity). */
  activity(from: number, bucketMs: number, buckets: number): ActivityBucket[];
  status(): SessionIndexStatus;
  /** Resolves true once everything committed when it was called is indexed; false after `timeoutMs`. */
  caughtUp(timeoutMs?: number): Promise<boolean>;
  /** Stop indexing and close the index (before the store closes). */
  close(): Promise<void>;
}

export async function openSessionIndex(options: SessionIndexOptions): Promise<SessionIndex> {
  const log = options.log ?? silentLogger;
  const feed = options.store.feed;
  const storeId = feed.storeId;
  if (storeId === undefined) throw new Error('the transcript store has no commit feed (opened read-only?)');
  if (options.rebuild === true) await removeIndex(options.path);
  let dbs: IndexDatabases;
  let state: IndexState | undefined;
  try {
    dbs = openIndexDatabases(options.path);
    state = dbs.state.get('state');
  } catch (err) {
    // An index that cannot be read is only a cache: start it again.
    log.warn('session index: unreadable; rebuilding it from the transcript', {
      path: options.path,
      err: (err as Error).message,
    });
    await removeIndex(options.path);
    dbs = openIndexDatabases(options.path);
    state = undefined;
  }
  const why =
    state === undefined
      ? undefined
      : state.version !== indexVersion
        ? `it was built by another version (${state.version})`
        : state.storeId !== storeId
          ? 'it belongs to another store'
          : state.position > feed.head()
            ? 'it is ahead of the store (restored from a backup?)'
            : undefined;
  if (why !== undefined) {
    log.warn('session index: rebuilding it from the transcript', { reason: why, path: options.path });
    await dbs.env.close();
    await removeIndex(options.path);
    dbs = openIndexDatabases(options.path);
    state = undefined;
  }
  if (state === undefined) {
    state = initialState(storeId);
    await dbs.env.batch(() => void dbs.state.put('state', state!));
  }
  const index = new LmdbSessionIndex(dbs, state, options, log);
  index.start();
  return index;
}

class LmdbSessionIndex implements SessionIndex {
  private readonly updater: IndexUpdater;
  private readonly query: IndexQuery;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  /** woken after each step */
  private progress: (() => void)[] = [];

  constructor(
    private readonly dbs: IndexDatabases,
    state: IndexState,
    private readonly options: SessionIndexOptions,
    private readonly log: Logger,
  ) {
    this.updater = new IndexUpdater(dbs, state, (id) => options.store.getSession(id), log);
    this.query = new IndexQuery(dbs, (trigram) => this.updater.requestMerge(trigram));
  }

  start(): void {
    const behind = this.options.store.feed.head() - this.updater.position;
    if (behind > 0)
      this.log.info('session index: catching up with the transcript', {
        commits: behind,
        position: this.updater.position,
      });
    this.running = this.run();
  }

  list(filter: IndexFilter, page: IndexPageRequest): IndexPage {
    return this.query.list(filter, page);
  }

  search(text: string, filter: IndexFilter, page: IndexPageRequest): IndexPage {
    return this.query.search(text, filter, page);
  }

  get(id: string): IndexedSession | undefined {
    return this.query.get(id);
  }

  activity(from: number, bucketMs: number, buckets: number): ActivityBucket[] {
    const out: ActivityBucket[] = Array.from({ length: buckets }, (_, i) => ({
      start: from + i * bucketMs,
      commands: 0,
      denials: 0,
      approvals: 0,
    }));
    for (const { key, value } of this.dbs.activity.getRange({
      start: from,
      end: from + buckets * bucketMs,
    })) {
      const bucket = out[Math.floor((key - from) / bucketMs)];
      if (bucket === undefined) continue;
      bucket.commands += value[0];
      bucket.denials += value[1];
      bucket.approvals += value[2];
    }
    return out;
  }

  status(): SessionIndexStatus {
    return { position: this.updater.position, head: this.options.store.feed.head() };
  }

  async caughtUp(timeoutMs = 10_000): Promise<boolean> {
    const target = this.options.store.feed.head();
    const deadline = Date.now() + timeoutMs;
    while (this.updater.position < target) {
      const left = deadline - Date.now();
      if (left <= 0 || this.stopping.signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.progress.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.running;
    await this.dbs.env.close();
  }

  private async run(): Promise<void> {
    const { feed } = this.options.store;
    const signal = this.stopping.signal;
    const stepEvents = this.options.stepEvents ?? 2000;
    const settleMs = this.options.settleMs ?? 50;
    while (!signal.aborted) {
      try {
        if (this.updater.position >= feed.head()) {
          // Caught up: merge what queries found fragmented, then wait for the next commit.
          if ((await this.updater.merge(64)) > 0) continue;
          await feed.waitForCommit(this.updater.position, signal);
          if (settleMs > 0) await sleep(settleMs, undefined, { signal });
          continue;
        }
        await this.updater.apply(feed.read(this.updater.position, { limit: stepEvents }));
        await this.updater.merge(16);
        this.wake();
        await nextTurn();
      } catch (err) {
        if (signal.aborted) break;
        this.log.error('session index: indexing failed; trying again', {
          position: this.updater.position,
          err: (err as Error)?.message ?? String(err),
        });
        await sleep(this.options.retryMs ?? 5000, undefined, { signal }).catch(() => undefined);
      }
    }
    this.wake();
  }

  private wake(): void {
    const waiting = this.progress;
    this.progress = [];
    for (const resolve of waiting) resolve();
  }
}

/**
 * Where the gateway keeps a store's session index: `<store>/session-index` for a store directory, `<store>-index`
 * beside a store file (a `store.path` with an extension).
 */
export function sessionIndexPath(storePath: string): string {
  return extname(storePath) ? `${storePath}-index` : join(storePath, 'session-index');
}
