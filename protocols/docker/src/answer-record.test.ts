import { describe, expect, it } from '@jest/globals';
import type { ValueMasker } from '@agentgate/core';
import { AnswerTextMemo } from './answer-record.js';

/** Masks `secret`, counting each call that masked something (as the masking service counts masked values). */
function detector(): ValueMasker & { scans: number; masked: number } {
  const d = {
    scans: 0,
    masked: 0,
    mask(value: string): string {
      d.scans++;
      if (!value.includes('secret')) return value;
      d.masked++;
      return value.replaceAll('secret', '******');
    },
  };
  return d;
}

describe('AnswerTextMemo', () => {
  it('scans a repeated body once, and again under other detectors or for other bytes', () => {
    const memo = new AnswerTextMemo();
    const a = detector();
    const body = Buffer.from('[{"Id":"abc"}]');
    expect(memo.textOf(body, a)).toBe('[{"Id":"abc"}]');
    expect(memo.textOf(Buffer.from('[{"Id":"abc"}]'), a)).toBe('[{"Id":"abc"}]');
    expect(a.scans).toBe(1);
    expect(memo.textOf(Buffer.from('[{"Id":"abd"}]'), a)).toBe('[{"Id":"abd"}]');
    expect(a.scans).toBe(2);
    // A reload builds new detectors: the memo does not carry over.
    const b = detector();
    expect(memo.textOf(Buffer.from('[{"Id":"abd"}]'), b)).toBe('[{"Id":"abd"}]');
    expect(b.scans).toBe(1);
    expect(memo.textOf(Buffer.from('[{"Id":"abd"}]'), undefined)).toBe('[{"Id":"abd"}]');
  });

  it('masks a body with a secret every time it comes (nothing of it is kept)', () => {
    const memo = new AnswerTextMemo();
    const d = detector();
    for (let i = 0; i < 3; i++)
      expect(memo.textOf(Buffer.from('{"Env":["T=secret"]}'), d)).toBe('{"Env":["T=******"]}');
    expect(d.masked).toBe(3);
  });

  it('does not take a changed buffer for the one it kept', () => {
    const memo = new AnswerTextMemo();
    const d = detector();
    const body = Buffer.from('{"a":"plain"}');
    memo.textOf(body, d);
    body.write('{"a":"secret"}'.slice(0, body.length));
    expect(memo.textOf(body, d)).toBe('{"a":"******"');
  });
});
