/**
 * The gate is the single place that turns a decoded Command into allow / deny / held-for-approval. It records the
 * command with its decision in the session's transcript, counts them, and (for `approve`) waits on the broker.
 */
import type { DecisionHooks } from './approvals.js';
import type { Command } from './command.js';
import type { AgentgateError, ErrorCode } from './errors.js';
import type { SessionInfo } from './session.js';
import type { SessionRecorder } from './transcript.js';

export interface GateSession {
  readonly info: SessionInfo;
  readonly recorder: SessionRecorder;
}

/**
 * Why the transcript store refused to record: it has no space left (its reserve is used up, or a write found the
 * disk full), or a write failed otherwise (an I/O error). Carried as `detail.recordingFailure` of the store's
 * RECORDING_FAILED error.
 */
export type RecordingFailure = 'disk-full' | 'io-error';

/** The store could not record the command: refused with its own words, never as a policy denial. */
export function recordingRefusal(err: AgentgateError): Extract<Verdict, { allowed: false }> {
  const recordingFailure: RecordingFailure =
    err.detail?.['recordingFailure'] === 'disk-full' ? 'disk-full' : 'io-error';
  const why =
    recordingFailure === 'disk-full'
      ? 'the transcript store is full, so this command cannot be recorded'
      : 'the transcript store cannot write (I/O error), so this command cannot be recorded';
  return {
    allowed: false,
    code: 'RECORDING_FAILED',
    recordingFailure,
    message: `agentgate: refused: ${why}`,
  };
}

export type Verdict =
  | {
      readonly allowed: true;
      /** The allow rule that matched, if any. */
      readonly rule?: string;
      /** Set when a person (or the webhook) approved it. */
      readonly approvalId?: string;
      /** seq of the recorded command event, to link results to it. */
      readonly commandSeq: number;
    }
  | {
      readonly allowed: false;
      readonly code: Extract<
        ErrorCode,
        | 'DENIED'
        | 'UNANALYSABLE'
        | 'APPROVAL_REQUIRED'
        | 'APPROVAL_REJECTED'
        | 'APPROVAL_EXPIRED'
        | 'APPROVAL_CANCELLED'
        | 'RECORDING_FAILED'
        | 'INTERNAL'
      >;
      readonly rule?: string;
      readonly approvalId?: string;
      /** With RECORDING_FAILED: why the store could not record (engines render the two differently). */
      readonly recordingFailure?: RecordingFailure;
      /** The text the client sees, e.g. `agentgate: denied by rule no-ddl-drops`. */
      readonly message: string;
      readonly commandSeq?: number;
    };

export interface Gate {
  /**
   * Decide one command. The verdict itself when nothing had to be waited for (an allow or deny whose record the
   * store vouches for), else a promise of it; for an `approve` rule that settles with the approval.
   * Aborting `signal` (client left, cancel) withdraws a pending approval and resolves APPROVAL_CANCELLED.
   * `hooks.onWaiting` hears that the command is held, and the reminders while it waits.
   */
  check(
    session: GateSession,
    command: Command,
    signal?: AbortSignal,
    hooks?: DecisionHooks,
  ): Verdict | Promise<Verdict>;
}
