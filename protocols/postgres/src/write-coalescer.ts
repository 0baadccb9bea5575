/**
 * Coalesces the writes of one tick into one socket write. Consecutive views of the same received chunk (the
 * usual case: forwarding Bind/Execute/Sync or a run of DataRows untouched) are merged back into a single view,
 * so the common round trip costs one plain write, not a writev of many small buffers.
 */
import type { Writable } from 'node:stream';

export class WriteCoalescer {
  private pending: Buffer[] = [];
  private scheduled = false;

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
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
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
