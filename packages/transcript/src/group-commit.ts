/**
 * Group commit for the transcript store: puts are queued synchronously and committed as one LMDB transaction at a
 * time, each holding everything queued since the previous one started, so batches grow with load.
 *
 * Why one transaction in flight: when a commit fails (full disk), nothing queued after it has been written, so
 * what is on disk is always a clean prefix of every session's chain. lmdb-js's own event-turn batching would
 * pipeline transactions (a later one can succeed after an earlier one failed, leaving gaps) and, on failure,
 * leaves an internal promise rejected and unhandled, which crashes the process.
 *
 * Commits start at most once per window (`windowMs`) while nothing waits for them: a session issuing statements one
 * after another otherwise starts a transaction (and its fsync, and the space reserve's top-up) every few statements.
 * Anything that waits (whenCommitted, drain) starts the commit at once. What a crash can lose grows by the window
 * (docs/transcript.md).
 *
 * A batch can be sealed: later puts go to the next batch, committed after it (the space reserve keeps puts it
 * cannot vouch for out of a batch that carries guaranteed commands). A batch is three parallel arrays rather than a
 * tuple per put: no allocation per append besides the strings.
 */
import type { BatchValue, WriteBatch } from './batch-writer.js';

export interface QueuedBatch extends WriteBatch {
  readonly dbs: number[];
  readonly keys: string[];
  readonly values: BatchValue[];
  /** space charged for its puts (space-reserve.ts) */
  charge: number;
  /** it carries a command admitted on the space reserve's guarantee */
  guaranteed: boolean;
  /** settled when it commits or is dropped; made on demand (whenCommitted) */
  done?: { promise: Promise<void>; resolve(): void; reject(err: unknown): void };
}

export interface BatchCommitter {
  commit(batch: QueuedBatch): Promise<void>;
}

function newBatch(): QueuedBatch {
  return { dbs: [], keys: [], values: [], charge: 0, guaranteed: false };
}

export class GroupCommitQueue {
  /** the batch puts go to */
  private open: QueuedBatch = newBatch();
  /** sealed batches waiting, oldest first */
  private readonly sealed: QueuedBatch[] = [];
  private inFlight: Promise<void> | undefined;
  private scheduled = false;
  /** the window's timer, while a commit waits for it */
  private windowTimer: NodeJS.Timeout | undefined;
  /** when the last commit started (performance.now()) */
  private lastStart = -Infinity;
  /** drain() calls waiting */
  private draining = 0;
  private halted = false;
  /** Puts lost: in a failed transaction, or queued while halted. */
  dropped = 0;

  constructor(
    private readonly writer: BatchCommitter,
    /** Called synchronously when a transaction fails, before the next one could start. */
    private readonly onFailure: (err: unknown) => void,
    /**
     * Called once per batch when nothing will read its values any more: its transaction settled, or it was
     * dropped while halted (the store returns pooled io buffers here, see io-slab-pool.ts).
     */
    private readonly onSettled: (batch: WriteBatch) => void = () => {},
    /** least time between the starts of two commits that nothing waits for (ms); 0: no window */
    private readonly windowMs = 0,
  ) {}

  get queued(): number {
    let queued = this.open.keys.length;
    for (const batch of this.sealed) queued += batch.keys.length;
    return queued;
  }

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /** The batch the next put goes to. */
  get current(): QueuedBatch {
    return this.open;
  }

  put(db: number, key: string, value: BatchValue, charge = 0): void {
    const batch = this.open;
    batch.dbs.push(db);
    batch.keys.push(key);
    batch.values.push(value);
    batch.charge += charge;
    this.schedule();
  }

  /** Later puts go to a new batch, committed after this one. */
  seal(): void {
    if (this.open.keys.length === 0) return;
    this.sealed.push(this.open);
    this.open = newBatch();
  }

  /** Settles when the current batch commits; rejects when it fails or is dropped. */
  whenCommitted(): Promise<void> {
    const batch = this.open;
    if (!batch.done) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      batch.done = { promise, resolve, reject };
      this.hurry();
    }
    return batch.done.promise;
  }

  /** Stop writing: what is queued, and anything put until resume(), is dropped. */
  halt(): void {
    this.halted = true;
  }

  resume(): void {
    this.halted = false;
  }

  /** Resolves when nothing is queued or in flight. */
  async drain(): Promise<void> {
    this.draining++;
    try {
      this.hurry();
      while (this.inFlight || this.sealed.length > 0 || this.open.keys.length > 0) {
        if (this.inFlight) await this.inFlight;
        else if (this.halted) this.commitQueued();
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.draining--;
    }
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled || this.windowTimer) return;
    const wait = this.lastStart + this.windowMs - performance.now();
    if (wait >= 1 && !this.awaited()) {
      this.windowTimer = setTimeout(() => {
        this.windowTimer = undefined;
        this.commitQueued();
      }, wait);
      return;
    }
    // Start on the next turn so everything appended in this one shares the transaction.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.commitQueued();
    });
  }

  /** Something waits for the queued puts: commit them without waiting for the window. */
  private hurry(): void {
    if (!this.windowTimer) return;
    clearTimeout(this.windowTimer);
    this.windowTimer = undefined;
    this.schedule();
  }

  private windowPassed(): boolean {
    return performance.now() - this.lastStart >= this.windowMs || this.awaited();
  }

  private awaited(): boolean {
    if (this.draining > 0 || this.open.done) return true;
    for (const batch of this.sealed) if (batch.done) return true;
    return false;
  }

  private next(): QueuedBatch | undefined {
    const sealed = this.sealed.shift();
    if (sealed) return sealed;
    if (this.open.keys.length === 0) return undefined;
    const batch = this.open;
    this.open = newBatch();
    return batch;
  }

  private commitQueued(): void {
    if (this.inFlight) return;
    const batch = this.next();
    if (!batch) return;
    if (this.halted) {
      this.dropped += batch.keys.length;
      batch.done?.reject(new Error('dropped after a failed commit'));
      this.onSettled(batch);
      this.commitQueued();
      return;
    }
    if (this.windowTimer) {
      clearTimeout(this.windowTimer);
      this.windowTimer = undefined;
    }
    this.lastStart = performance.now();
    this.inFlight = this.writer
      .commit(batch)
      .then(
        () => batch.done?.resolve(),
        (err: unknown) => {
          this.dropped += batch.keys.length;
          this.halted = true;
          this.onFailure(err);
          batch.done?.reject(err);
        },
      )
      .finally(() => {
        this.inFlight = undefined;
        // The next commit starts before onSettled wakes paused streams: a woken relay writes what its source
        // buffered meanwhile within this turn, and a start left for the next turn would wait behind all of it.
        if (!this.halted && this.windowPassed()) this.commitQueued();
        this.onSettled(batch);
        if (this.halted) this.commitQueued();
        else if (this.sealed.length > 0 || this.open.keys.length > 0) this.schedule();
      });
  }
}
