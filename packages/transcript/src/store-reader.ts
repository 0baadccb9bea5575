/** Reading the store: session summaries, a session's events and checkpoints, and verify. */
import { newId, type Signer, type TranscriptEvent } from '@agentgate/core';
import {
  attachIoData,
  decodeEvent,
  hasExternalIoData,
  sessionKeyRange,
  type CheckpointRecord,
} from './event-codec.js';
import type { StoreDatabases } from './store-databases.js';
import { countDeniedApprovals, isDeniedApproval } from './session-counts.js';
import { isDeniedDecision, parseJson, type EndRecord, type StartRecord } from './stored-records.js';
import { verifyStore, type VerifyReport } from './verify.js';
import { upgradeLegacyProtocol } from './legacy-events.js';

export interface SessionSummary extends StartRecord {
  endedAt: number | null;
  commands: number;
  denied: number;
  /** `session.end` reason, when given */
  endReason?: string;
}

export interface SessionFilter {
  protocol?: string;
  identity?: string;
  listener?: string;
  /** started at or after this time (ms since the epoch) */
  since?: number;
  /** started before this time (ms since the epoch) */
  until?: number;
  /** only sessions in which something was denied */
  denied?: boolean;
  /** only the most recent this many of the matching sessions (still listed oldest first) */
  limit?: number;
}

/**
 * Session ids begin with their creation time (ULID layout), so a time window is a key range. The id is made a
 * little before `startedAt` (authentication comes between), hence the margin; `startedAt` then decides exactly.
 */
const idTimeMarginMs = 3_600_000;
const idTimeBound = (ms: number): string => newId(Math.max(0, ms)).slice(0, 10);

/** Counts of a session this process is recording (they are ahead of what is committed). */
export type LiveCounts = (id: string) => { commands: number; denied: number } | undefined;

export class StoreReader {
  constructor(
    private readonly dbs: StoreDatabases,
    private readonly signer: Pick<Signer, 'verifyCompact'>,
    private readonly liveCounts: LiveCounts,
  ) {}

  listSessions(filter: SessionFilter = {}): SessionSummary[] {
    const low = filter.since === undefined ? undefined : idTimeBound(filter.since - idTimeMarginMs);
    const high = filter.until === undefined ? undefined : idTimeBound(filter.until + idTimeMarginMs);
    const limit = filter.limit ?? Infinity;
    // With a limit, walk from the newest end and stop early.
    const range =
      limit === Infinity
        ? this.dbs.sessions.getRange({ ...(low ? { start: low } : {}), ...(high ? { end: high } : {}) })
        : this.dbs.sessions.getRange({
            ...(high ? { start: high } : {}),
            ...(low ? { end: low } : {}),
            reverse: true,
          });
    const out: SessionSummary[] = [];
    for (const { key, value } of range) {
      if (out.length >= limit) break;
      const start = parseJson<StartRecord>(value);
      if (!start) continue;
      if (filter.protocol !== undefined && upgradeLegacyProtocol(start) !== filter.protocol) continue;
      if (filter.identity !== undefined && start.identity !== filter.identity) continue;
      if (filter.listener !== undefined && start.listener !== filter.listener) continue;
      if (filter.since !== undefined && !(start.startedAt >= filter.since)) continue;
      if (filter.until !== undefined && !(start.startedAt < filter.until)) continue;
      const summary = this.summarize(key, start);
      if (filter.denied && summary.denied === 0) continue;
      out.push(summary);
    }
    return limit === Infinity ? out : out.reverse();
  }

  getSession(id: string): SessionSummary | undefined {
    const value = this.dbs.sessions.get(id);
    const start = value === undefined ? undefined : parseJson<StartRecord>(value);
    return start ? this.summarize(id, start) : undefined;
  }

  endRecord(id: string): EndRecord | undefined {
    const value = this.dbs.ends.get(id);
    return value === undefined ? undefined : parseJson<EndRecord>(value);
  }

  /**
   * io events get their bytes back as `data` (base64), read from `iodata` as each event is reached, so readers
   * (replay, asciicast, tests) see the same shape as before the bytes moved out of the event JSON. A missing blob
   * leaves `data` out (verify reports it).
   */
  *events(sessionId: string): Iterable<TranscriptEvent> {
    for (const { key, value } of this.dbs.events.getRange(sessionKeyRange(sessionId))) {
      const event = decodeEvent(value);
      if (hasExternalIoData(event)) {
        // getBinary copies; getBinaryFast's shared buffer reports a length its typed array does not have.
        const data = this.dbs.ioData?.getBinary(key);
        if (data !== undefined) attachIoData(event, data);
      }
      yield event;
    }
  }

  /** For counting and recovery: no io bytes read. */
  *eventsWithoutIoData(sessionId: string): Iterable<TranscriptEvent> {
    for (const { value } of this.dbs.events.getRange(sessionKeyRange(sessionId))) yield decodeEvent(value);
  }

  /** The session's last committed event, if any. */
  lastEvent(sessionId: string): TranscriptEvent | undefined {
    const { start, end } = sessionKeyRange(sessionId);
    for (const { value } of this.dbs.events.getRange({ start: end, end: start, reverse: true, limit: 1 }))
      return decodeEvent(value);
    return undefined;
  }

  *checkpoints(sessionId: string): Iterable<CheckpointRecord> {
    for (const { value } of this.dbs.checkpoints.getRange(sessionKeyRange(sessionId))) {
      const record = parseJson<CheckpointRecord>(value);
      if (record) yield record;
    }
  }

  verify(): Promise<VerifyReport> {
    return verifyStore({
      events: this.dbs.events.getRange(),
      sessionIds: this.dbs.sessions.getKeys(),
      ended: (id) => this.endRecord(id),
      checkpoints: this.dbs.checkpoints.getRange(),
      ioData: (key) => this.dbs.ioData?.getBinary(key),
      ioDataKeys: this.dbs.ioData?.getKeys() ?? [],
      verifySignature: (jws) => this.signer.verifyCompact(jws),
    });
  }

  private summarize(id: string, start: StartRecord): SessionSummary {
    const summary: SessionSummary = {
      id,
      listener: start.listener,
      protocol: upgradeLegacyProtocol(start),
      identity: start.identity,
      groups: start.groups,
      client: start.client,
      startedAt: start.startedAt,
      endedAt: null,
      commands: 0,
      denied: 0,
    };
    const end = this.endRecord(id);
    if (end) {
      summary.endedAt = end.endedAt;
      summary.commands = end.commands;
      summary.denied = end.denied + this.deniedApprovals(id);
      if (end.reason !== undefined) summary.endReason = end.reason;
      return summary;
    }
    // Recorded by this process: its counts. Open in another process (the CLI reading a running gateway's store) or
    // interrupted: count from the events.
    const live = this.liveCounts(id);
    const counts = live ? { ...live, denied: live.denied + this.deniedApprovals(id) } : this.countEvents(id);
    summary.commands = counts.commands;
    summary.denied = counts.denied;
    return summary;
  }

  /** Approvals rejected or expired (session-counts.ts), from the stored events without decoding the others. */
  private deniedApprovals(id: string): number {
    return countDeniedApprovals(this.dbs.events.getRange(sessionKeyRange(id)).map(({ value }) => value));
  }

  private countEvents(id: string): { commands: number; denied: number } {
    let commands = 0;
    let denied = 0;
    for (const event of this.eventsWithoutIoData(id)) {
      if (event.type === 'command') commands++;
      if (isDeniedDecision(event) || isDeniedApproval(event)) denied++;
    }
    return { commands, denied };
  }
}
