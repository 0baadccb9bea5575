/**
 * Reads of a socket opened with `net.connect`'s `onread` option: each read lands in the free tail of a slab and is
 * handed on as a view of it, bypassing the Readable machinery (push, 'data', read-more ticks) and the fresh 64 KiB
 * buffer Node allocates and shrinks for every read. Bytes already handed on are never written over: a slab is only
 * read into past them, and a new one is taken when its tail gets short, so a view may live as long as it is needed.
 */
import type { OnReadOpts } from 'node:net';

/** One slab holds many small answers; a bulk stream fills one per read, as Node's own reads would. */
export const SLAB_BYTES = 64 * 1024;
/** A tail shorter than this is not read into (a read would return less than a typical chunk of a stream). */
const MIN_TAIL = 16 * 1024;

/** Where a read goes: true to keep reading, false to stop until the socket is resumed. */
export type ReadSink = (chunk: Buffer) => boolean;

/**
 * Shared by the protocols whose upstream socket they open themselves, and for accepted sockets moved onto one made
 * with `onread` (accepted-reads.ts); a TLS socket reads through its own layer.
 */
export class SlabReads {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;
  /** The tail handed to the socket for its next read (what `callback` is given back). */
  private current: Buffer | undefined;
  /** Set by the socket's reader once it exists; reads while there is none are kept for the next one. */
  private sink: ReadSink | undefined;
  private early: Buffer[] = [];

  /** For `net.connect({ onread })`. */
  readonly options: OnReadOpts = {
    buffer: () => this.tail(),
    callback: (bytes) => {
      this.used += bytes;
      const chunk = this.current!.subarray(0, bytes);
      if (this.sink) return this.sink(chunk);
      this.early.push(chunk);
      return false;
    },
  };

  /** Hand every read from now on to `sink`; returns what was read while no sink was attached (in order). */
  attach(sink: ReadSink): Buffer[] {
    this.sink = sink;
    const early = this.early;
    this.early = [];
    return early;
  }

  /**
   * Stop handing reads on (one phase of a connection is over, the next has no reader yet): a read that still comes
   * is kept for the next `attach`, and reading stops until the socket is resumed.
   */
  detach(): void {
    this.sink = undefined;
  }

  /** The free part of the slab, or a new slab when too little is left. */
  private tail(): Buffer {
    if (SLAB_BYTES - this.used < MIN_TAIL) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    this.current = this.slab.subarray(this.used);
    return this.current;
  }
}
