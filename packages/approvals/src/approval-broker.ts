/**
 * The approvals broker: holds one command until an approver (or the webhook) decides, it expires, or
 * the client leaves. Each request settles exactly once; both ends are recorded in the session's transcript
 * (`approval.requested`, `approval.decided`), logged, and sent to the webhook. While it waits, the requesting
 * engine is told so (`onWaiting`) when it is held and at every reminder, with the one text all protocols show.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AgentgateError,
  causeOf,
  describeCause,
  newId,
  type ApprovalBroker,
  type ApprovalOutcome,
  type ApprovalRequestInput,
  type ApprovalSettlement,
  type ApprovalsConfig,
  type ApprovalWait,
  type Identity,
  type WithdrawCause,
} from '@agentgate/core';
import { handleApprovalsHttp } from './http-api.js';
import type { ApprovalBrokerOptions, ApprovalEvent, PendingApproval, SettledApproval } from './types.js';
import { sendApprovalWebhook } from './webhook.js';
import { webhookBody, type ApprovalLinks, type WebhookEvent } from './webhook-payload.js';

interface PendingRequest {
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
}

const SHUTTING_DOWN: WithdrawCause = { kind: 'shutdown' };

/** How many settled ids are remembered to answer 409 (not 404) to a late decision, and `GET` by id. */
const SETTLED_MEMORY = 10_000;
const REMINDER_INTERVAL_MS = 30_000;
/** On close, webhook deliveries still under way (the `cancelled` of each pending request) get this long. */
const CLOSE_DELIVERY_GRACE_MS = 3_000;

export class ApprovalBrokerImpl implements ApprovalBroker {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly settled = new Map<string, SettledApproval>();
  /** Webhook deliveries under way, so shutdown can let them finish (bounded). */
  private readonly deliveries = new Set<Promise<unknown>>();
  private readonly stopDeliveries = new AbortController();
  private readonly subscribers = new Set<(event: ApprovalEvent) => void>();
  private readonly now: () => number;
  private closed = false;
  /** The `approvals` section in force: replaced by `reconfigure` (a configuration reload). */
  private config: ApprovalsConfig;

  constructor(private readonly options: ApprovalBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.config = options.config;
  }

  /**
   * A reloaded `approvals` section (timeout, default approvers, webhook) applies to requests held from now on;
   * pending ones keep the expiry and approvers they were held with (that is what approvers were shown).
   */
  reconfigure(config: ApprovalsConfig): void {
    this.config = config;
  }

  request(input: ApprovalRequestInput, signal?: AbortSignal): Promise<ApprovalSettlement> {
    const requestedAtMs = this.now();
    const id = newId(requestedAtMs);
    if (signal?.aborted) {
      return Promise.resolve({ id, outcome: 'cancelled', reason: describeCause(causeOf(signal.reason)) });
    }
    const timeoutMs = this.closed ? 0 : this.config.timeoutMs;
    const expiresAtMs = requestedAtMs + timeoutMs;
    const approvers = this.effectiveApprovers(input);
    try {
      input.recorder.append('approval.requested', {
        approvalId: id,
        rule: input.rule,
        command: input.command.recordedText ?? input.command.text,
        approvers,
        requestedAt: requestedAtMs,
        expiresAt: expiresAtMs,
      });
      if (this.closed) return Promise.resolve(this.refuseWhileClosed(id, input));
    } catch (err) {
      // RECORDING_FAILED: nothing is held, and the gate refuses the command (fail closed).
      return Promise.reject(err);
    }
    const view: PendingApproval = {
      id,
      session: input.session.id,
      listener: input.session.listener,
      protocol: input.session.protocol,
      identity: input.session.identity.name,
      command: input.command.recordedText ?? input.command.text,
      rule: input.rule,
      approvers,
      requestedAt: new Date(requestedAtMs).toISOString(),
      expiresAt: new Date(expiresAtMs).toISOString(),
    };
    const onWaiting = input.onWaiting;
    return new Promise<ApprovalSettlement>((resolve) => {
      // Withdrawn: the signal's reason names why (the client left, shutdown, the credential expired, ...).
      const onAbort = (): void => {
        const cause = causeOf(signal?.reason);
        this.settle(id, 'cancelled', undefined, describeCause(cause), cause);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        this.settle(id, 'expired', undefined, `no decision within ${formatSeconds(timeoutMs)}`);
      }, timeoutMs);
      timer.unref();
      const reminder = setInterval(
        () => this.remind(id, onWaiting),
        this.options.reminderIntervalMs ?? REMINDER_INTERVAL_MS,
      );
      reminder.unref();
      this.pending.set(id, {
        view,
        input,
        requestedAtMs,
        expiresAtMs,
        settledController: new AbortController(),
        resolve,
        timer,
        reminder,
        notices: 0,
        detach: () => signal?.removeEventListener('abort', onAbort),
      });
      this.options.metrics?.pending(this.pending.size);
      const links = this.links(id);
      this.options.log.info('approval requested', {
        approval: id,
        session: view.session,
        listener: view.listener,
        protocol: view.protocol,
        rule: view.rule,
        identity: view.identity,
        expiresAt: view.expiresAt,
        ...links,
      });
      this.publish({ type: 'requested', approval: view, input });
      this.startWebhook(id);
      this.tellWaiting(id, onWaiting);
    });
  }

  /** The request's links: its admin API resource and its console page, as far as they are known. */
  private links(id: string): ApprovalLinks {
    const apiUrl = this.options.apiUrl?.(id);
    const consoleUrl = this.options.consoleUrl?.(id);
    return {
      ...(apiUrl === undefined ? {} : { apiUrl }),
      ...(consoleUrl === undefined ? {} : { consoleUrl }),
    };
  }

  /** Tell the waiting engine (once held, then at each reminder); its failure never disturbs the request. */
  private tellWaiting(id: string, onWaiting: ApprovalRequestInput['onWaiting']): void {
    const request = this.pending.get(id);
    if (request === undefined) return;
    request.notices++;
    if (onWaiting === undefined) return;
    const links = this.links(id);
    const url = links.consoleUrl ?? links.apiUrl;
    const remainingMs = Math.max(0, request.expiresAtMs - this.now());
    const wait: ApprovalWait = {
      approvalId: id,
      rule: request.view.rule,
      expiresAt: request.expiresAtMs,
      notice: request.notices,
      message:
        `agentgate: waiting for approval ${id} (rule ${request.view.rule}), ` +
        `expires in ${formatRemaining(remainingMs)}${url === undefined ? '' : ` — ${url}`}`,
      ...(url === undefined ? {} : { url }),
    };
    try {
      onWaiting(wait);
    } catch (err) {
      this.options.log.warn('telling the client it waits failed', {
        approval: id,
        error: (err as Error).message,
      });
    }
  }

  /** Every reminder interval: the log (every protocol, Docker's clients see nothing) and the waiting client. */
  private remind(id: string, onWaiting: ApprovalRequestInput['onWaiting']): void {
    const request = this.pending.get(id);
    if (request === undefined) return;
    this.options.log.info('approval still waiting', {
      approval: id,
      session: request.view.session,
      listener: request.view.listener,
      protocol: request.view.protocol,
      rule: request.view.rule,
      waitedMs: Math.max(0, this.now() - request.requestedAtMs),
      expiresAt: request.view.expiresAt,
    });
    this.tellWaiting(id, onWaiting);
  }

  /** A pending request as the admin API shows it, or a recently settled one's outcome; undefined if unknown. */
  get(id: string): (PendingApproval & ApprovalLinks & { status: 'pending' }) | SettledApproval | undefined {
    const request = this.pending.get(id);
    if (request !== undefined) return { ...request.view, status: 'pending', ...this.links(id) };
    return this.settled.get(id);
  }

  /**
   * Be told of every request held and every settlement, synchronously as they happen (the console's live page).
   * Returns what unsubscribes. A subscriber that throws is logged and does not disturb the broker.
   */
  subscribe(subscriber: (event: ApprovalEvent) => void): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  private publish(event: ApprovalEvent): void {
    for (const subscriber of this.subscribers) {
      try {
        subscriber(event);
      } catch (err) {
        this.options.log.error('approval subscriber failed', { error: (err as Error).message });
      }
    }
  }

  /** Pending requests, oldest first. */
  list(): PendingApproval[] {
    return [...this.pending.values()].map((p) => p.view);
  }

  approve(id: string, approver: Identity, reason?: string): ApprovalSettlement {
    return this.decide(id, approver, 'approved', reason);
  }

  deny(id: string, approver: Identity, reason?: string): ApprovalSettlement {
    return this.decide(id, approver, 'rejected', reason);
  }

  /**
   * A request made once closed (the gateway draining or stopping) is refused at once, and recorded like any other
   * settlement (no approver is asked), so the record says why the command did not run.
   */
  private refuseWhileClosed(id: string, input: ApprovalRequestInput): ApprovalSettlement {
    const reason = describeCause(SHUTTING_DOWN);
    input.recorder.append('approval.decided', {
      approvalId: id,
      outcome: 'cancelled',
      by: null,
      reason,
      waitedMs: 0,
      cause: SHUTTING_DOWN.kind,
    });
    this.rememberSettled({
      id,
      status: 'cancelled',
      by: null,
      reason,
      settledAt: new Date(this.now()).toISOString(),
    });
    this.options.metrics?.settled('cancelled', 0);
    this.options.log.info('approval refused: the gateway is shutting down', {
      approval: id,
      session: input.session.id,
      rule: input.rule,
    });
    return { id, outcome: 'cancelled', reason };
  }

  /**
   * Cancel every pending request (gateway shutdown); later requests are refused at once (`refuseWhileClosed`).
   * Resolves once the webhook deliveries under way (the `approval.cancelled` events included) finished, or after a
   * short grace.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.pending.keys()])
      this.settle(id, 'cancelled', undefined, describeCause(SHUTTING_DOWN), SHUTTING_DOWN);
    if (this.deliveries.size === 0) return;
    const grace = setTimeout(() => this.stopDeliveries.abort(), CLOSE_DELIVERY_GRACE_MS);
    await Promise.allSettled([...this.deliveries]);
    clearTimeout(grace);
  }

  /** The admin API: `GET /api/approvals`, `POST /api/approvals/{id}/approve|deny`. False when not its path. */
  handleHttp(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    return handleApprovalsHttp(this, this.options.identity, this.options.log, req, res, pathname);
  }

  private effectiveApprovers(input: ApprovalRequestInput): readonly string[] {
    return input.approvers.length > 0 ? input.approvers : this.config.approvers;
  }

  private decide(
    id: string,
    approver: Identity,
    outcome: 'approved' | 'rejected',
    reason: string | undefined,
  ): ApprovalSettlement {
    const request = this.pending.get(id);
    if (request === undefined) {
      const previous = this.settled.get(id);
      if (previous !== undefined)
        throw new AgentgateError('CONFLICT', `approval ${id} is already settled (${previous.status})`);
      throw new AgentgateError('NOT_FOUND', `no approval request ${id}`);
    }
    if (!this.options.identity.isAllowed(approver, request.view.approvers)) {
      throw new AgentgateError(
        'FORBIDDEN',
        `${approver.name} is not an approver for approval ${id} (approvers: ${request.view.approvers.join(', ') || 'none configured'})`,
      );
    }
    if (outcome === 'approved' && approver.name === request.view.identity) {
      throw new AgentgateError('FORBIDDEN', `${approver.name} may not approve their own request ${id}`);
    }
    return this.settle(id, outcome, approver.name, reason)!;
  }

  /** The one place a request settles; later calls for the same id do nothing. */
  private settle(
    id: string,
    outcome: ApprovalOutcome,
    by: string | undefined,
    reason: string | undefined,
    cause?: WithdrawCause,
  ): ApprovalSettlement | undefined {
    const request = this.pending.get(id);
    if (request === undefined) return undefined;
    this.pending.delete(id);
    const settledAtMs = this.now();
    this.rememberSettled({
      id,
      status: outcome,
      by: by ?? null,
      reason: reason ?? null,
      settledAt: new Date(settledAtMs).toISOString(),
    });
    clearTimeout(request.timer);
    clearInterval(request.reminder);
    request.detach();
    request.settledController.abort();
    const waitedMs = Math.max(0, settledAtMs - request.requestedAtMs);
    const settlement: ApprovalSettlement = {
      id,
      outcome,
      ...(by === undefined ? {} : { by }),
      ...(reason === undefined ? {} : { reason }),
    };
    try {
      request.input.recorder.append('approval.decided', {
        approvalId: id,
        outcome,
        by: by ?? null,
        reason: reason ?? null,
        waitedMs,
        ...(cause === undefined ? {} : { cause: cause.kind }),
      });
    } catch (err) {
      // The settlement stands; the gate's own decision event will hit the same store failure and fail closed.
      this.options.log.error('approval decision could not be recorded', {
        approval: id,
        error: (err as Error).message,
      });
    }
    this.options.metrics?.pending(this.pending.size);
    this.options.metrics?.settled(outcome, waitedMs / 1000);
    this.options.log.info('approval settled', {
      approval: id,
      outcome,
      by,
      waitedMs,
      ...(reason === undefined ? {} : { reason }),
      ...(cause === undefined ? {} : { cause: cause.kind }),
    });
    this.publish({ type: 'settled', approval: request.view, input: request.input, settlement });
    this.notifySettled(request, settlement, settledAtMs, waitedMs, cause);
    request.resolve(settlement);
    return settlement;
  }

  private rememberSettled(settled: SettledApproval): void {
    this.settled.set(settled.id, settled);
    if (this.settled.size > SETTLED_MEMORY) {
      const oldest = this.settled.keys().next();
      if (oldest.done !== true) this.settled.delete(oldest.value);
    }
  }

  private webhookEvent(request: PendingRequest, type: WebhookEvent['type']): WebhookEvent {
    return {
      type,
      approval: request.view,
      identityGroups: request.input.session.identity.groups,
      client: request.input.session.client.address,
      links: this.links(request.view.id),
    };
  }

  /** `approval.requested`: the receiver may decide it (an auto-approval bot); delivery stops once it settles. */
  private startWebhook(id: string): void {
    const webhook = this.config.webhook;
    const request = this.pending.get(id);
    if (webhook === undefined || request === undefined) return;
    const delivery = sendApprovalWebhook({
      config: webhook,
      signer: this.options.signer,
      body: webhookBody(this.webhookEvent(request, 'approval.requested'), webhook.format),
      event: 'approval.requested',
      approvalId: id,
      stop: AbortSignal.any([request.settledController.signal, this.stopDeliveries.signal]),
      log: this.options.log,
      wantsDecision: webhook.format === 'agentgate',
    }).then(
      (decision) => {
        if (decision === undefined) return;
        this.settle(
          id,
          decision.decision === 'approve' ? 'approved' : 'rejected',
          'webhook',
          decision.reason,
        );
      },
      (err: unknown) =>
        this.options.log.error('approval webhook crashed', { approval: id, error: (err as Error).message }),
    );
    this.track(delivery);
  }

  /** The settlement, whichever way it came: delivered in full (its retries are not cut short by anything but close). */
  private notifySettled(
    request: PendingRequest,
    settlement: ApprovalSettlement,
    settledAtMs: number,
    waitedMs: number,
    cause: WithdrawCause | undefined,
  ): void {
    const webhook = this.config.webhook;
    if (webhook === undefined) return;
    const type = `approval.${settlement.outcome}` as const;
    const event: WebhookEvent = {
      ...this.webhookEvent(request, type),
      settlement: {
        settlement,
        settledAt: settledAtMs,
        waitedMs,
        ...(cause === undefined ? {} : { cause: cause.kind }),
      },
    };
    const delivery = sendApprovalWebhook({
      config: webhook,
      signer: this.options.signer,
      body: webhookBody(event, webhook.format),
      event: type,
      approvalId: settlement.id,
      stop: this.stopDeliveries.signal,
      log: this.options.log,
      wantsDecision: false,
    }).catch((err: unknown) =>
      this.options.log.error('approval webhook crashed', {
        approval: settlement.id,
        error: (err as Error).message,
      }),
    );
    this.track(delivery);
  }

  private track(delivery: Promise<unknown>): void {
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Time left, as a person reads it: `120s` below ten minutes, then `14m30s`, `2h5m`. */
export function formatRemaining(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 600) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
}

export function createApprovalBroker(options: ApprovalBrokerOptions): ApprovalBrokerImpl {
  return new ApprovalBrokerImpl(options);
}
