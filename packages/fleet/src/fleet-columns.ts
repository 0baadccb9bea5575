/**
 * `verify --fleet`'s check of the columns the shipper reads off events for queries (ship-rows.ts): a session's
 * listener, protocol, identity, groups, client and start, its end, and each event's time, type and denial. The
 * chain and the signatures cover only the stored events, while `sessions list`, the console's filters and its
 * counts read these columns: a column changed in the database would show a session under another identity, or hide
 * a denial, with every chain intact. Each is recomputed from the shipped event the way the shipper computed it.
 */
import type { TranscriptEvent } from '@agentgate/core';
import { decodeEvent, type FeedEvent, type VerifyProblem } from '@agentgate/transcript';
import { shipRows } from './ship-rows.js';

/** An event row as verify reads it: the stored event and the columns read off it. */
export interface EventColumns {
  session_id: string;
  seq: number;
  stored: string;
  ts_ms: number;
  type: string;
  denied: boolean;
}

export interface SessionColumns {
  session_id: string;
  listener: string;
  protocol: string;
  identity: string;
  groups: unknown;
  client: unknown;
  started_ms: number;
}

export interface EndColumns {
  session_id: string;
  ended_ms: number;
  last_seq: number;
  reason: string | null;
}

export function columnProblems(
  events: readonly EventColumns[],
  sessions: readonly SessionColumns[],
  ends: readonly EndColumns[],
): VerifyProblem[] {
  const problems: VerifyProblem[] = [];
  const report = (session: string, seq: number, detail: string): void => {
    problems.push({ session, seq, kind: 'column-mismatch', detail });
  };
  const differ = (session: string, seq: number, what: string): void =>
    report(session, seq, `the fleet database's ${what} differs from the shipped event it was read off`);
  const feed: FeedEvent[] = [];
  for (const row of events) {
    let event: TranscriptEvent;
    try {
      event = decodeEvent(row.stored);
    } catch {
      continue; // not JSON: verifyStore reports it
    }
    feed.push({
      position: 0,
      session: row.session_id,
      seq: row.seq,
      type: event.type,
      ts: event.ts,
      stored: row.stored,
      data: undefined,
      event,
    });
  }
  const expected = shipRows({ events: feed, checkpoints: [] });
  const byKey = new Map(events.map((row) => [`${row.session_id}#${row.seq}`, row]));
  const e = expected.events;
  for (let i = 0; i < e.session.length; i++) {
    const row = byKey.get(`${e.session[i]}#${e.seq[i]}`)!;
    const wrong = [
      ...(sameMs(row.ts_ms, e.ts[i]!) ? [] : ['ts']),
      ...(row.type === e.type[i] ? [] : ['type']),
      ...(row.denied === e.denied[i] ? [] : ['denied']),
    ];
    if (wrong.length > 0) differ(row.session_id, row.seq, `events row (${wrong.join(', ')})`);
  }

  const starts = new Map<string, Record<string, unknown>>();
  const s = expected.starts;
  for (let i = 0; i < s.session.length; i++)
    starts.set(s.session[i]!, {
      listener: s.listener[i],
      protocol: s.protocol[i],
      identity: s.identity[i],
      groups: JSON.parse(s.groups[i]!),
      client: JSON.parse(s.client[i]!),
      started: s.startedAt[i],
    });
  for (const row of sessions) {
    const start = starts.get(row.session_id);
    // A session without its start event shipped is verifyStore's to report (missing).
    if (start === undefined) continue;
    const wrong: string[] = (['listener', 'protocol', 'identity', 'groups', 'client'] as const).filter(
      (column) => canonical(row[column]) !== canonical(start[column]),
    );
    if (!sameMs(row.started_ms, start['started'] as number)) wrong.push('started_at');
    if (wrong.length > 0) differ(row.session_id, 0, `sessions row (${wrong.join(', ')})`);
  }

  const endEvents = new Map<string, { endedAt: number; lastSeq: number; reason: string | null }>();
  const x = expected.ends;
  for (let i = 0; i < x.session.length; i++)
    endEvents.set(x.session[i]!, { endedAt: x.endedAt[i]!, lastSeq: x.lastSeq[i]!, reason: x.reason[i]! });
  for (const row of ends) {
    const end = endEvents.get(row.session_id);
    if (end === undefined) {
      // An end row over an event that is not the session's end (an open session made to look ended); with no
      // event there, the events stop before the recorded end and verifyStore reports the truncation.
      if (byKey.has(`${row.session_id}#${row.last_seq}`))
        report(
          row.session_id,
          row.last_seq,
          "the fleet database's session_ends row ends the session at an event that is not its session.end",
        );
      continue;
    }
    const wrong = [
      ...(sameMs(row.ended_ms, end.endedAt) ? [] : ['ended_at']),
      ...(row.last_seq === end.lastSeq ? [] : ['last_seq']),
      ...(row.reason === end.reason ? [] : ['reason']),
    ];
    if (wrong.length > 0) differ(row.session_id, end.lastSeq, `session_ends row (${wrong.join(', ')})`);
  }
  const ended = new Set(ends.map((row) => row.session_id));
  for (const [session, end] of endEvents)
    if (!ended.has(session))
      report(
        session,
        end.lastSeq,
        "the fleet database's session_ends has no row for the shipped session.end event",
      );
  return problems;
}

/** Times are stored as timestamptz (microseconds) from milliseconds: equal when they round to the same ms. */
function sameMs(stored: number, ms: number): boolean {
  return Math.round(stored) === Math.round(ms);
}

/** JSON with object keys sorted: jsonb keeps its own key order, so compare by content. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
