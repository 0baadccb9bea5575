import { describe, expect, it } from '@jest/globals';
import { TriggerFilter, type TriggerHit } from './trigger-filter.js';

const TRIGGERS = ['://', 'xox', 'curl', 'passw', 'authorization'];

/** Every (offset, trigger) where a trigger occurs in `bytes[from, to)`, compared case-insensitively. */
function naive(bytes: Buffer, from: number, to: number): string[] {
  const found: string[] = [];
  const text = bytes.toString('latin1', 0, to).toLowerCase();
  TRIGGERS.forEach((trigger, index) => {
    for (let at = text.indexOf(trigger, from); at >= 0; at = text.indexOf(trigger, at + 1))
      found.push(`${at}:${index}`);
  });
  return found.sort();
}

function scanned(filter: TriggerFilter, bytes: Buffer, from: number, to: number): string[] {
  const hits: TriggerHit[] = [];
  filter.scan(bytes, from, to, hits);
  return [...new Set(hits.map((hit) => `${hit.at}:${hit.trigger}`))].sort();
}

describe('trigger filter over bytes', () => {
  const filter = new TriggerFilter(TRIGGERS);

  it('finds every trigger at every position, buffer alignment and scan bounds', () => {
    for (const trigger of ['://', 'XoX', 'Curl', 'PASSW', 'Authorization']) {
      for (let at = 0; at < 12; at++) {
        const text = `${'.'.repeat(at)}${trigger}${'.'.repeat(9)}`;
        // Copied behind 0–3 bytes of padding: the scan reads aligned words of the underlying memory.
        for (let pad = 0; pad < 4; pad++) {
          const backing = Buffer.alloc(pad + text.length + 4, 0x2e);
          backing.write(text, pad, 'latin1');
          const bytes = backing.subarray(pad, pad + text.length);
          for (let from = 0; from <= at + 1; from++) {
            for (const to of [
              at + trigger.length - 1,
              at + trigger.length,
              at + trigger.length + 1,
              text.length,
            ]) {
              expect(scanned(filter, bytes, from, to)).toEqual(naive(bytes, from, to));
            }
          }
        }
      }
    }
  });

  it('agrees with a plain search over random bytes with triggers sprinkled in', () => {
    const bytes = Buffer.alloc(64 * 1024 + 3);
    let seed = 7;
    for (let i = 0; i < bytes.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    for (let at = 11; at + 16 < bytes.length; at += 997)
      bytes.write(TRIGGERS[at % TRIGGERS.length]!, at, 'latin1');
    for (const offset of [0, 1, 2, 3]) {
      const view = bytes.subarray(offset);
      expect(scanned(filter, view, 0, view.length)).toEqual(naive(view, 0, view.length));
      expect(scanned(filter, view, 5, view.length - 7)).toEqual(naive(view, 5, view.length - 7));
    }
  });
});

describe('trigger filter over text', () => {
  const filter = new TriggerFilter(TRIGGERS);

  it('occursInText says whether scanText finds anything, at every position and in any case', () => {
    const texts = ['', 'ab', 'cur', 'url', 'xo', 'SELECT abalance FROM pgbench_accounts WHERE aid = 1;'];
    for (const trigger of ['://', 'XoX', 'Curl', 'PASSW', 'Authorization', 'pass', 'authorizatio'])
      for (let at = 0; at < 6; at++) texts.push(`${'.'.repeat(at)}${trigger}${'é'.repeat(at % 3)}`);
    texts.push('ĀcurlĀ', 'c\u0175rl', 'curĺ');
    for (const text of texts) {
      const hits: TriggerHit[] = [];
      filter.scanText(text, hits);
      const expected = TRIGGERS.some((t) => text.toLowerCase().includes(t));
      expect([text, hits.length > 0]).toEqual([text, expected]);
      expect([text, filter.occursInText(text)]).toEqual([text, expected]);
    }
  });

  it('agrees with a plain search over long text, which is probed as bytes, at every position and length', () => {
    // Units above 0xff whose low bytes spell a trigger ("curl", "xox") must not count as one.
    const disguised = ['\u0163\u0175\u0172\u016c', '\u0178\u016f\u0178', '\u0143url'];
    for (const trigger of ['://', 'XoX', 'Curl', 'PASSW', 'Authorization', ...disguised]) {
      for (const length of [47, 48, 49, 64, 65, 300]) {
        for (let at = 0; at + trigger.length <= length; at += at < 8 || at > length - 12 ? 1 : 7) {
          for (const filler of ['.', 'é', '\u0100']) {
            const text = filler.repeat(at) + trigger + filler.repeat(length - at - trigger.length);
            const expected = TRIGGERS.some((t) => text.toLowerCase().includes(t));
            const hits: TriggerHit[] = [];
            filter.scanText(text, hits);
            expect([text, hits.length > 0, filter.occursInText(text)]).toEqual([text, expected, expected]);
            expect(
              hits.every((hit) => text.slice(hit.at).toLowerCase().startsWith(TRIGGERS[hit.trigger]!)),
            ).toBe(true);
          }
        }
      }
    }
  });

  it('finds every trigger in text longer than the scratch buffer, and after a long text was probed', () => {
    const long = 'x'.repeat(70_000) + 'PassW' + 'y'.repeat(9);
    expect(filter.occursInText(long)).toBe(true);
    expect(filter.occursInText('z'.repeat(60_000) + 'curl')).toBe(true);
    expect(filter.occursInText('z'.repeat(100) + 'cur')).toBe(false);
  });
});
