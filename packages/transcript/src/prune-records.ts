/**
 * Prune records: what `agentgate prune` (or `store.retention`) removed, signed by the gateway key. Each is a
 * compact JWS over the canonical JSON of a PruneRecordPayload, stored in `meta` under
 * `prune/<time, 13 digits>/<part, 6 digits>` in the same transaction that deletes the sessions it lists, so a
 * session never disappears without its record. A record keeps each session's final hash and the checkpoint JWS
 * that signed it, so `verify` can show that what was removed was whole, ended and signed.
 */
import type { Database } from 'lmdb';
import { canonicalJson } from './canonical-json.js';
import { checkpointPayload, sessionKeyRange } from './event-codec.js';
import { metaDb } from './key-history.js';
import type { StoreDatabases } from './store-databases.js';
import type { VerifyProblem } from './verify.js';
import { jwsKeyId } from './jws-key-id.js';

export interface PrunedSession {
  readonly session: string;
  readonly listener: string;
  readonly protocol: string;
  readonly identity: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** seq of `session.end`; -1 for a session a crash left empty */
  readonly lastSeq: number;
  /** hash of event `lastSeq` ('' when empty) */
  readonly hash: string;
  /** the checkpoint JWS over {session, lastSeq, hash} ('' when empty) */
  readonly checkpoint: string;
}

export interface PruneRecordPayload {
  readonly type: 'agentgate.prune';
  /** when the prune ran (ms since the epoch) */
  readonly at: number;
  /** the sessions ended before this time (ms since the epoch) */
  readonly before: number;
  /** `agentgate prune` or `retention` */
  readonly by: string;
  /** the backups and exports that held these sessions, as given */
  readonly coveredBy: readonly string[];
  /** 0, 1, …: a prune of many sessions writes one record per part */
  readonly part: number;
  readonly sessions: readonly PrunedSession[];
}

/** Sessions per record: keeps a record (about 600 bytes per session) well under LMDB's comfortable value sizes. */
export const sessionsPerRecord = 200;

const prefix = 'prune/';

export function pruneRecordKey(at: number, part: number): string {
  return `${prefix}${String(at).padStart(13, '0')}/${String(part).padStart(6, '0')}`;
}

export function encodePrunePayload(payload: PruneRecordPayload): string {
  return canonicalJson(payload);
}

/** Every prune record's key and JWS, oldest first. */
export function readPruneRecords(dbs: StoreDatabases): { key: string; jws: string }[] {
  const meta: Database<string, string> | undefined = metaDb(dbs);
  if (!meta) return [];
  return [...meta.getRange({ start: prefix, end: prefix.slice(0, -1) + '0' })].map(({ key, value }) => ({
    key,
    jws: value,
  }));
}

/**
 * When a prune record lists the session, the time of that prune (the record is read, not verified: a hint for a
 * reader looking for a session that is gone; `verify` checks the records).
 */
export function prunedAt(dbs: StoreDatabases, session: string): number | undefined {
  for (const { jws } of readPruneRecords(dbs)) {
    let payload: PruneRecordPayload;
    try {
      payload = JSON.parse(
        Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'),
      ) as PruneRecordPayload;
    } catch {
      continue;
    }
    if (Array.isArray(payload.sessions) && payload.sessions.some((s) => s?.session === session))
      return payload.at;
  }
  return undefined;
}

/** One prune as `verify` reports it (its parts together). */
export interface PruneReport {
  /** ISO time the prune ran */
  readonly at: string;
  /** ISO time: sessions ended before it */
  readonly before: string;
  readonly by: string;
  /** the key that signed its records */
  readonly kids: string[];
  readonly coveredBy: readonly string[];
  readonly sessions: string[];
}

export interface PrunedSummary {
  /** sessions removed by prunes whose records verify */
  readonly sessions: number;
  readonly prunes: PruneReport[];
}

/**
 * Check every prune record: its signature, the checkpoint of every session it lists, and that nothing of those
 * sessions is left in the store (a session is pruned whole or not at all).
 */
export async function checkPruneRecords(
  dbs: StoreDatabases,
  verifySignature: (jws: string) => Promise<Buffer>,
  problems: VerifyProblem[],
): Promise<PrunedSummary> {
  const byAt = new Map<number, PruneReport>();
  let sessions = 0;
  for (const { key, jws } of readPruneRecords(dbs)) {
    let payload: PruneRecordPayload;
    try {
      payload = JSON.parse((await verifySignature(jws)).toString('utf8')) as PruneRecordPayload;
    } catch (err) {
      problems.push({
        session: key,
        kind: (err as { problemKind?: VerifyProblem['kind'] }).problemKind ?? 'bad-signature',
        detail: `prune record ${key}: ${(err as Error).message}`,
      });
      continue;
    }
    if (!wellFormed(payload) || pruneRecordKey(payload.at, payload.part) !== key) {
      problems.push({ session: key, kind: 'bad-signature', detail: `prune record ${key} is malformed` });
      continue;
    }
    const report =
      byAt.get(payload.at) ??
      ({
        at: new Date(payload.at).toISOString(),
        before: new Date(payload.before).toISOString(),
        by: payload.by,
        kids: [],
        coveredBy: payload.coveredBy,
        sessions: [],
      } satisfies PruneReport);
    byAt.set(payload.at, report);
    const kid = jwsKeyId(jws) ?? '';
    if (!report.kids.includes(kid)) report.kids.push(kid);
    for (const pruned of payload.sessions) {
      report.sessions.push(pruned.session);
      sessions++;
      await checkPrunedSession(dbs, pruned, verifySignature, problems);
    }
  }
  return { sessions, prunes: [...byAt.values()] };
}

async function checkPrunedSession(
  dbs: StoreDatabases,
  pruned: PrunedSession,
  verifySignature: (jws: string) => Promise<Buffer>,
  problems: VerifyProblem[],
): Promise<void> {
  const { session } = pruned;
  if (pruned.lastSeq >= 0) {
    try {
      const signed = (await verifySignature(pruned.checkpoint)).toString('utf8');
      if (signed !== checkpointPayload(session, pruned.lastSeq, pruned.hash)) {
        problems.push({
          session,
          seq: pruned.lastSeq,
          kind: 'bad-signature',
          detail: 'the checkpoint a prune record keeps for this session differs from its signed payload',
        });
      }
    } catch (err) {
      problems.push({
        session,
        seq: pruned.lastSeq,
        kind: (err as { problemKind?: VerifyProblem['kind'] }).problemKind ?? 'bad-signature',
        detail: `the checkpoint a prune record keeps for this session: ${(err as Error).message}`,
      });
    }
  }
  const range = sessionKeyRange(session);
  const any = (db: { getKeys(options: object): Iterable<unknown> } | undefined): boolean => {
    for (const _key of db?.getKeys({ ...range, limit: 1 }) ?? []) return true;
    return false;
  };
  const left =
    dbs.sessions.get(session) !== undefined ||
    dbs.ends.get(session) !== undefined ||
    any(dbs.events) ||
    any(dbs.checkpoints) ||
    any(dbs.ioData);
  if (left) {
    problems.push({
      session,
      kind: 'inserted',
      detail: 'a prune record lists this session as removed, but records of it are in the store',
    });
  }
}

function wellFormed(p: PruneRecordPayload): boolean {
  return (
    p !== null &&
    typeof p === 'object' &&
    p.type === 'agentgate.prune' &&
    Number.isInteger(p.at) &&
    Number.isInteger(p.before) &&
    Number.isInteger(p.part) &&
    typeof p.by === 'string' &&
    Array.isArray(p.coveredBy) &&
    Array.isArray(p.sessions) &&
    p.sessions.every(
      (s) =>
        s !== null &&
        typeof s === 'object' &&
        typeof s.session === 'string' &&
        Number.isInteger(s.lastSeq) &&
        typeof s.hash === 'string' &&
        typeof s.checkpoint === 'string',
    )
  );
}
