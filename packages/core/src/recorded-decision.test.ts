import { describe, expect, it } from '@jest/globals';
import { recordedDecision, recordsDenial } from './recorded-decision.js';

const event = (seq: number, type: string, body: Record<string, unknown>) => ({ seq, type, ...body });

describe('a recorded decision, in either shape', () => {
  it('reads it from a command event, naming the command by its own seq', () => {
    const command = event(4, 'command', {
      text: 'x',
      decision: { action: 'deny', rule: 'r', reason: 'why' },
    });
    expect(recordedDecision(command)).toEqual({ action: 'deny', rule: 'r', reason: 'why', commandSeq: 4 });
    expect(recordsDenial('command', command)).toBe(true);
  });

  it('reads an older store’s decision event, without its header fields', () => {
    const decision = event(5, 'decision', {
      commandSeq: 4,
      action: 'allow',
      matched: ['a'],
      hash: 'h',
      prev: 'p',
    });
    expect(recordedDecision(decision)).toEqual({ commandSeq: 4, action: 'allow', matched: ['a'] });
    expect(recordsDenial('decision', decision)).toBe(false);
    expect(recordsDenial('decision', { commandSeq: 4, action: 'deny' })).toBe(true);
  });

  it('finds none in an undecided command (administrative) or in any other event', () => {
    expect(recordedDecision(event(1, 'command', { text: 'config reload', kind: 'admin' }))).toBeUndefined();
    expect(
      recordedDecision(event(1, 'command', { text: 'x', decision: { action: 'maybe' } })),
    ).toBeUndefined();
    expect(recordedDecision(event(2, 'result', { action: 'deny', commandSeq: 1 }))).toBeUndefined();
    expect(recordsDenial('result', { action: 'deny' })).toBe(false);
    expect(recordsDenial('command', { text: 'x' })).toBe(false);
  });
});
