/**
 * Signed checkpoints: a compact JWS over `{session, seq, hash}` of a session's last event, written at session end
 * and every `checkpointIntervalMs` for sessions with new events. A signature is made off the write path (the
 * signer is async) and stored when it is ready; `settled()` waits for those in progress. A session's end summary
 * is stored with its final checkpoint, in one transaction, so no reader (a backup, `verify` of a live store, the
 * fleet) ever sees an end without its signature.
 */
import type { Logger, Signer } from '@agentgate/core';
import { dbIndex } from './batch-writer.js';
import { checkpointPayload, eventKey, type CheckpointRecord } from './event-codec.js';
import type { LiveSession } from './session-recorder.js';

/** Where checkpoints are written. */
export interface CheckpointSink {
  /** Records can be queued (the store has not failed or closed; it may be full). */
  readonly recording: boolean;
  /** `admitted`: room for the record was admitted with the session's end (see the store writer). */
  put(db: number, key: string, value: string, admitted: boolean): void;
  /** Queue a record whose room was charged with its event; never starts a new transaction. */
  queue(db: number, key: string, value: string): void;
}

/** A record stored in the same transaction as the checkpoint (a session's end summary, admitted with its event). */
export interface CheckpointCompanion {
  readonly db: number;
  readonly key: string;
  readonly value: string;
}

export class Checkpointer {
  private readonly pending = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly signer: Signer,
    private readonly sink: CheckpointSink,
    private readonly log: Logger,
  ) {}

  /**
   * Sign {session, seq, hash} of the session's last event, unless already covered; `admitted` as for put().
   * `companion` is queued right after the checkpoint, so in its transaction, or alone if signing fails.
   */
  checkpoint(session: LiveSession, admitted = false, companion?: CheckpointCompanion): void {
    const seq = session.nextSeq - 1;
    if (seq < 0 || seq <= session.checkpointedSeq || !this.sink.recording) return;
    session.checkpointedSeq = seq;
    const hash = session.head;
    const ts = Date.now();
    const putCompanion = (): void => {
      if (companion && this.sink.recording) this.sink.queue(companion.db, companion.key, companion.value);
    };
    const signing = this.signer
      .signCompact(checkpointPayload(session.id, seq, hash))
      .then((jws) => {
        if (!this.sink.recording) return;
        const record: CheckpointRecord = { session: session.id, seq, hash, ts, jws };
        // The checkpoint first: its admission may start a new transaction, the companion's never does.
        this.sink.put(dbIndex.checkpoints, eventKey(session.id, seq), JSON.stringify(record), admitted);
        putCompanion();
      })
      .catch((err: unknown) => {
        this.log.error('transcript: checkpoint failed', {
          session: session.id,
          seq,
          err: (err as Error).message,
        });
        // The end is still stored: verify reports it unsigned, and the next start signs it (crash-recovery.ts).
        putCompanion();
      })
      .finally(() => this.pending.delete(signing));
    this.pending.add(signing);
  }

  /** Every `intervalMs`, flush each live session's pending io and checkpoint it if it has new events. */
  startPeriodic(intervalMs: number, live: () => Iterable<LiveSession>): void {
    if (intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      for (const session of live()) {
        try {
          session.recorder?.flushIo();
          this.checkpoint(session);
        } catch (err) {
          this.log.warn('transcript: periodic checkpoint failed', {
            session: session.id,
            err: (err as Error).message,
          });
        }
      }
    }, intervalMs);
    this.timer.unref();
  }

  stopPeriodic(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves once no signature is in progress (each has queued its checkpoint, or given up). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
