/**
 * Space reserved on disk for the commits that carry forwarded commands (failMode closed).
 *
 * The LMDB data file is kept allocated (written with zeros) up to `reserveBytes` beyond LMDB's last page, so the
 * page writes of a commit land in blocks the filesystem already holds and cannot fail for lack of space. Every
 * queued put is charged a worst-case page count. A put `fits` while everything queued or in flight fits in the
 * allocated space: a command that fits may run at once. Beyond that, while the disk may still have room (a burst),
 * a put is `over`: it is queued apart from guaranteed commands and a command waits for its commit. Once the file
 * cannot be extended, what does not fit is refused (`full`). Zeros are written only past the allocated end, and
 * during a commit only when that lies beyond twice what the commit may add, so they never touch a page LMDB uses.
 * The bound and what it does not cover: docs/transcript.md.
 */
import { open as openFile, type FileHandle } from 'node:fs/promises';
import type { Logger } from '@agentgate/core';

/** What the reserve reads from LMDB (getStats of the environment and its databases). */
export interface LmdbSpaceStats {
  pageSize: number;
  /** the environment's last used page */
  lastPage(): number;
  /** deepest B-tree among the databases (including LMDB's main and free-page trees) */
  maxTreeDepth(): number;
}

/** `fits`: guaranteed to commit; `over`: queued apart, a command waits for its commit; `full`: refused. */
export type Admission = 'fits' | 'over' | 'full';

export interface SpaceReserveOptions {
  /** the LMDB data file */
  file: string;
  /** allocated space kept beyond LMDB's last page */
  reserveBytes: number;
  stats: LmdbSpaceStats;
  log: Logger;
  /** the store stops (full) or starts again accepting commands */
  onFullChanged(full: boolean): void;
  /** after a failed extension, try again no sooner than this (ms) */
  retryMs: number;
}

/** Zeros written per system call, and at most this much per gap between two commits (bounds the pause). */
const zeroChunk = Buffer.alloc(4 << 20);
const maxExtendPerGap = 16 << 20;
/**
 * The reserve is topped up once it is this far below `reserveBytes` (at most an eighth of it), not after every
 * commit: a commit of a few pages would otherwise cost a write of a few pages of zeros through the thread pool.
 */
const maxTopUpSlack = 1 << 20;
/** Refresh tree depths after this many commits or this many new pages. */
const depthRefreshCommits = 64;
const depthRefreshPages = 1024;
/** LMDB header sizes (mdb.c): a leaf node's header, a page's header. */
const nodeHeader = 8;
const pageHeader = 16;

export class SpaceReserve {
  private readonly pageSize: number;
  /** LMDB's largest in-leaf node; a bigger value goes to its own overflow pages (mdb.c me_nodemax) */
  private readonly nodeMax: number;
  private readonly tailBytes: number;
  /** how far below its target the reserve may fall before it is topped up */
  private readonly topUpSlack: number;
  private usedEnd = 0;
  private allocatedEnd = 0;
  /** charged for the puts queued or in the commit in flight */
  private charged = 0;
  /** pages any put may dirty besides its own overflow pages: copies and splits of its tree path */
  private perPutBytes = 0;
  private commitsSinceDepth = 0;
  private lastPageAtDepth = 0;
  private extending: Promise<void> | undefined;
  private committing = false;
  private lastExtendFailure = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Commands and new sessions are refused. */
  full = false;

  private constructor(
    private readonly fd: FileHandle,
    private readonly opts: SpaceReserveOptions,
  ) {
    this.pageSize = opts.stats.pageSize;
    this.nodeMax = ((((this.pageSize - pageHeader) / 2) | 0) & ~1) - 2;
    // Room kept for what follows refused commands: decisions, results, session ends, checkpoints.
    this.tailBytes = Math.max(opts.reserveBytes >> 4, 16 * this.pageSize);
    this.topUpSlack = Math.min(maxTopUpSlack, opts.reserveBytes >> 3);
  }

  /** Open the data file and allocate the reserve (as much of it as the filesystem allows). */
  static async open(opts: SpaceReserveOptions): Promise<SpaceReserve> {
    const fd = await openFile(opts.file, 'r+');
    const reserve = new SpaceReserve(fd, opts);
    const { size, blocks } = await fd.stat();
    reserve.measure(true);
    reserve.allocatedEnd = Math.max(size, reserve.usedEnd);
    if (blocks * 512 + reserve.pageSize < size) {
      opts.log.warn(
        'transcript: the store file has unallocated ranges; the space reserve covers what it grows into',
        {
          file: opts.file,
          size,
          allocated: blocks * 512,
        },
      );
    }
    await reserve.extend(Infinity);
    const short = reserve.usedEnd + opts.reserveBytes - reserve.allocatedEnd;
    if (short > 0) {
      opts.log.warn('transcript: the filesystem has less room than the space reserve', {
        file: opts.file,
        reserveBytes: opts.reserveBytes,
        allocatedBytes: reserve.allocatedEnd - reserve.usedEnd,
      });
    }
    return reserve;
  }

  /** Worst-case bytes a put adds to the file: its overflow pages and the pages its tree path may copy or split. */
  cost(keyLength: number, value: string | Buffer): number {
    let valueBytes: number;
    if (typeof value !== 'string') valueBytes = value.length;
    else if (value.length * 3 + keyLength + nodeHeader <= this.nodeMax) valueBytes = value.length;
    else valueBytes = Buffer.byteLength(value);
    const overflow =
      keyLength + valueBytes + nodeHeader > this.nodeMax
        ? Math.ceil((valueBytes + pageHeader) / this.pageSize)
        : 0;
    return overflow * this.pageSize + this.perPutBytes;
  }

  /**
   * Admit a put of `bytes` (from cost()); the caller queues it with that charge unless `full`. A command must also
   * leave room for its decision and the tail reserve; any other put may use the whole allocated space. O(1), no
   * system call.
   */
  admit(bytes: number, command: boolean): Admission {
    const needed = command ? bytes + this.perPutBytes + this.tailBytes : bytes;
    if (!(command && this.full) && needed <= this.room()) {
      this.charged += bytes;
      return 'fits';
    }
    if (this.lastExtendFailure !== 0 || this.full) {
      this.setFull(true);
      return 'full';
    }
    this.charged += bytes;
    return 'over';
  }

  /**
   * What an event or checkpoint with a key of `keyLength`, or a session removed (its id), may add to its commit's
   * feed record (commit-feed.ts): a range of its own, `["<session>",<seq>,<seq>],`, at most. The record's own path and page rounding are charged per
   * batch (room()).
   */
  feedBytes(keyLength: number): number {
    return keyLength + 32;
  }

  /** What `count` small records (summaries, checkpoints: no overflow pages) are charged. */
  recordBytes(count: number): number {
    return count * this.perPutBytes;
  }

  /**
   * Wraps the commit of a batch charged `charge`, then measures what the commit used. The reserve is topped up
   * beside the commit when the zeros start well past anything the commit may write (twice its worst-case growth),
   * so a stream's commits do not wait for the zeros; otherwise (a burst, a small reserve) first, with no LMDB
   * transaction running meanwhile.
   */
  async commit(charge: number, run: () => Promise<void>): Promise<void> {
    this.committing = true;
    try {
      // Zeros in flight that may reach what this commit writes finish first.
      if (this.extending && !this.clearOfZeros(charge)) await this.extending;
      if (!this.extending && this.wantsExtension()) {
        if (this.clearOfZeros(charge)) this.extendBeside();
        else await this.extend(maxExtendPerGap);
      }
      await run();
      this.measure(false);
    } finally {
      this.charged -= charge;
      this.committing = false;
      this.updateFull();
    }
  }

  /** A commit failed and the queue was dropped: nothing is charged any more. */
  reset(): void {
    this.charged = 0;
    this.measure(true);
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    if (this.extending) await this.extending;
    await this.fd.close();
  }

  /**
   * Whether a commit charged `charge` can run while zeros are written: zeros go only past the allocated end, which
   * lies beyond twice the most the commit can add to the file (its charge and its batch's own pages).
   */
  private clearOfZeros(charge: number): boolean {
    return this.usedEnd + 2 * (charge + this.batchOverhead(charge)) <= this.allocatedEnd;
  }

  /** Top the reserve up without waiting for it (a commit that is clear of the zeros runs meanwhile). */
  private extendBeside(): void {
    void this.extend(maxExtendPerGap).then(() => this.updateFull());
  }

  /** Pages a batch charged `charge` writes besides its puts' charges (see room()). */
  private batchOverhead(charge: number): number {
    return 3 * this.perPutBytes + this.pageSize + Math.ceil(charge / this.pageSize / 512) * this.pageSize;
  }

  private room(): number {
    // Per batch, LMDB also writes its free-page list and the main tree's path: one more put's worth per batch, and
    // a page per 512 pages freed; the commit feed's record adds a put and a partly filled page; two batches (in
    // flight and queued) may be outstanding.
    const charged = this.charged;
    return this.allocatedEnd - this.usedEnd - charged - 2 * this.batchOverhead(charged);
  }

  private measure(refreshDepth: boolean): void {
    const lastPage = this.opts.stats.lastPage();
    this.usedEnd = (lastPage + 1) * this.pageSize;
    // A commit beyond the reserve (a burst) wrote past the allocated end: those pages are LMDB's now, and zeros
    // go only past them.
    this.allocatedEnd = Math.max(this.allocatedEnd, this.usedEnd);
    this.commitsSinceDepth++;
    if (
      refreshDepth ||
      this.commitsSinceDepth >= depthRefreshCommits ||
      lastPage - this.lastPageAtDepth >= depthRefreshPages
    ) {
      // A tree gains a level only after its leaves multiply by its fan-out; +1 covers growth until the next refresh.
      const depth = this.opts.stats.maxTreeDepth() + 1;
      // Per level a put may copy one page and split one, plus a new root.
      this.perPutBytes = (2 * depth + 2) * this.pageSize;
      this.commitsSinceDepth = 0;
      this.lastPageAtDepth = lastPage;
    }
  }

  /**
   * The reserve past LMDB's last page. Not more for a burst: the charges are a worst case several times what
   * commits use, and zeros for them would multiply the writes; a burst beyond the reserve waits for its commits.
   */
  private target(): number {
    return this.usedEnd + this.opts.reserveBytes;
  }

  private wantsExtension(): boolean {
    if (this.stopped) return false;
    const short = this.target() - this.allocatedEnd;
    // After a failed extension, any shortfall is worth a retry: it is what ends `full`.
    if (short <= 0 || (short < this.topUpSlack && this.lastExtendFailure === 0)) return false;
    return Date.now() - this.lastExtendFailure >= this.opts.retryMs;
  }

  /**
   * Write zeros from the allocated end toward `usedEnd + reserveBytes`, at most `limit` bytes. Runs while no LMDB
   * transaction does, or beside one that is clear of the allocated end (commit()).
   */
  private extend(limit: number): Promise<void> {
    const run = async (): Promise<void> => {
      const target = Math.min(this.target(), this.allocatedEnd + limit);
      try {
        while (this.allocatedEnd < target) {
          const length = Math.min(zeroChunk.length, target - this.allocatedEnd);
          const { bytesWritten } = await this.fd.write(zeroChunk, 0, length, this.allocatedEnd);
          this.allocatedEnd += bytesWritten;
          if (bytesWritten < length) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
        }
      } catch (err) {
        const first = this.lastExtendFailure === 0 || this.full;
        this.lastExtendFailure = Date.now();
        if (first)
          this.opts.log.warn('transcript: cannot extend the space reserve', {
            err: (err as Error).message,
            allocatedBytes: this.allocatedEnd - this.usedEnd,
          });
        return;
      }
      this.lastExtendFailure = 0;
    };
    const extending = run().finally(() => {
      if (this.extending === extending) this.extending = undefined;
    });
    this.extending = extending;
    return extending;
  }

  private setFull(full: boolean): void {
    if (this.full === full) return;
    this.full = full;
    if (full) {
      this.opts.log.error('transcript: the store is full; refusing new commands and sessions', {
        file: this.opts.file,
        allocatedBytes: this.allocatedEnd - this.usedEnd,
      });
      this.startRetry();
    } else {
      this.opts.log.info('transcript: the store has room again; accepting commands');
      if (this.retryTimer) clearInterval(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.opts.onFullChanged(full);
  }

  /** Full ends once the reserve could be extended again and leaves room for commands with margin. */
  private updateFull(): void {
    if (this.full && this.lastExtendFailure === 0 && this.room() >= 2 * (this.tailBytes + this.perPutBytes))
      this.setFull(false);
  }

  /** While full and nothing commits, try to extend every retryMs (space may have been freed). */
  private startRetry(): void {
    if (this.retryTimer || this.stopped || this.opts.retryMs <= 0) return;
    this.retryTimer = setInterval(() => {
      if (this.committing || this.extending || !this.wantsExtension()) return;
      void this.extend(maxExtendPerGap).then(() => this.updateFull());
    }, this.opts.retryMs);
    this.retryTimer.unref();
  }
}
