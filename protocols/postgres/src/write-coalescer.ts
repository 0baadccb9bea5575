/**
 * Coalesces the writes of one tick into one socket write. Consecutive views of the same received chunk (the
 * usual case: forwarding Bind/Execute/Sync or a run of DataRows untouched) are merged back into a single view,
 * so the common round trip costs one plain write, not a writev of many small buffers.
 */
import type { Writable } from 'node:stream';

export class WriteCoalescer {
  /** Runs closed before the current one, in order (usually none: a tick's writes are mostly one run). */
  private pending: Buffer[] = [];
  /**
   * The first view of the latest run of writes, each continuing the last in the same chunk; the run is made one
   * view only when it is closed, not once per write that extends it.
   */
  private run: Buffer | undefined;
  private runLength = 0;
  private scheduled = false;
  private held = false;

  constructor(
    private readonly target: () => Writable | undefined,
    /** Called when the target's buffer is full: stop the source until it drains. */
    private readonly onBackpressure: () => void,
  ) {}

  write(buf: Buffer): void {
    const run = this.run;
    if (
      run !== undefined &&
      run.buffer === buf.buffer &&
      run.byteOffset + this.runLength === buf.byteOffset
    ) {
      this.runLength += buf.length;
    } else {
      if (run !== undefined) this.pending.push(this.closeRun(run));
      this.run = buf;
      this.runLength = buf.length;
    }
    this.schedule();
  }

  /** The current run as one buffer: its first view, or one view over all of it when writes continued it. */
  private closeRun(run: Buffer): Buffer {
    return this.runLength === run.length ? run : Buffer.from(run.buffer, run.byteOffset, this.runLength);
  }

  /**
   * While held, writes wait for the release (or an explicit flush) instead of going out at the end of the tick,
   * so they can join the writes that follow.
   */
  hold(held: boolean): void {
    this.held = held;
    if (!held && this.run !== undefined) this.schedule();
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
    const run = this.run;
    if (run === undefined) return;
    const last = this.closeRun(run);
    this.run = undefined;
    const target = this.target();
    let ok: boolean;
    if (this.pending.length === 0) {
      if (!target || target.destroyed) return;
      ok = target.write(last);
    } else {
      const bufs = this.pending;
      this.pending = [];
      if (!target || target.destroyed) return;
      target.cork();
      for (const buf of bufs) target.write(buf);
      ok = target.write(last);
      target.uncork();
    }
    if (!ok) this.onBackpressure();
  };
}
