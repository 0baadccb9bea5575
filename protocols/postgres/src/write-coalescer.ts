/**
 * Coalesces the writes of one tick into one socket write. Consecutive views of the same received chunk (the
 * usual case: forwarding Bind/Execute/Sync or a run of DataRows untouched) are merged back into a single view,
 * so the common round trip costs one plain write, not a writev of many small buffers.
 */
import type { Writable } from 'node:stream';

export class WriteCoalescer {
  private pending: Buffer[] = [];
  private scheduled = false;
  private held = false;

  constructor(
    private readonly target: () => Writable | undefined,
    /** Called when the target's buffer is full: stop the source until it drains. */
    private readonly onBackpressure: () => void,
  ) {}

  write(buf: Buffer): void {
    const n = this.pending.length;
    const last = n > 0 ? this.pending[n - 1]! : undefined;
    if (
      last !== undefined &&
      last.buffer === buf.buffer &&
      last.byteOffset + last.length === buf.byteOffset
    ) {
      this.pending[n - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + buf.length);
    } else this.pending.push(buf);
    this.schedule();
  }

  /**
   * While held, writes wait for the release (or an explicit flush) instead of going out at the end of the tick,
   * so they can join the writes that follow.
   */
  hold(held: boolean): void {
    this.held = held;
    if (!held && this.pending.length > 0) this.schedule();
  }

  /** Lift the hold and write what is pending now, without waiting for the end of the tick. */
  releaseNow(): void {
    this.held = false;
    this.flush();
  }

  private schedule(): void {
    if (this.scheduled || this.held) return;
    this.scheduled = true;
    process.nextTick(this.flushScheduled);
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    if (!this.held) this.flush();
  };

  /** Write what is pending now, held or not. */
  readonly flush = (): void => {
    const bufs = this.pending;
    if (bufs.length === 0) return;
    this.pending = [];
    const target = this.target();
    if (!target || target.destroyed) return;
    let ok = true;
    if (bufs.length === 1) ok = target.write(bufs[0]!);
    else {
      target.cork();
      for (const buf of bufs) ok = target.write(buf);
      target.uncork();
    }
    if (!ok) this.onBackpressure();
  };
}
