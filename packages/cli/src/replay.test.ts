import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import type { TranscriptEvent } from '@agentgate/core';
import type { SessionSummary } from '@agentgate/transcript';
import { replaySession } from './replay.js';

const event = (seq: number, type: string, body: Record<string, unknown>): TranscriptEvent =>
  ({ session: 'S', seq, ts: 1000 + seq, type, prev: '', hash: '', ...body }) as TranscriptEvent;

const summary: SessionSummary = {
  id: 'S',
  listener: 'db',
  protocol: 'postgres',
  identity: 'devin',
  groups: [],
  client: {},
  startedAt: 1000,
  endedAt: 1010,
  commands: 4,
  denied: 2,
};

describe('replay', () => {
  it('tells each decision after its command, whether the command carries it or an older store has its own event', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await replaySession(
      summary,
      [
        event(1, 'command', {
          text: 'DROP TABLE a',
          decision: { action: 'deny', rule: 'no-drops', reason: 'why' },
        }),
        event(2, 'command', { text: 'SELECT 1', decision: { action: 'allow' } }),
        event(3, 'command', { text: 'DROP TABLE b' }),
        event(4, 'decision', { commandSeq: 3, action: 'deny', rule: 'no-drops' }),
        event(5, 'command', { text: 'DELETE FROM t', decision: { action: 'approve', rule: 'review' } }),
      ],
      { speed: 0, out },
    );
    const lines = text
      .split('\n')
      .filter((l) => l.includes('SQL') || l.includes('->'))
      .map((l) => l.trim().replace(/^\+\S+\s+/, ''));
    expect(lines).toEqual([
      'SQL  DROP TABLE a',
      '-> DENIED by rule no-drops (why)',
      'SQL  SELECT 1',
      '-> allowed',
      'SQL  DROP TABLE b',
      '-> DENIED by rule no-drops',
      'SQL  DELETE FROM t',
      '-> held for approval by rule review',
    ]);
  });
});
