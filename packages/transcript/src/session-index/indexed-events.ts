/**
 * What the session index takes from events: per session its start, the counts the sessions page shows and filters
 * on, its end and its command texts; per minute the overview's counts. Only the event types that carry these are
 * parsed; `result` and `io` events, the bulk of a store, are passed over by their header.
 */
import type { TranscriptEvent } from '@agentgate/core';
import type { FeedEvent } from '../feed-reader.js';
import { isDeniedDecision, type StartRecord } from '../stored-records.js';
import type { ActivityCounts } from './index-databases.js';
import { normalizeText } from './text-search.js';

export interface SessionChanges {
  readonly id: string;
  /** from its `session.start`, when this step holds it */
  start?: StartRecord;
  /** the first event's time (the start time of a session with no start record at all) */
  firstTs: number;
  commands: number;
  denied: number;
  approvals: number;
  endedAt?: number;
  endReason?: string;
  /** normalised command texts (text-search.ts) */
  readonly lines: string[];
}

export interface Changes {
  readonly sessions: Map<string, SessionChanges>;
  /** minute start (ms) → counts added */
  readonly activity: Map<number, ActivityCounts>;
}

const minuteMs = 60_000;

export function collectChanges(events: readonly FeedEvent[]): Changes {
  const sessions = new Map<string, SessionChanges>();
  const activity = new Map<number, ActivityCounts>();
  const count = (ts: number, which: 0 | 1 | 2): void => {
    const minute = Math.floor(ts / minuteMs) * minuteMs;
    const counts = activity.get(minute);
    if (counts === undefined)
      activity.set(minute, [which === 0 ? 1 : 0, which === 1 ? 1 : 0, which === 2 ? 1 : 0]);
    else counts[which]++;
  };
  const of = (event: FeedEvent): SessionChanges => {
    let changes = sessions.get(event.session);
    if (changes === undefined) {
      changes = { id: event.session, firstTs: event.ts, commands: 0, denied: 0, approvals: 0, lines: [] };
      sessions.set(event.session, changes);
    }
    return changes;
  };
  for (const event of events) {
    switch (event.type) {
      case 'session.start':
        of(event).start = startOf(event.event);
        break;
      case 'command': {
        const changes = of(event);
        changes.commands++;
        const text = commandText(event.event);
        if (text !== '') changes.lines.push(text);
        count(event.ts, 0);
        if (isDeniedDecision(event.event)) {
          changes.denied++;
          count(event.ts, 1);
        }
        break;
      }
      case 'decision':
        // An older store's decision event. Most allow: only one that can be a denial is parsed.
        if (!mayBeDenial(event.stored) || !isDeniedDecision(event.event)) break;
        of(event).denied++;
        count(event.ts, 1);
        break;
      case 'approval.requested':
        of(event).approvals++;
        count(event.ts, 2);
        break;
      case 'approval.decided': {
        const outcome = event.event['outcome'];
        // A held command that was refused, or not decided in time, is a denial too.
        if (outcome !== 'rejected' && outcome !== 'expired') break;
        of(event).denied++;
        count(event.ts, 1);
        break;
      }
      case 'session.end': {
        const changes = of(event);
        changes.endedAt = event.ts;
        const reason = event.event['reason'];
        if (typeof reason === 'string') changes.endReason = reason;
        break;
      }
      default:
        break;
    }
  }
  return { sessions, activity };
}

/** A denied decision's stored JSON holds `"allowed":false` or a `"deny"` value (isDeniedDecision). */
function mayBeDenial(stored: string): boolean {
  return stored.includes('"deny"') || stored.includes('"allowed":false');
}

/** The searchable text of a command: what the store recorded (`text`, the redacted `recordedText`). */
function commandText(event: TranscriptEvent): string {
  const text = event['recordedText'] ?? event['text'];
  return typeof text === 'string' ? normalizeText(text) : '';
}

function startOf(event: TranscriptEvent): StartRecord {
  const str = (value: unknown): string => (typeof value === 'string' ? value : '');
  const groups = event['groups'];
  const client = event['client'];
  const startedAt = event['startedAt'];
  return {
    id: event.session,
    listener: str(event['listener']),
    protocol: str(event['protocol']),
    identity: str(event['identity']),
    groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
    client: client !== null && typeof client === 'object' ? (client as Record<string, unknown>) : {},
    startedAt: typeof startedAt === 'number' ? startedAt : event.ts,
  };
}
