import { describe, expect, it } from '@jest/globals';
import type { TranscriptEvent } from '@agentgate/core';
import type { ApprovalEntry } from './approvals-feed.js';
import { liveEventFragment } from './pages/live.js';
import { RecentCommands } from './recent-commands.js';
import { buildTimeline, type CommandItem } from './timeline.js';

const event = (seq: number, type: string, body: Record<string, unknown>): TranscriptEvent =>
  ({ session: 'S', seq, ts: 1_796_500_000_000 + seq, type, prev: '', hash: '', ...body }) as TranscriptEvent;

/** One session in both shapes: decisions inside the commands (today), and as events of their own (older stores). */
const events: TranscriptEvent[] = [
  event(0, 'session.start', { listener: 'db', protocol: 'postgres' }),
  event(1, 'command', { text: 'DROP TABLE a', decision: { action: 'deny', rule: 'no-drops', reason: 'r' } }),
  event(2, 'command', { text: 'SELECT 1', decision: { action: 'allow' } }),
  event(3, 'command', { text: 'DROP TABLE b' }),
  event(4, 'decision', { commandSeq: 3, action: 'deny', rule: 'no-drops', matched: ['no-drops'] }),
  event(5, 'command', { text: 'SELECT 2' }),
  event(6, 'decision', { commandSeq: 5, action: 'allow' }),
  event(7, 'command', { text: 'DELETE FROM t', decision: { action: 'approve', rule: 'review' } }),
  event(8, 'approval.requested', { approvalId: 'ap-1', rule: 'review' }),
];

describe('decisions of both recorded shapes', () => {
  it('the session timeline gives each command its decision, and shows no decision line of its own', () => {
    const items = buildTimeline(events).items;
    const commands = items.filter((i): i is CommandItem => i.kind === 'command');
    expect(commands.map((c) => [c.command['text'], c.decision])).toEqual([
      ['DROP TABLE a', { action: 'deny', rule: 'no-drops', reason: 'r', commandSeq: 1 }],
      ['SELECT 1', { action: 'allow', commandSeq: 2 }],
      ['DROP TABLE b', { commandSeq: 3, action: 'deny', rule: 'no-drops', matched: ['no-drops'] }],
      ['SELECT 2', { commandSeq: 5, action: 'allow' }],
      ['DELETE FROM t', { action: 'approve', rule: 'review', commandSeq: 7 }],
    ]);
    expect(items.some((i) => i.kind === 'event' && i.event.type === 'decision')).toBe(false);
  });

  it('the live page shows a decision with its command, or on its own line from an older store', () => {
    const fragment = (e: TranscriptEvent): string => liveEventFragment({ kind: 'event', event: e }).value;
    const folded = fragment(events[1]!);
    expect(folded).toContain('<pre class="code">DROP TABLE a</pre>');
    expect(folded).toContain('<span class="badge deny">deny</span> <code>no-drops</code>');
    const older = fragment(events[4]!);
    expect(older).toContain('class="item decision"');
    expect(older).toContain('<span class="badge deny">deny</span> <code>no-drops</code>');
    expect(fragment(events[3]!)).not.toContain('badge deny');
  });

  it("an approval card's recent commands carry their actions", () => {
    const recent = new RecentCommands({ events: () => events });
    const entry = { id: 'ap-1', session: { id: 'S' } } as unknown as ApprovalEntry;
    expect(recent.of(entry).map((c) => [c.text, c.action])).toEqual([
      ['DROP TABLE a', 'deny'],
      ['SELECT 1', 'allow'],
      ['DROP TABLE b', 'deny'],
      ['SELECT 2', 'allow'],
    ]);
  });
});
