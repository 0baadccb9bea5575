import { describe, it, expect } from '@jest/globals';
import type { TranscriptEvent } from '@agentgate/core';
import { decodeEvent } from './event-codec.js';
import { approvalIdOf, isDeniedDecision, parseJson } from './stored-records.js';

function event(fields: Record<string, unknown>): TranscriptEvent {
  return { session: 'S', seq: 1, ts: 1, type: 'approval.requested', prev: '', hash: '', ...fields };
}

describe('stored records', () => {
  it('counts a decision as denied by its action', () => {
    expect(isDeniedDecision({ commandSeq: 1, action: 'deny' })).toBe(true);
    expect(isDeniedDecision({ commandSeq: 1, action: 'allow' })).toBe(false);
    expect(isDeniedDecision({ commandSeq: 1, action: 'approve' })).toBe(false);
  });

  it('reads the approval id, in the previous release’s spelling too once decoded', () => {
    expect(approvalIdOf(event({ approvalId: 'ap-1' }))).toBe('ap-1');
    const old = '{"session":"S","seq":1,"ts":1,"type":"approval.decided","prev":"","id":"ap-2","hash":""}';
    expect(approvalIdOf(decodeEvent(old))).toBe('ap-2');
  });

  it('parses JSON records and gives undefined for damaged ones', () => {
    expect(parseJson<{ a: number }>('{"a":1}')).toEqual({ a: 1 });
    expect(parseJson('{"a":')).toBeUndefined();
  });
});
