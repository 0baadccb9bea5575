/**
 * Pruning: removing whole, ended sessions that ended before a date, once a backup or export holds them
 * (coverage.ts). Each part of a prune is one transaction holding its signed record (prune-records.ts) and the
 * deletion of every key of its sessions, queued through the store's own commit pipeline like any write.
 */
import { AgentgateError, newId, type Signer } from '@agentgate/core';
import { dbIndex } from './batch-writer.js';
import { openCoverage, type SessionEnd } from './coverage.js';
import { upgradeLegacyProtocol } from './legacy-events.js';
import { checkpointPayload, decodeEvent, eventKey, sessionKeyRange } from './event-codec.js';
import {
  encodePrunePayload,
  pruneRecordKey,
  sessionsPerRecord,
  type PruneRecordPayload,
  type PrunedSession,
} from './prune-records.js';
import type { StoreDatabases } from './store-databases.js';
import type { StoreReader } from './store-reader.js';
import type { StoreWriter } from './store-writer.js';
import { parseJson, type StartRecord } from './stored-records.js';

export interface PruneOptions {
  /** prune sessions that ended before this time (ms since the epoch) */
  readonly before: number;
  /** backups and exports to find the sessions in (coverage.ts) */
  readonly coveredBy: readonly string[];
  /** who prunes, recorded: `agentgate prune` or `retention` */
  readonly by: string;
  /** report what would be pruned, change nothing */
  readonly dryRun?: boolean;
}

export interface PruneOutcome {
  /** removed (or, with dryRun, to be removed) */
  readonly pruned: PrunedSession[];
  /** where each pruned session was found */
  readonly evidence: Record<string, string>;
  /** ended before the date, kept: not found intact in any backup or export given */
  readonly notCovered: string[];
  /** ended before the date, kept: the end of the session is not signed (verify reports why) */
  readonly unsigned: string[];
  /** signed prune records written */
  readonly records: number;
}

export interface PruneContext {
  readonly dbs: StoreDatabases;
  readonly reader: StoreReader;
  readonly writer: StoreWriter;
  readonly signer: Signer;
  /** the store's path (it cannot be its own backup) */
  readonly storePath: string;
}

export async function pruneSessions(ctx: PruneContext, opts: PruneOptions): Promise<PruneOutcome> {
  const { candidates, unsigned } = await findCandidates(ctx, opts.before);
  const coverage = await openCoverage(opts.coveredBy, ctx.storePath, (jws) => ctx.signer.verifyCompact(jws));
  const covered: PrunedSession[] = [];
  const evidence: Record<string, string> = {};
  const notCovered: string[] = [];
  try {
    for (const candidate of candidates) {
      const found = await coverage.find(candidate);
      if (found === undefined) notCovered.push(candidate.session);
      else {
        covered.push(candidate);
        evidence[candidate.session] = found;
      }
    }
  } finally {
    await coverage.close();
  }
  let records = 0;
  if (!opts.dryRun && covered.length > 0) {
    if (!ctx.writer.writable)
      throw new AgentgateError('RECORDING_FAILED', 'the transcript store cannot write: nothing was pruned');
    const at = Date.now();
    for (let part = 0; part * sessionsPerRecord < covered.length; part++) {
      const sessions = covered.slice(part * sessionsPerRecord, (part + 1) * sessionsPerRecord);
      const payload: PruneRecordPayload = {
        type: 'agentgate.prune',
        at,
        before: opts.before,
        by: opts.by,
        coveredBy: opts.coveredBy,
        part,
        sessions,
      };
      const jws = await ctx.signer.signCompact(encodePrunePayload(payload));
      // The record and the deletions share one transaction: a session never disappears without its record.
      const record = { db: dbIndex.meta, key: pruneRecordKey(at, part), value: jws };
      const removals = sessions.flatMap((session) => sessionKeys(ctx, session.session));
      if (!ctx.writer.queueUnit([record], removals))
        throw new AgentgateError(
          'RECORDING_FAILED',
          `the transcript store is full: pruned ${records} of ${Math.ceil(covered.length / sessionsPerRecord)} part(s)`,
        );
      await ctx.writer.drained();
      records++;
    }
  }
  return { pruned: covered, evidence, notCovered, unsigned, records };
}

/** Ended sessions that ended before `before`, with their final hash and checkpoint. */
async function findCandidates(
  ctx: PruneContext,
  before: number,
): Promise<{ candidates: (PrunedSession & SessionEnd)[]; unsigned: string[] }> {
  const { dbs, reader, writer, signer } = ctx;
  const candidates: PrunedSession[] = [];
  const unsigned: string[] = [];
  // A session that ended before `before` started before it, and ids begin with their start time (an hour's margin
  // for the time between making the id and starting): only that part of the index is read.
  const end = newId(before + 3_600_000).slice(0, 10);
  for (const { key: id, value } of dbs.sessions.getRange({ end })) {
    if (writer.liveSession(id)) continue;
    const end = reader.endRecord(id);
    if (!end || !(end.endedAt < before)) continue;
    const start = parseJson<StartRecord>(value);
    const base = {
      session: id,
      listener: start?.listener ?? '',
      protocol: start ? upgradeLegacyProtocol(start) : '',
      identity: start?.identity ?? '',
      startedAt: start?.startedAt ?? 0,
      endedAt: end.endedAt,
      lastSeq: end.lastSeq,
    };
    if (end.lastSeq < 0) {
      candidates.push({ ...base, hash: '', checkpoint: '' });
      continue;
    }
    const last = dbs.events.get(eventKey(id, end.lastSeq));
    const checkpoint = dbs.checkpoints.get(eventKey(id, end.lastSeq));
    const hash = last === undefined ? undefined : decodeEventHash(last);
    const jws = checkpoint === undefined ? undefined : parseJson<{ jws?: unknown }>(checkpoint)?.jws;
    if (hash === undefined || typeof jws !== 'string' || !(await signs(signer, jws, id, end.lastSeq, hash))) {
      unsigned.push(id);
      continue;
    }
    candidates.push({ ...base, hash, checkpoint: jws });
  }
  return { candidates, unsigned };
}

function decodeEventHash(stored: string): string | undefined {
  try {
    const hash = decodeEvent(stored).hash;
    return typeof hash === 'string' ? hash : undefined;
  } catch {
    return undefined;
  }
}

async function signs(
  signer: Signer,
  jws: string,
  session: string,
  seq: number,
  hash: string,
): Promise<boolean> {
  try {
    return (await signer.verifyCompact(jws)).toString('utf8') === checkpointPayload(session, seq, hash);
  } catch {
    return false;
  }
}

/** Every key of a session: events, io bytes, checkpoints and both summaries. */
function sessionKeys(ctx: PruneContext, id: string): { db: number; key: string }[] {
  const { dbs } = ctx;
  const range = sessionKeyRange(id);
  const keys: { db: number; key: string }[] = [];
  for (const key of dbs.events.getKeys(range)) keys.push({ db: dbIndex.events, key });
  for (const key of dbs.ioData?.getKeys(range) ?? []) keys.push({ db: dbIndex.iodata, key });
  for (const key of dbs.checkpoints.getKeys(range)) keys.push({ db: dbIndex.checkpoints, key });
  keys.push({ db: dbIndex.sessions, key: id }, { db: dbIndex.ends, key: id });
  return keys;
}
