/**
 * Offline integrity check of the whole store: every session's hash chain and every signed checkpoint.
 *
 * What each kind of tampering looks like:
 * - an altered field: the recomputed hash differs (`hash-mismatch`), or, if the attacker re-hashed, the next
 *   event's `prev` no longer matches (`chain-break`), or a checkpoint names a different hash at that seq;
 * - an event moved to another key (two swapped): its own `seq` differs from its key (`reordered`);
 * - a removed event: a gap in the seqs (`missing`); a removed tail: a checkpoint or the end summary names a seq
 *   that is no longer there (`missing`, truncated);
 * - an inserted event: a key the store never writes, or more events than the session ended with (`inserted`);
 * - a forged or altered checkpoint: the JWS does not verify or differs from the record (`bad-signature`);
 * - io bytes (the `iodata` db) changed or swapped between events: their SHA-256 differs from the `dataSha256`
 *   the hashed event names (`hash-mismatch`); removed: `missing`; stored under a key no io event names: `inserted`.
 */
import type { TranscriptEvent } from '@agentgate/core';
import {
  checkpointPayload,
  hasExternalIoData,
  parseEventKey,
  sha256HexOfBytes,
  storedHashMatches,
  type CheckpointRecord,
} from './event-codec.js';

export type ProblemKind =
  | 'hash-mismatch'
  | 'chain-break'
  | 'missing'
  | 'reordered'
  | 'inserted'
  | 'bad-signature'
  /** an ended session whose last event no valid checkpoint covers */
  | 'unsigned'
  /** a signature by a key that is not among the keys verify was given (the detail names the kid) */
  | 'unknown-key'
  /** `verify --fleet`: a column the fleet database reads off an event for queries differs from the event */
  | 'column-mismatch';

export interface VerifyProblem {
  session: string;
  seq?: number;
  kind: ProblemKind;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  sessions: number;
  events: number;
  /** valid signed checkpoints */
  checkpoints: number;
  problems: VerifyProblem[];
}

export interface VerifySource {
  events: Iterable<{ key: string; value: string }>;
  sessionIds: Iterable<string>;
  ended(id: string): { lastSeq: number } | undefined;
  checkpoints: Iterable<{ key: string; value: string }>;
  verifySignature(jws: string): Promise<Buffer>;
  /** The raw bytes stored for an io event's key (the caller may reuse the buffer once the next call is made). */
  ioData(key: string): Uint8Array | undefined;
  /** Every key of the io bytes db. */
  ioDataKeys: Iterable<string>;
}

interface SignedPoint {
  seq: number;
  hash: string;
}

interface SessionScan {
  id: string;
  expectedSeq: number;
  prevHash: string;
  lastSeq: number;
  /** seqs some checkpoint names, and the hash stored at each (only these: bounded memory on long sessions) */
  checkpointSeqs: Set<number>;
  hashAtSeq: Map<number, string>;
}

export async function verifyStore(source: VerifySource): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const signed = await loadCheckpoints(source.checkpoints, source.verifySignature, problems);
  let checkpointCount = 0;
  for (const points of signed.values()) checkpointCount += points.length;

  const indexed = new Set(source.sessionIds);
  const seen = new Set<string>();
  let events = 0;
  let scan: SessionScan | undefined;
  /** keys of io events whose bytes live in `iodata`: any other key there was inserted */
  const ioKeys = new Set<string>();

  const finish = (s: SessionScan): void =>
    finishSession(s, signed.get(s.id) ?? [], source.ended(s.id), problems);

  for (const { key, value } of source.events) {
    const parsed = parseEventKey(key);
    if (!scan || scan.id !== parsed.session) {
      if (scan) finish(scan);
      scan = startScan(parsed.session, signed.get(parsed.session) ?? []);
      seen.add(parsed.session);
      if (!indexed.has(parsed.session)) {
        problems.push({
          session: parsed.session,
          kind: 'inserted',
          detail: 'events of a session the index does not know',
        });
      }
    }
    events++;
    const event = checkEvent(scan, parsed.seq, key, value, problems);
    if (event && hasExternalIoData(event)) {
      ioKeys.add(key);
      checkIoData(scan.id, parsed.seq, event, source.ioData(key), problems);
    }
  }
  if (scan) finish(scan);
  for (const key of source.ioDataKeys) {
    if (ioKeys.has(key)) continue;
    problems.push({
      session: parseEventKey(key).session,
      kind: 'inserted',
      detail: `io data under ${JSON.stringify(key)}, which no io event names`,
    });
  }

  for (const id of indexed) {
    // lastSeq -1: a crash hit between the index record and the first event, and recovery ended it as empty.
    if (!seen.has(id) && source.ended(id)?.lastSeq !== -1) {
      problems.push({ session: id, kind: 'missing', detail: 'session has no events' });
    }
  }
  return {
    ok: problems.length === 0,
    sessions: indexed.size,
    events,
    checkpoints: checkpointCount,
    problems,
  };
}

async function loadCheckpoints(
  records: Iterable<{ key: string; value: string }>,
  verifySignature: (jws: string) => Promise<Buffer>,
  problems: VerifyProblem[],
): Promise<Map<string, SignedPoint[]>> {
  const bySession = new Map<string, SignedPoint[]>();
  const pending: Promise<void>[] = [];
  for (const { key, value } of records) {
    const { session, seq } = parseEventKey(key);
    let record: CheckpointRecord;
    try {
      record = JSON.parse(value) as CheckpointRecord;
    } catch {
      problems.push({ session, kind: 'bad-signature', detail: `checkpoint ${key} is not JSON` });
      continue;
    }
    pending.push(
      verifySignature(String(record.jws)).then(
        (payload) => {
          // Trust only what was signed; the plain fields must say the same.
          const expected = checkpointPayload(session, seq ?? -1, String(record.hash));
          if (payload.toString('utf8') !== expected || record.seq !== seq || record.session !== session) {
            problems.push({
              session,
              seq: record.seq,
              kind: 'bad-signature',
              detail: `checkpoint ${key} differs from its signed payload`,
            });
            return;
          }
          const points = bySession.get(session) ?? [];
          points.push({ seq: record.seq, hash: record.hash });
          bySession.set(session, points);
        },
        (err: unknown) => {
          problems.push({
            session,
            seq: record.seq,
            kind: (err as { problemKind?: ProblemKind }).problemKind ?? 'bad-signature',
            detail: `checkpoint ${key}: ${(err as Error).message}`,
          });
        },
      ),
    );
  }
  await Promise.all(pending);
  for (const points of bySession.values()) points.sort((a, b) => a.seq - b.seq);
  return bySession;
}

function startScan(id: string, points: readonly SignedPoint[]): SessionScan {
  const scan: SessionScan = {
    id,
    expectedSeq: 0,
    prevHash: '',
    lastSeq: -1,
    checkpointSeqs: new Set(points.map((p) => p.seq)),
    hashAtSeq: new Map(),
  };
  return scan;
}

function checkEvent(
  scan: SessionScan,
  keySeq: number | null,
  key: string,
  value: string,
  problems: VerifyProblem[],
): TranscriptEvent | undefined {
  const session = scan.id;
  if (keySeq === null) {
    problems.push({ session, kind: 'inserted', detail: `unexpected key ${JSON.stringify(key)}` });
    return undefined;
  }
  let event: TranscriptEvent;
  try {
    event = JSON.parse(value) as TranscriptEvent;
    if (event === null || typeof event !== 'object') throw new TypeError('not an object');
  } catch {
    problems.push({ session, seq: keySeq, kind: 'hash-mismatch', detail: 'stored event is not JSON' });
    scan.prevHash = '';
    scan.expectedSeq = keySeq + 1;
    return undefined;
  }
  let gap = false;
  if (keySeq > scan.expectedSeq) {
    gap = true;
    const first = scan.expectedSeq;
    const last = keySeq - 1;
    problems.push({
      session,
      seq: first,
      kind: 'missing',
      detail: first === last ? `event ${first} is missing` : `events ${first}..${last} are missing`,
    });
  }
  if (event.seq !== keySeq || event.session !== session) {
    problems.push({
      session,
      seq: keySeq,
      kind: 'reordered',
      detail: `key ${keySeq} holds event ${String(event.session)}#${String(event.seq)}`,
    });
  }
  // The stored bytes themselves are what was hashed (event-codec.ts): no re-serialisation, any changed byte shows.
  if (typeof event.hash !== 'string' || !storedHashMatches(value, event.hash)) {
    problems.push({
      session,
      seq: keySeq,
      kind: 'hash-mismatch',
      detail: 'event content does not match its hash',
    });
  }
  if (!gap && event.prev !== scan.prevHash) {
    problems.push({
      session,
      seq: keySeq,
      kind: 'chain-break',
      detail: 'prev does not match the hash of the previous event',
    });
  }
  if (scan.checkpointSeqs.has(keySeq)) scan.hashAtSeq.set(keySeq, event.hash);
  scan.prevHash = event.hash;
  scan.expectedSeq = keySeq + 1;
  scan.lastSeq = keySeq;
  return event;
}

/** The io event's hashed JSON names the SHA-256 of its bytes: the bytes must be there and hash to it. */
function checkIoData(
  session: string,
  seq: number | null,
  event: TranscriptEvent,
  data: Uint8Array | undefined,
  problems: VerifyProblem[],
): void {
  const where = seq === null ? {} : { seq };
  if (data === undefined) {
    problems.push({
      session,
      ...where,
      kind: 'missing',
      detail: `the io bytes of event ${String(seq)} are missing`,
    });
  } else if (sha256HexOfBytes(data) !== event['dataSha256'] || data.length !== event['bytes']) {
    problems.push({
      session,
      ...where,
      kind: 'hash-mismatch',
      detail: `the io bytes of event ${String(seq)} do not match its dataSha256`,
    });
  }
}

function finishSession(
  scan: SessionScan,
  points: readonly SignedPoint[],
  end: { lastSeq: number } | undefined,
  problems: VerifyProblem[],
): void {
  const session = scan.id;
  for (const point of points) {
    const actual = scan.hashAtSeq.get(point.seq);
    if (actual === point.hash) continue;
    if (point.seq > scan.lastSeq) {
      problems.push({
        session,
        seq: point.seq,
        kind: 'missing',
        detail: `truncated: a checkpoint names seq ${point.seq} but the session ends at ${scan.lastSeq}`,
      });
    } else {
      problems.push({
        session,
        seq: point.seq,
        kind: 'hash-mismatch',
        detail: `event ${point.seq} differs from its signed checkpoint`,
      });
    }
  }
  if (end) {
    // The end summary was written with session.end: the session must stop exactly there.
    if (end.lastSeq > scan.lastSeq) {
      problems.push({
        session,
        seq: end.lastSeq,
        kind: 'missing',
        detail: `truncated: the session ended at seq ${end.lastSeq} but its events stop at ${scan.lastSeq}`,
      });
    } else if (end.lastSeq < scan.lastSeq) {
      problems.push({
        session,
        seq: end.lastSeq + 1,
        kind: 'inserted',
        detail: `the session ended at seq ${end.lastSeq} but has events up to ${scan.lastSeq}`,
      });
    }
    if (end.lastSeq >= 0 && !points.some((p) => p.seq === end.lastSeq)) {
      problems.push({
        session,
        seq: end.lastSeq,
        kind: 'unsigned',
        detail: 'no valid checkpoint covers the end of the session',
      });
    }
  }
}
