import { describe, it, expect } from '@jest/globals';
import type { TranscriptEvent } from '@agentgate/core';
import { decodeEvent } from './event-codec.js';
import { approvalIdOf, isDeniedDecision, parseJson } from './stored-records.js';

function event(fields: Record<string, unknown>): TranscriptEvent {
  return { session: 'S', seq: 1, ts: 1, type: 'approval.requested', prev: '', hash: '', ...fields };
}

describe('stored records', () => {
  it('counts a decision as denied by its action, in a command event or an older decision event', () => {
    for (const action of ['deny', 'allow', 'approve']) {
      const denied = action === 'deny';
      expect(isDeniedDecision({ type: 'command', text: 'x', decision: { action } })).toBe(denied);
      expect(isDeniedDecision({ type: 'decision', commandSeq: 1, action })).toBe(denied);
    }
    // An administrative command is not decided; other events name no decision even with an `action` field.
    expect(isDeniedDecision({ type: 'command', text: 'config reload', kind: 'admin' })).toBe(false);
    expect(isDeniedDecision({ type: 'result', action: 'deny' })).toBe(false);
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
