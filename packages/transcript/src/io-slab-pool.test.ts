import { describe, it, expect } from '@jest/globals';
import { IoSlabPool, slabBytes } from './io-slab-pool.js';

describe('IoSlabPool', () => {
  it('joins chunks into a slab and hands the slab out again only after release', () => {
    const pool = new IoSlabPool();
    const a = pool.join(Buffer.from('abc'), [Buffer.from('de'), Buffer.from('f')], 6);
    expect(a.toString()).toBe('abcdef');
    const b = pool.join(Buffer.from('x'), [Buffer.from('y')], 2);
    expect(b.buffer).not.toBe(a.buffer);
    expect(pool.slabsInUse).toBe(2);
    pool.release(a);
    const c = pool.join(Buffer.from('1'), [Buffer.from('2')], 2);
    expect(c.buffer).toBe(a.buffer);
    expect(b.toString()).toBe('xy');
  });

  it('ignores a second release and foreign buffers, so no slab is ever held by two events', () => {
    const pool = new IoSlabPool();
    const a = pool.join(Buffer.from('a'), [Buffer.from('b')], 2);
    pool.release(a);
    pool.release(a);
    pool.release(Buffer.alloc(10));
    const first = pool.join(Buffer.from('c'), [Buffer.from('d')], 2);
    const second = pool.join(Buffer.from('e'), [Buffer.from('f')], 2);
    expect(second.buffer).not.toBe(first.buffer);
    expect(pool.slabsInUse).toBe(2);
  });

  it('falls back to a plain concat for a join larger than a slab', () => {
    const pool = new IoSlabPool();
    const half = Buffer.alloc(slabBytes / 2 + 1, 7);
    const joined = pool.join(half, [half], half.length * 2);
    expect(joined.length).toBe(half.length * 2);
    expect(pool.slabsInUse).toBe(0);
    pool.release(joined);
    expect(pool.slabsInUse).toBe(0);
  });
});
