/**
 * Reusable buffers for the bytes of `io` events. A busy relay fills one value every 64 KiB; a fresh allocation
 * each time drives V8 into frequent major collections at SSH speeds (measurements: docs/performance.md,
 * "Transcript store" and "SSH").
 *
 * A slab is in use from `take` until the transaction holding it settles: lmdb-js reads the bytes from the
 * Buffer's own memory on its writer thread, so a slab must never be handed out again before then.
 */

/**
 * A flush at `ioMaxBytes` plus the SSH packet (at most 32 KiB) that crossed it; a larger chunk (a Docker stream's
 * 64 KiB socket reads after 32 KiB pending) goes to the next event.
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

  /** A slab of `slabBytes` to fill; give it back with `release` (of it or of any view of it). */
  take(): Buffer {
    const slab = this.free.pop() ?? Buffer.allocUnsafeSlow(slabBytes).buffer;
    this.inUse.add(slab);
    return Buffer.from(slab, 0, slabBytes);
  }

  /** The value's transaction settled (or it was never queued): its slab may be reused. Other Buffers are ignored. */
  release(value: Buffer): void {
    const slab = value.buffer;
    if (!this.inUse.delete(slab)) return;
    if (this.free.length < maxFreeSlabs) this.free.push(slab);
  }

  /** Slabs currently held by pending io, queued or in-flight transactions (tests). */
  get slabsInUse(): number {
    return this.inUse.size;
  }
}
