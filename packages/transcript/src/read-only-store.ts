/**
 * A store opened for reading only, as the auditor's commands (`sessions`, `replay`, `export`, `verify`, `backup`)
 * open it: no signing key, no lock, no write. It can be opened while a gateway writes the store.
 */
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { AgentgateError, type TranscriptEvent } from '@agentgate/core';
import { missingPagesBytes } from './data-file-length.js';
import type { CheckpointRecord } from './event-codec.js';
import { StoreFeed, type CommitFeed } from './feed-reader.js';
import { readKeyHistory, type RecordedKey } from './key-history.js';
import { prunedAt } from './prune-records.js';
import { backupEnvironment } from './store-backup.js';
import { openDatabases, type StoreDatabases } from './store-databases.js';
import { StoreReader, type SessionFilter, type SessionSummary } from './store-reader.js';
import { verifyWholeStore, type StoreVerifyReport } from './store-verification.js';

export interface StoreForReading {
  readonly path: string;
  listSessions(filter?: SessionFilter): SessionSummary[];
  getSession(id: string): SessionSummary | undefined;
  /** A session's events in seq order, io bytes attached as base64 `data`. */
  events(sessionId: string): Iterable<TranscriptEvent>;
  checkpoints(sessionId: string): Iterable<CheckpointRecord>;
  /** The public keys gateways recorded in the store (key-history.ts). */
  keyHistory(): RecordedKey[];
  /** When a prune removed this session, per its (unverified) record; undefined when none lists it. */
  prunedAt(sessionId: string): number | undefined;
  /** Check every chain, checkpoint and prune record, signatures with `verifySignature`. */
  verify(verifySignature: (jws: string) => Promise<Buffer>): Promise<StoreVerifyReport>;
  /** What the store committed, in commit order (read-only: new commits of a running gateway are polled for). */
  readonly feed: CommitFeed;
  /** A consistent, compacted copy into `dir` (store-backup.ts). */
  backup(dir: string): Promise<void>;
  close(): Promise<void>;
}

export async function openStoreForReading(path: string): Promise<StoreForReading> {
  if (!existsSync(path)) throw new AgentgateError('NOT_FOUND', `transcript store ${path} does not exist`);
  let env: RootDatabase<string, string>;
  try {
    env = open<string, string>({ path, encoding: 'string', maxDbs: 8, readOnly: true, compression: false });
  } catch (err) {
    throw new AgentgateError('NOT_FOUND', `cannot open transcript store ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const missing = await missingPagesBytes(env, extname(path) ? path : join(path, 'data.mdb'));
  if (missing > 0) {
    await env.close();
    throw new AgentgateError(
      'BAD_REQUEST',
      `transcript store ${path} is incomplete: its data file lacks ${missing} bytes of its pages (a copy still being written, or cut short)`,
    );
  }
  return new ReadOnlyStore(path, openDatabases(env));
}

const noSigner = {
  verifyCompact: (): Promise<Buffer> =>
    Promise.reject(
      new AgentgateError('INTERNAL', 'a store opened for reading verifies with the keys it is given'),
    ),
};

class ReadOnlyStore implements StoreForReading {
  private readonly reader: StoreReader;
  readonly feed: CommitFeed;

  constructor(
    readonly path: string,
    private readonly dbs: StoreDatabases,
  ) {
    this.reader = new StoreReader(dbs, noSigner, () => undefined);
    this.feed = new StoreFeed(dbs, undefined);
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

  keyHistory(): RecordedKey[] {
    return readKeyHistory(this.dbs);
  }

  prunedAt(sessionId: string): number | undefined {
    return prunedAt(this.dbs, sessionId);
  }

  verify(verifySignature: (jws: string) => Promise<Buffer>): Promise<StoreVerifyReport> {
    return verifyWholeStore(this.dbs, this.reader, verifySignature);
  }

  backup(dir: string): Promise<void> {
    return backupEnvironment(this.dbs.env, this.path, dir);
  }

  close(): Promise<void> {
    return this.dbs.env.close();
  }
}
