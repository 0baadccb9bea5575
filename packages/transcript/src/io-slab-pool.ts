/**
 * Reusable buffers for the bytes of `io` events.
 *
 * A busy relay flushes an io event every 64 KiB, usually from two or more chunks that must be joined into one
 * value for the `iodata` db. `Buffer.concat` allocates a fresh ArrayBuffer for each: at SSH speeds that is
 * thousands of external allocations a second, and V8 answers the external-memory growth with frequent major
 * collections. Measured on the 2-core reference machine with the OpenSSH client, 200 MB each way through the
 * gateway, six transfers each, interleaved: the gateway process used 4.4–7.0 ms of CPU per MB (median ~5.2) with
 * slabs against 6.1–8.2 (median ~7.0) with `Buffer.concat`, and moved 141–201 MB/s against 133–170.
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
 * Slabs kept for reuse. During a 150 MB/s transfer, ~240 io events wait in the queue or the in-flight commit
 * (measured): with a pool smaller than that, every settle let slabs go and the next ones were new allocations,
 * which cost more than `Buffer.concat` did. 24 MiB at most stays held after such a burst.
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
