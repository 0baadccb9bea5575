/**
 * At start, end the sessions a crash (or kill -9) left open: each gets `approval.decided` (expired) for approvals
 * still pending, then `session.end` with reason `gateway restarted`, its summary and a signed checkpoint. A crash in
 * the middle of ending a session is finished too: the end summary, or the final checkpoint, written now.
 */
import type { ApprovalDecidedBody, Logger, SessionEndBody, TranscriptEvent } from '@agentgate/core';
import { dbIndex } from './batch-writer.js';
import { decodeEvent, eventKey } from './event-codec.js';
import { newLiveSession, setHead } from './session-recorder.js';
import type { StoreDatabases } from './store-databases.js';
import type { StoreReader } from './store-reader.js';
import type { StoreWriter } from './store-writer.js';
import { approvalIdOf, isDeniedDecision, parseJson, type EndRecord } from './stored-records.js';

const reason = 'gateway restarted';

/** Returns how many sessions were ended or had their end completed. */
export async function recoverInterruptedSessions(
  dbs: StoreDatabases,
  reader: StoreReader,
  writer: StoreWriter,
  log: Logger,
): Promise<number> {
  if (!writer.writable) {
    writer.refuseOrDrop();
    return 0;
  }
  let recovered = 0;
  for (const id of [...dbs.sessions.getKeys()]) {
    if (writer.liveSession(id)) continue;
    const endValue = dbs.ends.get(id);
    if (endValue !== undefined) {
      signMissingFinalCheckpoint(dbs, writer, id, parseJson<EndRecord>(endValue));
      continue;
    }
    recoverSession(reader, writer, id);
    recovered++;
  }
  await writer.flush();
  if (recovered > 0) log.info('transcript: recovered interrupted sessions', { count: recovered });
  return recovered;
}

/** End one session that has no end summary. */
function recoverSession(reader: StoreReader, writer: StoreWriter, id: string): void {
  const session = newLiveSession(id);
  const pendingApprovals = new Set<string>();
  let last: TranscriptEvent | undefined;
  for (const event of reader.eventsWithoutIoData(id)) {
    last = event;
    if (event.type === 'command') session.commands++;
    if (isDeniedDecision(event)) session.denied++;
    else if (event.type === 'approval.requested') pendingApprovals.add(approvalIdOf(event));
    else if (event.type === 'approval.decided') pendingApprovals.delete(approvalIdOf(event));
  }
  if (!last) {
    // The crash hit between the session index and session.start: end it as empty.
    const end: EndRecord = { endedAt: Date.now(), commands: 0, denied: 0, lastSeq: -1, reason };
    writer.put(dbIndex.ends, id, JSON.stringify(end));
    return;
  }
  session.nextSeq = last.seq + 1;
  setHead(session, last.hash);
  if (last.type === 'session.end') {
    // The crash hit between the end event and its summary: only write the summary and the checkpoint.
    const end: EndRecord = {
      endedAt: last.ts,
      commands: session.commands,
      denied: session.denied,
      lastSeq: last.seq,
    };
    if (typeof last['reason'] === 'string') end.reason = last['reason'];
    session.ended = true;
    if (!writer.put(dbIndex.ends, id, JSON.stringify(end))) return; // the store is full: the next start finishes it
    writer.checkpoints.checkpoint(session, true);
    return;
  }
  for (const approvalId of pendingApprovals) {
    const decided: ApprovalDecidedBody = { approvalId, outcome: 'expired', by: null, reason };
    writer.appendToSession(session, 'approval.decided', decided);
  }
  const end: SessionEndBody = { cause: 'interrupted', reason };
  writer.endSession(session, end);
}

/** A crash between `session.end` and its signature leaves the end unsigned: sign it now. */
function signMissingFinalCheckpoint(
  dbs: StoreDatabases,
  writer: StoreWriter,
  id: string,
  end: EndRecord | undefined,
): void {
  if (!end || end.lastSeq < 0 || dbs.checkpoints.get(eventKey(id, end.lastSeq)) !== undefined) return;
  const value = dbs.events.get(eventKey(id, end.lastSeq));
  if (value === undefined) return; // truncated: verify reports it; signing would hide it
  const last = decodeEvent(value);
  const session = newLiveSession(id, {
    nextSeq: last.seq + 1,
    commands: end.commands,
    denied: end.denied,
    ended: true,
  });
  setHead(session, last.hash);
  writer.checkpoints.checkpoint(session);
}
