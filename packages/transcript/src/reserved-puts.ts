/**
 * Where the space reserve's admission meets the group-commit queue: what a put is charged, which batch it goes to,
 * and whether its session's command must wait for the commit (space-reserve.ts, docs/transcript.md).
 */
import { AgentgateError, type TranscriptEventType } from '@agentgate/core';
import type { CommitPipeline } from './commit-pipeline.js';
import type { LiveSession } from './session-recorder.js';
import type { SpaceReserve } from './space-reserve.js';

/** Checkpoint keys are `<session>/<12 digits>`; session ids are 26 characters (docs/transcript.md). */
const maxRecordKeyLength = 64;

const fullMessage = 'agentgate: the transcript store is full; refusing to run unrecorded commands';

/** RECORDING_FAILED for a store whose reserve is used up and whose file cannot be extended. */
export function storeFullError(): AgentgateError {
  return new AgentgateError('RECORDING_FAILED', fullMessage, { detail: { recordingFailure: 'disk-full' } });
}

export class ReservedPuts {
  constructor(
    private readonly reserve: SpaceReserve,
    private readonly commits: CommitPipeline,
  ) {}

  /**
   * Admit an event (with its io bytes and `records` small records admitted along); returns the charge to queue it
   * with, or throws storeFullError(). A command (or a session's start) that fits marks its batch as guaranteed;
   * anything that does not fit goes to a batch after it, and makes the session's command wait for its commit.
   */
  admitEvent(
    session: LiveSession,
    type: TranscriptEventType,
    keyLength: number,
    stored: string | Buffer,
    ioData: Buffer | undefined,
    records: number,
  ): number {
    const reserve = this.reserve;
    let charge =
      reserve.cost(keyLength, stored) + reserve.feedBytes(keyLength) + reserve.recordBytes(records);
    if (ioData !== undefined) charge += reserve.cost(keyLength, ioData);
    const command = type === 'command' || type === 'session.start';
    const admission = reserve.admit(charge, command);
    if (admission === 'full') throw storeFullError();
    if (command) session.unguaranteed = false;
    if (admission === 'fits') {
      if (command) this.commits.current.guaranteed = true;
    } else {
      this.keepApart();
      session.unguaranteed = true;
    }
    return charge;
  }

  /**
   * Admit a summary or checkpoint record; returns its charge, or undefined when it is not to be queued (the store
   * is full and its room was not `admitted` with its session's end, in which case it is queued uncharged).
   */
  admitRecord(admitted: boolean): number | undefined {
    // A checkpoint adds its entry to the feed record (a summary does not; the bound covers both).
    const charge = this.reserve.recordBytes(1) + this.reserve.feedBytes(maxRecordKeyLength);
    const admission = this.reserve.admit(charge, false);
    if (admission === 'full' && !admitted) return undefined;
    if (admission !== 'fits') this.keepApart();
    return admission === 'full' ? 0 : charge;
  }

  /**
   * Admit `charge` bytes of writes that carry no command and must go together (a part of a prune: its record and
   * its deletions); returns the charge, or undefined when the store is full.
   */
  admitWrites(charge: number): number | undefined {
    const admission = this.reserve.admit(charge, false);
    if (admission === 'full') return undefined;
    if (admission !== 'fits') this.keepApart();
    return charge;
  }

  /** See StoreWriter.committed. */
  committed(session: LiveSession): Promise<void> | undefined {
    if (!session.unguaranteed) return undefined;
    session.unguaranteed = false;
    return this.commits.whenCommitted().catch(async () => {
      const recordingFailure = await this.commits.failureKnown();
      throw new AgentgateError(
        'RECORDING_FAILED',
        `agentgate: transcript store not writable: ${this.commits.lastError ?? 'unknown error'}`,
        { detail: { recordingFailure } },
      );
    });
  }

  /** What the reserve does not vouch for stays out of a batch that carries guaranteed commands. */
  private keepApart(): void {
    if (this.commits.current.guaranteed) this.commits.seal();
  }
}
