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
