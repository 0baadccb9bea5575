import { describe, it, expect } from '@jest/globals';
import { IoSlabPool, slabBytes } from './io-slab-pool.js';

describe('IoSlabPool', () => {
  it('hands a slab out again only after it (or a view of it) is released', () => {
    const pool = new IoSlabPool();
    const a = pool.take();
    expect(a.length).toBe(slabBytes);
    a.write('abcdef');
    const b = pool.take();
    expect(b.buffer).not.toBe(a.buffer);
    b.write('xy');
    expect(pool.slabsInUse).toBe(2);
    pool.release(a.subarray(0, 6));
    const c = pool.take();
    expect(c.buffer).toBe(a.buffer);
    expect(b.subarray(0, 2).toString()).toBe('xy');
  });

  it('ignores a second release and foreign buffers, so no slab is ever held by two events', () => {
    const pool = new IoSlabPool();
    const a = pool.take();
    pool.release(a);
    pool.release(a);
    pool.release(Buffer.alloc(10));
    const first = pool.take();
    const second = pool.take();
    expect(second.buffer).not.toBe(first.buffer);
    expect(pool.slabsInUse).toBe(2);
  });
});
