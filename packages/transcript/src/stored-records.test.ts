import { describe, it, expect } from '@jest/globals';
import type { TranscriptEvent } from '@agentgate/core';
import { approvalIdOf, isDeniedDecision, parseJson } from './stored-records.js';

function event(fields: Record<string, unknown>): TranscriptEvent {
  return { session: 'S', seq: 1, ts: 1, type: 'approval.requested', prev: '', hash: '', ...fields };
}

describe('stored records', () => {
  it('counts a decision as denied however the gate words the refusal', () => {
    expect(isDeniedDecision({ allowed: false })).toBe(true);
    expect(isDeniedDecision({ action: 'deny' })).toBe(true);
    expect(isDeniedDecision({ decision: 'deny' })).toBe(true);
    expect(isDeniedDecision({ allowed: true, action: 'allow' })).toBe(false);
    expect(isDeniedDecision({ action: 'approve' })).toBe(false);
  });

  it('reads the approval id under either spelling', () => {
    expect(approvalIdOf(event({ approvalId: 'ap-1' }))).toBe('ap-1');
    expect(approvalIdOf(event({ id: 'ap-2' }))).toBe('ap-2');
    expect(approvalIdOf(event({ approvalId: 'ap-3', id: 'other' }))).toBe('ap-3');
    expect(approvalIdOf(event({ id: 42 }))).toBe('42');
  });

  it('parses JSON records and gives undefined for damaged ones', () => {
    expect(parseJson<{ a: number }>('{"a":1}')).toEqual({ a: 1 });
    expect(parseJson('{"a":')).toBeUndefined();
  });
});
