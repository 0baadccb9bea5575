/**
 * The broker's webhook deliveries: `approval.requested` (whose `agentgate`-format reply may decide the request; its
 * retries stop once the request settles) and the settlement events (delivered in full). Deliveries under way are
 * tracked so shutdown lets them finish, within a grace.
 */
import { linkSignals, type ApprovalsConfig, type Logger } from '@agentgate/core';
import type { ApprovalBrokerOptions } from './types.js';
import { sendApprovalWebhook } from './webhook.js';
import { webhookBody, type WebhookEvent } from './webhook-payload.js';

/** What a receiver answered to `approval.requested` in the `agentgate` format. */
export interface ReceiverDecision {
  readonly outcome: 'approved' | 'rejected';
  readonly reason: string | undefined;
}

export class ApprovalWebhooks {
  private readonly deliveries = new Set<Promise<unknown>>();
  private readonly stopDeliveries = new AbortController();

  constructor(
    private readonly signer: ApprovalBrokerOptions['signer'],
    private readonly log: Logger,
  ) {}

  /** `approval.requested`; `onDecision` runs when the receiver decided it. Delivery stops when `settled` aborts. */
  requested(
    webhook: NonNullable<ApprovalsConfig['webhook']>,
    event: WebhookEvent,
    settled: AbortSignal,
    onDecision: (decision: ReceiverDecision) => void,
  ): void {
    const approvalId = event.approval.id;
    // Linked, not AbortSignal.any: the broker-long signal would keep one entry per request for the broker's life.
    const stop = linkSignals(settled, this.stopDeliveries.signal);
    const delivery = sendApprovalWebhook({
      config: webhook,
      signer: this.signer,
      body: webhookBody(event, webhook.format),
      event: 'approval.requested',
      approvalId,
      stop: stop.signal,
      log: this.log,
      wantsDecision: webhook.format === 'agentgate',
    }).then(
      (decision) => {
        if (decision === undefined) return;
        onDecision({
          outcome: decision.decision === 'approve' ? 'approved' : 'rejected',
          reason: decision.reason,
        });
      },
      (err: unknown) =>
        this.log.error('approval webhook crashed', { approval: approvalId, error: (err as Error).message }),
    );
    this.track(delivery);
  }

  /** A settlement event (`approval.approved`, `.rejected`, `.expired`, `.cancelled`), delivered in full. */
  settled(webhook: NonNullable<ApprovalsConfig['webhook']>, event: WebhookEvent): void {
    const delivery = sendApprovalWebhook({
      config: webhook,
      signer: this.signer,
      body: webhookBody(event, webhook.format),
      event: event.type,
      approvalId: event.approval.id,
      stop: this.stopDeliveries.signal,
      log: this.log,
      wantsDecision: false,
    }).catch((err: unknown) =>
      this.log.error('approval webhook crashed', {
        approval: event.approval.id,
        error: (err as Error).message,
      }),
    );
    this.track(delivery);
  }

  /** Wait for the deliveries under way, cutting them short after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    if (this.deliveries.size === 0) return;
    const grace = setTimeout(() => this.stopDeliveries.abort(), graceMs);
    await Promise.allSettled([...this.deliveries]);
    clearTimeout(grace);
  }

  private track(delivery: Promise<unknown>): void {
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }
}
