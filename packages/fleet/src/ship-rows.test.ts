import { describe, expect, it } from '@jest/globals';
import type { TranscriptEvent } from '@agentgate/core';
import type { FeedBatch, FeedEvent } from '@agentgate/transcript';
import { shipRows } from './ship-rows.js';

const feedEvent = (seq: number, type: string, body: Record<string, unknown>): FeedEvent => {
  const event = { session: 'S', seq, ts: 1000 + seq, type, prev: '', ...body } as unknown as TranscriptEvent;
  return {
    position: 1,
    session: 'S',
    seq,
    type,
    ts: event.ts,
    stored: JSON.stringify(event),
    data: undefined,
    event,
  };
};

describe('fleet rows', () => {
  it('flags denials recorded in either shape: in the command, or as an older store’s decision event', () => {
    const batch: FeedBatch = {
      position: 1,
      commits: [],
      checkpoints: [],
      removed: [],
      events: [
        feedEvent(0, 'command', { text: 'DROP TABLE a', decision: { action: 'deny', rule: 'no-drops' } }),
        feedEvent(1, 'command', { text: 'SELECT "deny"', decision: { action: 'allow' } }),
        feedEvent(2, 'command', { text: 'DROP TABLE b' }),
        feedEvent(3, 'decision', { commandSeq: 2, action: 'deny' }),
        feedEvent(4, 'command', { text: 'SELECT 1' }),
        feedEvent(5, 'decision', { commandSeq: 4, action: 'allow' }),
        feedEvent(6, 'command', { text: 'config reload', kind: 'admin', detail: {} }),
        feedEvent(7, 'approval.decided', { approvalId: 'ap', outcome: 'rejected' }),
      ],
    };
    const rows = shipRows(batch).events;
    expect(rows.type).toEqual([
      'command',
      'command',
      'command',
      'decision',
      'command',
      'decision',
      'command',
      'approval.decided',
    ]);
    expect(rows.denied).toEqual([true, false, false, true, false, false, false, true]);
  });
});
