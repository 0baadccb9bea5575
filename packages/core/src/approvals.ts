import type { Command } from './command.js';
import type { PrincipalRef } from './identity.js';
import type { SessionInfo } from './session.js';
import type { SessionRecorder } from './transcript.js';

export type ApprovalOutcome = 'approved' | 'rejected' | 'expired' | 'cancelled';

export interface ApprovalSettlement {
  readonly id: string;
  readonly outcome: ApprovalOutcome;
  readonly by?: string;
  readonly reason?: string;
}

export interface ApprovalRequestInput {
  readonly session: SessionInfo;
  readonly recorder: SessionRecorder;
  /** Approvers are shown its `recordedText` (credentials redacted) when it has one, else its `text`. */
  readonly command: Command;
  readonly rule: string;
  readonly approvers: readonly PrincipalRef[];
}

/** The gate's extension point for `action: approve`. */
export interface ApprovalBroker {
  /** Resolves exactly once, when the request settles. Aborting `signal` cancels it. */
  request(input: ApprovalRequestInput, signal?: AbortSignal): Promise<ApprovalSettlement>;
}
