import { describe, it, expect } from '@jest/globals';
import { SourcePenalties, sourceKey } from './source-penalties.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('SourcePenalties', () => {
  it('lets a few failures pass, then doubles the delay with each further one up to the maximum', () => {
    const c = clock();
    const p = new SourcePenalties(2_000, c.now);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      delays.push(p.delayNow('192.0.2.7'));
      p.failed('192.0.2.7');
    }
    expect(delays).toEqual([0, 0, 0, 250, 500, 1000, 2000, 2000]);
    expect(p.delayNow('192.0.2.8')).toBe(0);
  });

  it('wears off when the failures stop', () => {
    const c = clock();
    const p = new SourcePenalties(10_000, c.now);
    for (let i = 0; i < 6; i++) p.failed('192.0.2.7');
    expect(p.delayNow('192.0.2.7')).toBe(2000);
    c.advance(60_000); // half the score: 3 failures
    expect(p.delayNow('192.0.2.7')).toBe(250);
    c.advance(60_000);
    expect(p.delayNow('192.0.2.7')).toBe(0);
    c.advance(10 * 60_000);
    for (let i = 0; i < 3; i++) p.failed('192.0.2.7');
    expect(p.delayNow('192.0.2.7')).toBe(250);
  });

  it('puts the attempts of one source in line, over all its connections, and refuses a line too long', () => {
    const c = clock();
    const p = new SourcePenalties(1_000, c.now);
    for (let i = 0; i < 10; i++) p.failed('192.0.2.7');
    expect(p.reserve('192.0.2.7')).toEqual({ waitMs: 1000 });
    expect(p.reserve('192.0.2.7')).toEqual({ waitMs: 2000 });
    expect(p.reserve('192.0.2.7')).toEqual({ waitMs: 3000 });
    expect(p.reserve('192.0.2.7')).toEqual({ waitMs: 4000 });
    expect(p.reserve('192.0.2.7')).toEqual({ refused: true });
    c.advance(4000);
    expect(p.reserve('192.0.2.7')).toEqual({ waitMs: 1000 });
    expect(p.reserve('198.51.100.1')).toEqual({ waitMs: 0 });
  });

  it('is off with a maximum of 0', () => {
    const p = new SourcePenalties(0);
    for (let i = 0; i < 20; i++) p.failed('192.0.2.7');
    expect(p.reserve('192.0.2.7')).toEqual({ waitMs: 0 });
  });

  it('counts IPv6 sources per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8:1:2::99')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:0db8:0001:0002:0:0:0:5')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
    // A fixed clock: with the real one the score decays between the calls and 4 failures count as 3.99.
    const p = new SourcePenalties(10_000, clock().now);
    for (let i = 0; i < 4; i++) p.failed(`2001:db8:1:2::${i}`);
    expect(p.delayNow('2001:db8:1:2:ffff::9')).toBe(500);
  });
});
