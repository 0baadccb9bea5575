/** The per-session summary records the store keeps beside the events, and how events are classified. */
import {
  recordsDenial,
  type AdminSessionInfo,
  type SessionInfo,
  type SessionStartDetail,
  type TranscriptEvent,
} from '@agentgate/core';

/** What `sessions` holds per session: the summary fields known at `session.start`. */
export interface StartRecord {
  id: string;
  listener: string;
  protocol: string;
  identity: string;
  groups: string[];
  client: Record<string, unknown>;
  /** ms since the epoch */
  startedAt: number;
}

/** What `ends` holds per ended session. */
export interface EndRecord {
  endedAt: number;
  commands: number;
  denied: number;
  /** seq of `session.end`; -1 for a session recovery ended with no events */
  lastSeq: number;
  reason?: string;
}

/** A new session's start record and its `session.start` body (`detail` first: the header fields win). */
export function startRecords(
  info: SessionInfo | AdminSessionInfo,
  detail?: SessionStartDetail,
): { start: StartRecord; body: Record<string, unknown> } {
  const start: StartRecord = {
    id: info.id,
    listener: info.listener,
    protocol: info.protocol,
    identity: info.identity.name,
    groups: [...info.identity.groups],
    client: { ...info.client },
    startedAt: info.startedAt,
  };
  const body: Record<string, unknown> = {
    ...detail,
    listener: info.listener,
    protocol: info.protocol,
    identity: info.identity.name,
    groups: start.groups,
    identitySource: info.identity.source,
    client: start.client,
    startedAt: info.startedAt,
  };
  if (info.identity.issuer !== undefined) body['issuer'] = info.identity.issuer;
  return { start, body };
}

/**
 * An event counts as denied when it records the gate refusing a command: a `command` whose `decision` denied, or an
 * older store's `decision` event that did (recordsDenial).
 */
export function isDeniedDecision(event: Pick<TranscriptEvent, 'type'> & Record<string, unknown>): boolean {
  return recordsDenial(event.type, event);
}

/** The approval an `approval.requested`/`approval.decided` event names (decoded events use today's spelling). */
export function approvalIdOf(event: TranscriptEvent): string {
  return String(event['approvalId']);
}

/** JSON.parse, or undefined for a value that is not JSON (verify reports damaged records; readers skip them). */
export function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
