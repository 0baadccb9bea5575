/**
 * The LMDB transcript store: one environment (store-databases.ts), written by the write path (store-writer.ts,
 * commit-pipeline.ts, checkpointer.ts), read by store-reader.ts, and repaired after a crash by crash-recovery.ts.
 */
import { open, type RootDatabase } from 'lmdb';
import { existsSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import {
  AgentgateError,
  silentLogger,
  type Logger,
  type Redactor,
  type AdminSessionInfo,
  type SessionInfo,
  type SessionStartDetail,
  type SessionRecorder,
  type Signer,
  type TranscriptEvent,
  type TranscriptWriter,
} from '@agentgate/core';
import { BatchWriter, dbIndex } from './batch-writer.js';
import { FeedWriter, lastFeedPosition } from './commit-feed.js';
import { recoverInterruptedSessions } from './crash-recovery.js';
import { missingPagesBytes } from './data-file-length.js';
import type { CheckpointRecord } from './event-codec.js';
import { prepareFeed } from './feed-backfill.js';
import { StoreFeed, type CommitFeed } from './feed-reader.js';
import { readKeyHistory, unrecordedKeys, type RecordedKey } from './key-history.js';
import { pruneSessions, type PruneOptions, type PruneOutcome } from './prune.js';
import { SpaceReserve, type LmdbSpaceStats } from './space-reserve.js';
import { acquireStoreLock, type StoreLock } from './store-lock.js';
import { verifyWholeStore, type StoreVerifyReport } from './store-verification.js';
import { openDatabases, type StoreDatabases } from './store-databases.js';
import { StoreReader, type SessionFilter, type SessionSummary } from './store-reader.js';
import { StoreWriter, type StoreHealth, type TranscriptStoreHooks } from './store-writer.js';

export { isDeniedDecision } from './stored-records.js';

export type { SessionFilter, SessionSummary } from './store-reader.js';
export type { StoreHealth, TranscriptStoreHooks } from './store-writer.js';

export interface TranscriptStoreOptions {
  /** LMDB environment directory; created if missing (unless readOnly). */
  path: string;
  failMode: 'closed' | 'open';
  checkpointIntervalMs: number;
  signer: Signer;
  readOnly?: boolean;
  /** Initial LMDB map size. lmdb-js grows the map on demand, so this is not a size limit. */
  mapSizeBytes?: number;
  log?: Logger;
  hooks?: TranscriptStoreHooks;
  /** After a failed commit, try a write this often (ms) and resume recording when it succeeds. Default 1000. */
  recoveryProbeMs?: number;
  /** Applied to what sessions record (event bodies and stream bytes); none when absent. */
  redactor?: Redactor;
  /**
   * failMode closed: disk space kept allocated beyond the data in use, which the commits carrying forwarded
   * commands are admitted into (docs/transcript.md, "Space reserve"). Default 64 MiB.
   */
  reserveBytes?: number;
  /**
   * Least time between the starts of two commits that nothing waits for (ms): statements issued one after another
   * share a transaction instead of each few starting one. Default 10.
   */
  commitWindowMs?: number;
}

export const defaultReserveBytes = 64 << 20;
export const defaultCommitWindowMs = 10;

export interface TranscriptStore extends TranscriptWriter {
  readonly health: StoreHealth;
  /** Flush pending io, wait for pending checkpoint signatures and for every queued write to be on disk. */
  flush(): Promise<void>;
  /** Flush and close. The gateway ends its sessions first; sessions still open stay unended (see recoverInterrupted). */
  close(): Promise<void>;
  listSessions(filter?: SessionFilter): SessionSummary[];
  getSession(id: string): SessionSummary | undefined;
  /** A session's events in seq order, read lazily from a snapshot (committed events only). */
  events(sessionId: string): Iterable<TranscriptEvent>;
  /** A session's signed checkpoints in seq order. */
  checkpoints(sessionId: string): Iterable<CheckpointRecord>;
  /** Every chain, checkpoint and prune record, signatures checked with the signer's keys. */
  verify(): Promise<StoreVerifyReport>;
  /** End sessions a crash left open; returns how many. The gateway calls it at start. */
  recoverInterrupted(): Promise<number>;
  /** Remove whole, ended sessions a backup or export holds, with a signed record of it (prune.ts). */
  prune(opts: PruneOptions): Promise<PruneOutcome>;
  /** The public keys recorded in the store (key-history.ts). */
  keyHistory(): RecordedKey[];
  /** Everything committed, in commit order, from any remembered position (feed-reader.ts, docs/transcript.md). */
  readonly feed: CommitFeed;
}

/** Logged when the store wrote commits again that LMDB had lost (batch-writer.ts; docs/cli.md lists it). */
const recommittedMessage =
  'transcript: commits LMDB had lost to a process opening the store were written again';

export async function openTranscriptStore(opts: TranscriptStoreOptions): Promise<TranscriptStore> {
  if (opts.readOnly && !existsSync(opts.path)) {
    throw new AgentgateError('NOT_FOUND', `transcript store ${opts.path} does not exist`);
  }
  // One writing process per store (store-lock.ts).
  const lock = opts.readOnly ? undefined : await acquireStoreLock(opts.path);
  let env: RootDatabase<string, string>;
  try {
    env = open<string, string>({
      path: opts.path,
      encoding: 'string',
      maxDbs: 8,
      readOnly: opts.readOnly ?? false,
      compression: false,
      // lmdb-js's event-turn batching leaves an internal promise unhandled when a commit fails, which would crash
      // the process exactly when the disk fills; we batch ourselves (group-commit.ts), so it is not needed.
      eventTurnBatching: false,
      ...(opts.mapSizeBytes !== undefined ? { mapSize: opts.mapSizeBytes } : {}),
    });
  } catch (err) {
    await lock?.release();
    throw new AgentgateError(
      'RECORDING_FAILED',
      `cannot open transcript store ${opts.path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  // A store restored from a copy cut short would fault on its missing pages (SIGBUS) at the first read.
  const missing = await missingPagesBytes(env, extname(opts.path) ? opts.path : join(opts.path, 'data.mdb'));
  if (missing > 0) {
    await env.close();
    await lock?.release();
    throw new AgentgateError(
      'RECORDING_FAILED',
      `transcript store ${opts.path} is incomplete: its data file lacks ${missing} bytes of its pages (restored from a copy cut short?)`,
    );
  }
  const dbs = openDatabases(env);
  const log = opts.log ?? silentLogger;
  let feed: FeedWriter | undefined;
  if (!opts.readOnly) {
    try {
      await prepareFeed(dbs, log);
      feed = new FeedWriter(dbs.feed!, lastFeedPosition(dbs.feed!), (err) =>
        log.error('transcript: a commit feed listener failed', {
          err: (err as Error)?.message ?? String(err),
        }),
      );
    } catch (err) {
      await env.close();
      await lock?.release();
      throw new AgentgateError(
        'RECORDING_FAILED',
        `cannot start the commit feed of transcript store ${opts.path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  // The reserve reports `full` to the store made after it.
  const fullChanged = { report: (): void => undefined };
  let reserve: SpaceReserve | undefined;
  if (opts.failMode === 'closed' && !opts.readOnly) {
    try {
      reserve = await SpaceReserve.open({
        // lmdb-js keeps the data in `<path>/data.mdb`, or in `path` itself when it has an extension
        file: extname(opts.path) ? opts.path : join(opts.path, 'data.mdb'),
        reserveBytes: opts.reserveBytes ?? defaultReserveBytes,
        stats: lmdbSpaceStats(dbs),
        log,
        retryMs: opts.recoveryProbeMs ?? 1000,
        onFullChanged: () => fullChanged.report(),
      });
    } catch (err) {
      await env.close();
      await lock?.release();
      throw new AgentgateError(
        'RECORDING_FAILED',
        `cannot reserve space for transcript store ${opts.path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  const store = new LmdbTranscriptStore(dbs, opts, log, reserve, lock, feed);
  fullChanged.report = () => store.reportWritable();
  return store;
}

/** What lmdb-js's getStats returns (its typings say `{}`). */
interface LmdbStats {
  pageSize: number;
  treeDepth: number;
  lastPageNumber: number;
  root: { treeDepth: number };
  free: { treeDepth: number };
}

/** lmdb-js's native environment (`env.env`, untyped): its `info()` is mdb_env_info, without a transaction. */
interface LmdbNativeEnv {
  info(): { lastPageNumber: number };
}

/**
 * Page size, last page and tree depths, from lmdb-js's getStats (root, free-page and each named tree). The last
 * page, read after every commit, comes from mdb_env_info alone: getStats also walks the free-page tree and stats
 * the root, several times the cost (docs/performance.md, "PostgreSQL").
 */
function lmdbSpaceStats(dbs: StoreDatabases): LmdbSpaceStats {
  const stats = (db: { getStats(): unknown }): LmdbStats => db.getStats() as LmdbStats;
  const native = (dbs.env as unknown as { env?: LmdbNativeEnv }).env;
  const lastPage =
    typeof native?.info === 'function'
      ? () => native.info().lastPageNumber
      : () => stats(dbs.env).lastPageNumber;
  return {
    pageSize: stats(dbs.env).pageSize,
    lastPage,
    maxTreeDepth: () => {
      const env = stats(dbs.env);
      let depth = Math.max(env.root.treeDepth, env.free.treeDepth);
      for (const db of dbs.byIndex) depth = Math.max(depth, stats(db).treeDepth);
      return depth;
    },
  };
}

class LmdbTranscriptStore implements TranscriptStore {
  private readonly writer: StoreWriter;
  private readonly reader: StoreReader;
  private readonly log: Logger;
  readonly feed: CommitFeed;

  constructor(
    private readonly dbs: StoreDatabases,
    private readonly opts: TranscriptStoreOptions,
    log: Logger,
    reserve: SpaceReserve | undefined,
    private readonly lock: StoreLock | undefined,
    feedWriter: FeedWriter | undefined,
  ) {
    this.log = log;
    this.feed = new StoreFeed(dbs, feedWriter);
    this.writer = new StoreWriter(dbs, {
      ...(reserve ? { reserve } : {}),
      storeDir: extname(opts.path) ? dirname(opts.path) : opts.path,
      failMode: opts.failMode,
      readOnly: opts.readOnly ?? false,
      signer: opts.signer,
      log: this.log,
      hooks: opts.hooks ?? {},
      recoveryProbeMs: opts.recoveryProbeMs ?? 1000,
      commitWindowMs: opts.commitWindowMs ?? defaultCommitWindowMs,
      ...(opts.redactor !== undefined ? { redactor: opts.redactor } : {}),
      committer: new BatchWriter(dbs.env, dbs.byIndex, feedWriter, {
        recommitted: (commits) => this.log.warn(recommittedMessage, { commits }),
        letGo: (batch) => this.writer.releaseIo(batch),
      }),
      lastCommittedEvent: (id) => this.reader.lastEvent(id),
    });
    this.reader = new StoreReader(dbs, opts.signer, (id) => this.writer.liveSession(id));
    if (!opts.readOnly) {
      this.writer.checkpoints.startPeriodic(opts.checkpointIntervalMs, () => this.writer.liveSessions());
      // The store carries the public keys its signatures are checked against (key-history.ts).
      for (const { key, value } of unrecordedKeys(dbs, opts.signer.publicJwks()))
        this.writer.put(dbIndex.meta, key, value);
    }
  }

  get failMode(): 'closed' | 'open' {
    return this.writer.failMode;
  }

  get writable(): boolean {
    return this.writer.writable;
  }

  reportWritable(): void {
    this.writer.reportWritable();
  }

  get health(): StoreHealth {
    return this.writer.health;
  }

  openSession(info: SessionInfo | AdminSessionInfo, detail?: SessionStartDetail): SessionRecorder {
    return this.writer.openSession(info, detail);
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  async close(): Promise<void> {
    await this.writer.close();
    await this.lock?.release();
  }

  listSessions(filter?: SessionFilter): SessionSummary[] {
    return this.reader.listSessions(filter);
  }

  getSession(id: string): SessionSummary | undefined {
    return this.reader.getSession(id);
  }

  events(sessionId: string): Iterable<TranscriptEvent> {
    return this.reader.events(sessionId);
  }

  checkpoints(sessionId: string): Iterable<CheckpointRecord> {
    return this.reader.checkpoints(sessionId);
  }

  verify(): Promise<StoreVerifyReport> {
    return verifyWholeStore(this.dbs, this.reader, (jws) => this.opts.signer.verifyCompact(jws));
  }

  prune(opts: PruneOptions): Promise<PruneOutcome> {
    return pruneSessions(
      {
        dbs: this.dbs,
        reader: this.reader,
        writer: this.writer,
        signer: this.opts.signer,
        storePath: this.opts.path,
      },
      opts,
    );
  }

  keyHistory(): RecordedKey[] {
    return readKeyHistory(this.dbs);
  }

  recoverInterrupted(): Promise<number> {
    return recoverInterruptedSessions(this.dbs, this.reader, this.writer, this.log);
  }
}
