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

/**
 * A command held for approval, as its client is told that it waits: once when it is held and again at every
 * reminder until it settles. Each engine renders `message` natively (an SSH stderr line, a PostgreSQL
 * NoticeResponse), so every protocol shows the same text.
 */
export interface ApprovalWait {
  readonly approvalId: string;
  readonly rule: string;
  /** ms since the epoch */
  readonly expiresAt: number;
  /** Where an approver decides it: the console's page when a console is configured, else the admin API's. */
  readonly url?: string;
  /** 1 when the command is held, then 2, 3, … at each reminder. */
  readonly notice: number;
  /** `agentgate: waiting for approval ID (rule R), expires in 120s — URL` */
  readonly message: string;
}

/**
 * What an engine wants to hear while one of its commands is being decided. An engine passes it with the command:
 *
 *   session.decide(command, signal, { onWaiting: (wait) => client.notice(wait.message) });
 *
 * and renders `wait.message` the way its protocol tells a client something without ending the command (SSH: a
 * stderr line; PostgreSQL: a NoticeResponse). The hook runs synchronously inside the broker; it must not throw
 * (a throw is logged and ignored) and must not block.
 */
export interface DecisionHooks {
  /** The command is held for approval (and, every 30 s, still is); never called after the decision. */
  readonly onWaiting?: (wait: ApprovalWait) => void;
}

export interface ApprovalRequestInput {
  readonly session: SessionInfo;
  readonly recorder: SessionRecorder;
  /** Approvers are shown its `recordedText` (credentials redacted) when it has one, else its `text`. */
  readonly command: Command;
  readonly rule: string;
  readonly approvers: readonly PrincipalRef[];
  /** Told when the command is held and at each reminder while it waits. */
  readonly onWaiting?: DecisionHooks['onWaiting'];
}

/** The gate's extension point for `action: approve`. */
export interface ApprovalBroker {
  /** Resolves exactly once, when the request settles. Aborting `signal` cancels it. */
  request(input: ApprovalRequestInput, signal?: AbortSignal): Promise<ApprovalSettlement>;
}
