import type {
  ApprovalOutcome,
  ApprovalRequestInput,
  ApprovalSettlement,
  ApprovalsConfig,
  IdentityService,
  Logger,
  Signer,
} from '@agentgate/core';

/** What the broker reports to metrics (`agentgate_approvals_pending`, the wait histogram, decisions by outcome). */
export interface ApprovalMetricsSink {
  pending(n: number): void;
  settled(outcome: ApprovalOutcome, waitSeconds: number): void;
}

export interface ApprovalBrokerOptions {
  readonly config: ApprovalsConfig;
  /** Signs webhook bodies (compact JWS in `X-Agentgate-Signature`). */
  readonly signer: Signer;
  /** Verifies approvers' Bearer tokens on the admin API. */
  readonly identity: IdentityService;
  readonly log: Logger;
  readonly metrics?: ApprovalMetricsSink;
  /** The web console's page for a request, when a console is configured: put in the webhook body and the log. */
  readonly consoleUrl?: (approvalId: string) => string | undefined;
  /**
   * The request's resource on the admin API (`GET /api/approvals/{id}`), once the admin listener is up: put in the
   * webhook body, and the link a waiting client is shown when there is no console.
   */
  readonly apiUrl?: (approvalId: string) => string | undefined;
  /** How often a waiting client is reminded that its command still waits (default 30 s). */
  readonly reminderIntervalMs?: number;
  /** Clock for timestamps (ms since the epoch); timers still run on real time. */
  readonly now?: () => number;
  /** In a fleet: where held requests are shared so any replica can decide them. */
  readonly sharing?: ApprovalSharing;
  /**
   * The approvers the configuration in force names for a rule (its `approvers`, else `approvals.approvers`), or
   * undefined when no rule of that name is in force: a pending request is decided only by who is an approver both
   * as recorded with it and as returned here, so an approver a reload removed cannot decide it.
   */
  readonly liveApprovers?: (rule: string) => readonly string[] | undefined;
  /** In a fleet: a command to hold while `sharing` is unreachable is refused (`closed`, default) or held here. */
  readonly whenSharingDown?: WhenSharingDown;
}

/** A pending request as the admin API and the CLI show it (docs/cli.md, `GET /api/approvals`). */
export interface PendingApproval {
  readonly id: string;
  readonly session: string;
  readonly listener: string;
  readonly protocol: string;
  /** The requesting identity's name. */
  readonly identity: string;
  /** One-line rendering of the held command. */
  readonly command: string;
  readonly rule: string;
  /** Who may decide it: the rule's `approvers` or `approvals.approvers`. */
  readonly approvers: readonly string[];
  /** In a fleet: the replica holding the command. */
  readonly node?: string;
  /** ISO 8601. */
  readonly requestedAt: string;
  /** ISO 8601. */
  readonly expiresAt: string;
}

/** A settled request, as `GET /api/approvals/{id}` shows it for a while after it settled. */
export interface SettledApproval {
  readonly id: string;
  readonly status: ApprovalOutcome;
  readonly by: string | null;
  readonly reason: string | null;
  /** ISO 8601. */
  readonly settledAt: string;
  /** The identity whose command was held, and who could decide it: who may read this outcome. */
  readonly identity: string;
  readonly approvers: readonly string[];
}

/** What `subscribe` reports: a request was held, or it settled (once, whichever way). */
export type ApprovalEvent =
  | {
      readonly type: 'requested';
      readonly approval: PendingApproval;
      readonly input: ApprovalRequestInput;
    }
  | {
      readonly type: 'settled';
      readonly approval: PendingApproval;
      readonly input: ApprovalRequestInput;
      readonly settlement: ApprovalSettlement;
    };

/** A held request as the fleet database keeps it, whichever replica holds it (docs/configuration.md, "fleet"). */
export interface SharedApproval {
  readonly id: string;
  /** the replica holding the command */
  readonly node: string;
  readonly session: string;
  readonly listener: string;
  readonly protocol: string;
  readonly identity: string;
  /** the command as recorded (credentials redacted) */
  readonly command: string;
  readonly rule: string;
  readonly approvers: readonly string[];
  /** ms since the epoch */
  readonly requestedAt: number;
  readonly expiresAt: number;
  readonly state: 'pending' | ApprovalOutcome;
  readonly decidedBy: string | null;
  readonly reason: string | null;
  /** ms since the epoch */
  readonly decidedAt: number | null;
}

/** The held request a holding replica writes when it holds a command. */
export type HeldApproval = Omit<SharedApproval, 'state' | 'decidedBy' | 'reason' | 'decidedAt'>;

/** What a decision through the shared store came to. */
export type SharedDecision =
  | { readonly kind: 'decided'; readonly approval: SharedApproval }
  /** someone else decided first, or the holder expired or withdrew it: the row as it stands */
  | { readonly kind: 'settled'; readonly approval: SharedApproval }
  /** still pending, but the replica holding it is not connected to the fleet database: nothing would run it */
  | { readonly kind: 'holder-gone'; readonly approval: SharedApproval }
  | { readonly kind: 'not-found' };

/**
 * Where held requests are shared between replicas (the fleet database). Every settlement is a conditional update
 * of a pending row, so two deciders (or a decider and the holder's expiry) have exactly one outcome. Methods
 * reject when the store cannot be reached.
 */
export interface ApprovalSharing {
  /** This replica's name, written as the holder of its requests. */
  readonly node: string;
  hold(approval: HeldApproval): Promise<void>;
  /** An approver's decision: only a pending, unexpired row is decided. */
  decide(
    id: string,
    outcome: 'approved' | 'rejected',
    by: string,
    reason: string | undefined,
  ): Promise<SharedDecision>;
  /**
   * The holder settles its own request (expired, cancelled): only a pending row changes. Resolves with the row as it
   * stands afterwards: this settlement, or the decision that came first.
   */
  withdraw(id: string, outcome: 'expired' | 'cancelled', reason: string): Promise<SharedApproval | undefined>;
  get(id: string): Promise<SharedApproval | undefined>;
  /** Pending, unexpired requests of every replica, oldest first. */
  listPending(): Promise<SharedApproval[]>;
  /**
   * Be told once a request this replica holds is settled elsewhere. `held` names the ids it still waits on; the
   * store reports them at once (a notification) and by polling. Returns what stops watching.
   */
  watch(held: () => readonly string[], onSettled: (approval: SharedApproval) => void): () => void;
}

/** What a replica does when the shared store is unreachable as a command must be held (`fleet.approvalsWhenDown`). */
export type WhenSharingDown = 'closed' | 'local';
