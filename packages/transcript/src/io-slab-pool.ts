/**
 * Reusable buffers for the bytes of `io` events. A busy relay joins two or more chunks into one value every
 * 64 KiB; a fresh `Buffer.concat` allocation each time drives V8 into frequent major collections at SSH speeds
 * (measurements: docs/performance.md, "Transcript store").
 *
 * A slab is in use from `join` until the transaction holding it settles: lmdb-js reads the bytes from the
 * Buffer's own memory on its writer thread, so a slab must never be handed out again before then.
 */

/**
 * A flush at `ioMaxBytes` plus the SSH packet (at most 32 KiB) that crossed it; a larger join (a Docker stream's
 * 64 KiB socket reads) falls back to a plain concat.
 */
export const slabBytes = 96 * 1024;
/**
 * Slabs kept for reuse: about as many io events as wait in the queue and the in-flight commit at full speed, so a
 * settle does not let go of slabs the next events need. At most 24 MiB stays held after a burst.
 */
const maxFreeSlabs = 256;

export class IoSlabPool {
  private readonly free: ArrayBufferLike[] = [];
  /** Slabs handed out and not yet released: guards against a double release handing one slab to two events. */
  private readonly inUse = new Set<ArrayBufferLike>();

  /** `first` and `rest` as one Buffer of `bytes` bytes: a slab when they fit in one, else a plain concat. */
  join(first: Buffer, rest: readonly Buffer[], bytes: number): Buffer {
    if (bytes > slabBytes) return Buffer.concat([first, ...rest], bytes);
    const slab = this.free.pop() ?? Buffer.allocUnsafeSlow(slabBytes).buffer;
    this.inUse.add(slab);
    const out = Buffer.from(slab, 0, bytes);
    let offset = first.copy(out, 0);
    for (const chunk of rest) offset += chunk.copy(out, offset);
    return out;
  }

  /** The value's transaction settled (or it was never queued): its slab may be reused. Other Buffers are ignored. */
  release(value: Buffer): void {
    const slab = value.buffer;
    if (!this.inUse.delete(slab)) return;
    if (this.free.length < maxFreeSlabs) this.free.push(slab);
  }

  /** Slabs currently held by queued or in-flight transactions (tests). */
  get slabsInUse(): number {
    return this.inUse.size;
  }
}
