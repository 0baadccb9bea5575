/**
 * Group commit for the transcript store: puts are queued synchronously and committed as one LMDB transaction at a
 * time, each holding everything queued since the previous one started, so batches grow with load.
 *
 * Why one transaction in flight: when a commit fails (full disk), nothing queued after it has been written, so
 * what is on disk is always a clean prefix of every session's chain. lmdb-js's own event-turn batching would
 * pipeline transactions (a later one can succeed after an earlier one failed, leaving gaps) and, on failure,
 * leaves an internal promise rejected and unhandled, which crashes the process.
 *
 * The queue is three parallel arrays rather than a tuple per put: no allocation per append besides the strings.
 */
import type { BatchWriter, StoredValue, WriteBatch } from './batch-writer.js';

export class GroupCommitQueue {
  private batch: { dbs: number[]; keys: string[]; values: StoredValue[] } = { dbs: [], keys: [], values: [] };
  private inFlight: Promise<void> | undefined;
  private scheduled = false;
  private halted = false;
  /** Puts lost: in a failed transaction, or queued while halted. */
  dropped = 0;

  constructor(
    private readonly writer: Pick<BatchWriter, 'commit'>,
    /** Called synchronously when a transaction fails, before the next one could start. */
    private readonly onFailure: (err: unknown) => void,
    /**
     * Called once per batch when nothing will read its values any more: its transaction settled, or it was
     * dropped while halted (the store returns pooled io buffers here, see io-slab-pool.ts).
     */
    private readonly onSettled: (batch: WriteBatch) => void = () => {},
  ) {}

  get queued(): number {
    return this.batch.keys.length;
  }

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  put(db: number, key: string, value: StoredValue): void {
    const batch = this.batch;
    batch.dbs.push(db);
    batch.keys.push(key);
    batch.values.push(value);
    if (!this.inFlight && !this.scheduled) {
      // Start on the next turn so everything appended in this one shares the transaction.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.commitQueued();
      });
    }
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
    while (this.inFlight || this.batch.keys.length > 0) {
      if (this.inFlight) await this.inFlight;
      else if (this.halted) this.commitQueued();
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private commitQueued(): void {
    const batch: WriteBatch = this.batch;
    if (this.inFlight || batch.keys.length === 0) return;
    this.batch = { dbs: [], keys: [], values: [] };
    if (this.halted) {
      this.dropped += batch.keys.length;
      this.onSettled(batch);
      return;
    }
    this.inFlight = this.writer
      .commit(batch)
      .then(
        () => undefined,
        (err: unknown) => {
          this.dropped += batch.keys.length;
          this.halted = true;
          this.onFailure(err);
        },
      )
      .finally(() => {
        this.inFlight = undefined;
        this.onSettled(batch);
        this.commitQueued();
      });
  }
}
