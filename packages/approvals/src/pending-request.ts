/** A request the broker holds on this replica while its command waits, and how the webhook describes it. */
import type { ApprovalRequestInput, ApprovalSettlement } from '@agentgate/core';
import type { PendingApproval } from './types.js';
import type { ApprovalLinks, WebhookEvent } from './webhook-payload.js';

export interface PendingRequest {
  readonly view: PendingApproval;
  readonly input: ApprovalRequestInput;
  readonly requestedAtMs: number;
  readonly expiresAtMs: number;
  /** Aborted when the request settles: stops the `approval.requested` webhook and its retries. */
  readonly settledController: AbortController;
  readonly resolve: (settlement: ApprovalSettlement) => void;
  readonly timer: NodeJS.Timeout;
  /** Reminds the waiting client that its command still waits. */
  readonly reminder: NodeJS.Timeout;
  notices: number;
  readonly detach: () => void;
  /** Held in the fleet database too (false: this replica alone knows it). */
  readonly shared: boolean;
  /** Its expiry or withdrawal is being written back to the fleet database. */
  withdrawing: boolean;
}

export function webhookEventOf(
  request: PendingRequest,
  type: WebhookEvent['type'],
  links: ApprovalLinks,
): WebhookEvent {
  return {
    type,
    approval: request.view,
    identityGroups: request.input.session.identity.groups,
    client: request.input.session.client.address,
    links,
  };
}
