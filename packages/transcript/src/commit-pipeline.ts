/**
 * Where queued writes go to disk, and what a failed commit does: the store stops writing at once (later events would
 * chain onto ones that never reached the disk), and a probe write every `recoveryProbeMs` finds out when the disk
 * has room again.
 */
import { statfs } from 'node:fs/promises';
import type { Logger, RecordingFailure } from '@agentgate/core';
import { dbIndex, type BatchValue, type BatchWriter, type WriteBatch } from './batch-writer.js';
import { GroupCommitQueue, type QueuedBatch } from './group-commit.js';
import type { SpaceReserve } from './space-reserve.js';

export interface CommitHooks {
  /** Called when a batch commit fails (agentgate_transcript_write_errors_total). */
  writeError?(): void;
  writableChanged?(writable: boolean): void;
}

export interface CommitPipelineOptions {
  committer: Pick<BatchWriter, 'commit'>;
  log: Logger;
  hooks: CommitHooks;
  /** named in the failure log line */
  failMode: 'closed' | 'open';
  /** After a failed commit, try a write this often (ms); 0: never. */
  recoveryProbeMs: number;
  /** A batch's values will not be read any more (pooled io buffers may be reused). */
  onSettled(batch: WriteBatch): void;
  /** Writes succeed again after a failure that began at `since` (writable is true again when this is called). */
  onResumed(since: number, reason: string): void;
  /** failMode closed: the space the commits must fit in (space-reserve.ts) */
  reserve?: SpaceReserve;
  /** least time between two commits nothing waits for (ms, group-commit.ts) */
  commitWindowMs?: number;
  /** a directory on the store's filesystem, to tell a full disk from an I/O error after a failed commit */
  storeDir?: string;
}

/** errno values that mean the file cannot grow: no space, quota, file size limit. */
const spaceErrnos = new Set([28, 122, 27]);
const spaceCodes = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

export class CommitPipeline {
  private readonly writes: GroupCommitQueue;
  private probeTimer: NodeJS.Timeout | undefined;
  /** settles once the last failure is classified */
  private classified: Promise<void> = Promise.resolve();
  private probing = false;
  private stopped = false;
  private failedAt = 0;
  /** A commit failed and no probe has succeeded since. */
  failed = false;
  /** Why the last commit failed. */
  failure: RecordingFailure = 'io-error';
  lastError: string | undefined;
  writeErrors = 0;

  constructor(private readonly opts: CommitPipelineOptions) {
    const { committer, reserve } = opts;
    const commit = reserve
      ? (batch: QueuedBatch) => reserve.commit(batch.charge, () => committer.commit(batch))
      : (batch: QueuedBatch) => committer.commit(batch);
    this.writes = new GroupCommitQueue(
      { commit },
      (err) => this.onWriteError(err),
      opts.onSettled,
      opts.commitWindowMs ?? 0,
    );
  }

  /** Puts waiting for the next commit. */
  get queued(): number {
    return this.writes.queued;
  }

  /** Puts lost in failed commits or queued while failed. */
  get dropped(): number {
    return this.writes.dropped;
  }

  /** Queue a put charged `charge` bytes of the space reserve. */
  put(db: number, key: string, value: BatchValue, charge = 0): void {
    this.writes.put(db, key, value, charge);
  }

  /** The batch the next put goes to. */
  get current(): QueuedBatch {
    return this.writes.current;
  }

  /** Later puts go to a new batch, committed after the current one. */
  seal(): void {
    this.writes.seal();
  }

  /** Settles when the current batch commits; rejects when it does not. */
  whenCommitted(): Promise<void> {
    return this.writes.whenCommitted();
  }

  /** Resolves when nothing is queued or in flight. */
  drain(): Promise<void> {
    return this.writes.drain();
  }

  /** No more probes (the store is closing). */
  stop(): void {
    this.stopped = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private onWriteError(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    const { log, hooks, failMode } = this.opts;
    this.writeErrors++;
    this.lastError = message;
    hooks.writeError?.();
    this.failure = 'io-error';
    if (!this.failed) {
      this.failed = true;
      this.failedAt = Date.now();
      hooks.writableChanged?.(false);
      this.startRecoveryProbe();
    }
    const commitError = (err as { commitError?: Promise<unknown> }).commitError;
    if (commitError && typeof commitError.then === 'function') {
      // lmdb-js rejects a batch with a generic error and puts the cause in a separate promise that must be handled.
      commitError.then(
        () => log.error('transcript: write failed', { err: message, failMode }),
        (cause: unknown) => {
          this.lastError = `${message}: ${(cause as Error)?.message ?? String(cause)}`;
          log.error('transcript: write failed', { err: this.lastError, failMode });
          return this.classify(cause);
        },
      );
      this.classified = commitError.then(
        () => undefined,
        () => this.classify(undefined),
      );
    } else {
      log.error('transcript: write failed', { err: message, failMode });
      this.classified = this.classify(err);
    }
  }

  /** Why the last commit failed, once that is known (lmdb-js reports the cause separately). */
  async failureKnown(): Promise<RecordingFailure> {
    await this.classified;
    return this.failure;
  }

  /**
   * A full disk reaches LMDB as ENOSPC, or as EIO from a short write (mdb.c "short write, filesystem full?"): for
   * EIO, the filesystem's free space decides.
   */
  private async classify(cause: unknown): Promise<void> {
    const code = (cause as { code?: unknown })?.code;
    if (
      (typeof code === 'number' && spaceErrnos.has(code)) ||
      (typeof code === 'string' && spaceCodes.has(code))
    ) {
      this.failure = 'disk-full';
      return;
    }
    if ((code !== 5 && code !== 'EIO') || this.opts.storeDir === undefined) return;
    try {
      const fs = await statfs(this.opts.storeDir);
      if (fs.bavail * fs.bsize < 1 << 20) this.failure = 'disk-full';
    } catch {
      // stays io-error
    }
  }

  private startRecoveryProbe(): void {
    if (this.probeTimer || this.stopped || this.opts.recoveryProbeMs <= 0) return;
    this.probeTimer = setInterval(() => void this.probeRecovery(), this.opts.recoveryProbeMs);
    this.probeTimer.unref();
  }

  /** Try one small write outside the (halted) queue; when it commits, resume. */
  private async probeRecovery(): Promise<void> {
    if (this.probing || !this.failed || this.stopped || this.writes.busy) return;
    this.probing = true;
    try {
      await this.opts.committer.commit({
        dbs: [dbIndex.meta],
        keys: ['probe'],
        values: [String(Date.now())],
      });
    } catch (err) {
      // Still failing. lmdb-js's separate cause promise must be handled here too.
      (err as { commitError?: Promise<unknown> }).commitError?.catch(() => undefined);
      return;
    } finally {
      this.probing = false;
    }
    if (!this.failed || this.stopped) return;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.failed = false;
    this.opts.reserve?.reset();
    this.writes.resume();
    this.opts.log.info('transcript: writes succeed again; recording resumed', {
      failedForMs: Date.now() - this.failedAt,
    });
    this.opts.hooks.writableChanged?.(true);
    this.opts.onResumed(this.failedAt, this.lastError ?? 'write failed');
  }
}
