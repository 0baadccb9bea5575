/**
 * Group commit for the transcript store: puts are queued synchronously and committed as one LMDB transaction at a
 * time, each holding everything queued since the previous one started, so batches grow with load.
 *
 * Why one transaction in flight: when a commit fails (full disk), nothing queued after it has been written, so
 * what is on disk is always a clean prefix of every session's chain. lmdb-js's own event-turn batching would
 * pipeline transactions (a later one can succeed after an earlier one failed, leaving gaps) and, on failure,
 * leaves an internal promise rejected and unhandled, which crashes the process.
 */
import type { Database, RootDatabase } from 'lmdb';

export class GroupCommitQueue {
  private queue: [Database<string, string>, string, string][] = [];
  private inFlight: Promise<void> | undefined;
  private scheduled = false;
  private halted = false;
  /** Puts lost: in a failed transaction, or queued while halted. */
  dropped = 0;

  constructor(
    private readonly env: RootDatabase<string, string>,
    /** Called synchronously when a transaction fails, before the next one could start. */
    private readonly onFailure: (err: unknown) => void,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  put(db: Database<string, string>, key: string, value: string): void {
    this.queue.push([db, key, value]);
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
    while (this.inFlight || this.queue.length > 0) {
      if (this.inFlight) await this.inFlight;
      else if (this.halted) this.commitQueued();
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private commitQueued(): void {
    if (this.inFlight || this.queue.length === 0) return;
    if (this.halted) {
      this.dropped += this.queue.length;
      this.queue = [];
      return;
    }
    const batch = this.queue;
    this.queue = [];
    // lmdb-js encodes the puts here and applies them on its writer thread, as one transaction (README, batch).
    this.inFlight = this.env
      .batch(() => {
        for (const [db, key, value] of batch) void db.put(key, value);
      })
      .then(
        () => undefined,
        (err: unknown) => {
          this.dropped += batch.length;
          this.halted = true;
          this.onFailure(err);
        },
      )
      .finally(() => {
        this.inFlight = undefined;
        this.commitQueued();
      });
  }
}
