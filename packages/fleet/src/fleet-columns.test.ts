import { describe, expect, it } from '@jest/globals';
import { columnProblems, type EndColumns, type EventColumns, type SessionColumns } from './fleet-columns.js';

const stored = (seq: number, type: string, body: Record<string, unknown>): string =>
  JSON.stringify({ session: 'S', seq, ts: 1000 + seq, type, prev: '', ...body });

/** One ended session as the shipper writes it: start, a denied command, end. */
function shipped(): { events: EventColumns[]; sessions: SessionColumns[]; ends: EndColumns[] } {
  const events: EventColumns[] = [
    [
      0,
      'session.start',
      {
        listener: 'db',
        protocol: 'postgres',
        identity: 'devin',
        groups: ['agents'],
        client: { addr: '10.0.0.1', port: 5 },
        startedAt: 1000,
      },
      false,
    ],
    [1, 'command', { text: 'DROP TABLE a', decision: { action: 'deny', rule: 'no-drops' } }, true],
    [2, 'session.end', { reason: 'client closed' }, false],
  ].map(([seq, type, body, denied]) => ({
    session_id: 'S',
    seq: seq as number,
    stored: stored(seq as number, type as string, body as Record<string, unknown>),
    ts_ms: 1000 + (seq as number),
    type: type as string,
    denied: denied as boolean,
  }));
  return {
    events,
    // jsonb gives the client's keys back in its own order
    sessions: [
      {
        session_id: 'S',
        listener: 'db',
        protocol: 'postgres',
        identity: 'devin',
        groups: ['agents'],
        client: { port: 5, addr: '10.0.0.1' },
        started_ms: 1000,
      },
    ],
    ends: [{ session_id: 'S', ended_ms: 1002, last_seq: 2, reason: 'client closed' }],
  };
}

describe("verify --fleet's column check", () => {
  it('finds nothing in rows as the shipper wrote them', () => {
    const { events, sessions, ends } = shipped();
    expect(columnProblems(events, sessions, ends)).toEqual([]);
  });

  it('names a changed identity, a hidden denial, a rewritten end and an end row that ends nothing', () => {
    const { events, sessions, ends } = shipped();
    sessions[0]!.identity = 'alice';
    events[1]!.denied = false;
    ends[0]!.reason = 'idle timeout';
    expect(columnProblems(events, sessions, ends).map((p) => [p.seq, p.detail])).toEqual([
      [1, "the fleet database's events row (denied) differs from the shipped event it was read off"],
      [0, "the fleet database's sessions row (identity) differs from the shipped event it was read off"],
      [2, "the fleet database's session_ends row (reason) differs from the shipped event it was read off"],
    ]);
    // An open session made to look ended at its last command; an end event whose row was removed.
    const open = shipped();
    open.events.pop();
    expect(columnProblems(open.events, open.sessions, [{ ...open.ends[0]!, last_seq: 1 }])).toMatchObject([
      { seq: 1, kind: 'column-mismatch', detail: expect.stringContaining('not its session.end') },
    ]);
    const endless = shipped();
    expect(columnProblems(endless.events, endless.sessions, [])).toMatchObject([
      {
        seq: 2,
        kind: 'column-mismatch',
        detail: expect.stringContaining('no row for the shipped session.end'),
      },
    ]);
  });
});
