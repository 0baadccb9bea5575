/**
 * One session's integrity, checked the way an external verifier checks an export: each event's hash over its
 * stored bytes (io bytes against their `dataSha256`), each `prev` link, contiguous seqs, and each signed checkpoint
 * (its JWS verifies with the gateway's key and names the hash the chain has at that seq).
 */
import type { TranscriptEvent } from '@agentgate/core';
import {
  canonicalJson,
  exportJsonl,
  jsonlLineHashMatches,
  jwsKeyId,
  type CheckpointRecord,
} from '@agentgate/transcript';

export interface ChainReport {
  readonly intact: boolean;
  readonly events: number;
  readonly problems: readonly string[];
  /** The latest checkpoint whose signature verified. */
  readonly lastCheckpoint?: { readonly seq: number; readonly ts: number; readonly kid?: string };
  readonly checkpoints: number;
  /** An ended session whose last event a valid checkpoint covers. */
  readonly endSigned: boolean;
}

export async function checkSessionChain(
  events: Iterable<TranscriptEvent>,
  checkpoints: Iterable<CheckpointRecord>,
  verifySignature: (jws: string) => Promise<Buffer>,
): Promise<ChainReport> {
  const problems: string[] = [];
  const hashAt = new Map<number, string>();
  let expectedSeq = 0;
  let prev = '';
  let lastType: string | undefined;
  for (const event of events) {
    if (event.seq !== expectedSeq) problems.push(`event ${expectedSeq} is missing (found ${event.seq})`);
    const [line] = [...exportJsonl([event])];
    if (line === undefined || !jsonlLineHashMatches(line.slice(0, -1)))
      problems.push(`event ${event.seq} does not match its hash`);
    if (event.prev !== prev) problems.push(`event ${event.seq} does not link to the event before it`);
    hashAt.set(event.seq, event.hash);
    prev = event.hash;
    expectedSeq = event.seq + 1;
    lastType = event.type;
  }
  let valid = 0;
  let lastCheckpoint: ChainReport['lastCheckpoint'];
  for (const checkpoint of checkpoints) {
    let payload: string;
    try {
      payload = (await verifySignature(checkpoint.jws)).toString('utf8');
    } catch {
      problems.push(`the checkpoint at event ${checkpoint.seq} has a bad signature`);
      continue;
    }
    const signed = canonicalJson({ session: checkpoint.session, seq: checkpoint.seq, hash: checkpoint.hash });
    if (payload !== signed) {
      problems.push(`the checkpoint at event ${checkpoint.seq} differs from what was signed`);
      continue;
    }
    const actual = hashAt.get(checkpoint.seq);
    if (actual === undefined) problems.push(`a checkpoint names event ${checkpoint.seq}, which is missing`);
    else if (actual !== checkpoint.hash) problems.push(`event ${checkpoint.seq} differs from its checkpoint`);
    else {
      valid++;
      if (lastCheckpoint === undefined || checkpoint.seq >= lastCheckpoint.seq) {
        const kid = jwsKeyId(checkpoint.jws);
        lastCheckpoint = { seq: checkpoint.seq, ts: checkpoint.ts, ...(kid === undefined ? {} : { kid }) };
      }
    }
  }
  const endSigned = lastType === 'session.end' && lastCheckpoint?.seq === expectedSeq - 1;
  return {
    intact: problems.length === 0,
    events: expectedSeq,
    problems,
    ...(lastCheckpoint === undefined ? {} : { lastCheckpoint }),
    checkpoints: valid,
    endSigned,
  };
}
