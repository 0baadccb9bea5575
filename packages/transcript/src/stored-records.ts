/** The per-session summary records the store keeps beside the events, and how events are classified. */
import type { SessionInfo, TranscriptEvent } from '@agentgate/core';

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

/** A new session's start record and its `session.start` body (`extra` first: the header fields win). */
export function startRecords(
  info: SessionInfo,
  extra?: Record<string, unknown>,
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
    ...extra,
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

/** A `decision` event counts as denied when the command was refused (however the gate words it). */
export function isDeniedDecision(body: Record<string, unknown>): boolean {
  return body['allowed'] === false || body['action'] === 'deny' || body['decision'] === 'deny';
}

/** The approval an `approval.requested`/`approval.decided` event names. */
export function approvalIdOf(event: TranscriptEvent): string {
  const id = event['approvalId'] ?? event['id'];
  return typeof id === 'string' ? id : String(id);
}

/** JSON.parse, or undefined for a value that is not JSON (verify reports damaged records; readers skip them). */
export function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
