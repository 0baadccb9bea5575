/**
 * The approvals broker: holds one command until an approver (or the webhook) decides, it expires, or
 * the client leaves. Each request settles exactly once; both ends are recorded in the session's transcript
 * (`approval.requested`, `approval.decided`).
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
  type Identity,
  type WithdrawCause,
} from '@agentgate/core';
import { handleApprovalsHttp } from './http-api.js';
import type { ApprovalBrokerOptions, ApprovalEvent, PendingApproval } from './types.js';
import { sendApprovalWebhook } from './webhook.js';

interface PendingRequest {
  readonly view: PendingApproval;
  readonly input: ApprovalRequestInput;
  readonly requestedAtMs: number;
  /** Aborted when the request settles: stops the webhook and its retries. */
  readonly settledController: AbortController;
  readonly resolve: (settlement: ApprovalSettlement) => void;
  readonly timer: NodeJS.Timeout;
  readonly detach: () => void;
}

const SHUTTING_DOWN: WithdrawCause = { kind: 'shutdown' };

/** How many settled ids are remembered to answer 409 (not 404) to a late decision. */
const SETTLED_MEMORY = 10_000;

export class ApprovalBrokerImpl implements ApprovalBroker {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly settled = new Map<string, ApprovalOutcome>();
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
      this.pending.set(id, {
        view,
        input,
        requestedAtMs,
        settledController: new AbortController(),
        resolve,
        timer,
        detach: () => signal?.removeEventListener('abort', onAbort),
      });
      this.options.metrics?.pending(this.pending.size);
      const consoleUrl = this.options.consoleUrl?.(id);
      this.options.log.info('approval requested', {
        approval: id,
        session: view.session,
        rule: view.rule,
        identity: view.identity,
        ...(consoleUrl === undefined ? {} : { consoleUrl }),
      });
      this.publish({ type: 'requested', approval: view, input });
      this.startWebhook(id);
    });
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
    this.rememberSettled(id, 'cancelled');
    this.options.metrics?.settled('cancelled', 0);
    this.options.log.info('approval refused: the gateway is shutting down', {
      approval: id,
      session: input.session.id,
      rule: input.rule,
    });
    return { id, outcome: 'cancelled', reason };
  }

  /** Cancel every pending request (gateway shutdown); later requests are refused at once (`refuseWhileClosed`). */
  close(): void {
    this.closed = true;
    for (const id of [...this.pending.keys()])
      this.settle(id, 'cancelled', undefined, describeCause(SHUTTING_DOWN), SHUTTING_DOWN);
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
        throw new AgentgateError('CONFLICT', `approval ${id} is already settled (${previous})`);
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
    this.rememberSettled(id, outcome);
    clearTimeout(request.timer);
    request.detach();
    request.settledController.abort();
    const waitedMs = Math.max(0, this.now() - request.requestedAtMs);
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
    this.options.log.info('approval settled', { approval: id, outcome, by, waitedMs });
    this.publish({ type: 'settled', approval: request.view, input: request.input, settlement });
    request.resolve(settlement);
    return settlement;
  }

  private rememberSettled(id: string, outcome: ApprovalOutcome): void {
    this.settled.set(id, outcome);
    if (this.settled.size > SETTLED_MEMORY) {
      const oldest = this.settled.keys().next();
      if (oldest.done !== true) this.settled.delete(oldest.value);
    }
  }

  private startWebhook(id: string): void {
    const webhook = this.config.webhook;
    const request = this.pending.get(id);
    if (webhook === undefined || request === undefined) return;
    const { view, input } = request;
    const consoleUrl = this.options.consoleUrl?.(id);
    const body = JSON.stringify({
      type: 'approval.requested',
      id,
      session: view.session,
      listener: view.listener,
      protocol: view.protocol,
      identity: { name: input.session.identity.name, groups: input.session.identity.groups },
      client: input.session.client.address,
      command: view.command,
      rule: view.rule,
      approvers: view.approvers,
      requestedAt: view.requestedAt,
      expiresAt: view.expiresAt,
      ...(consoleUrl === undefined ? {} : { consoleUrl }),
    });
    sendApprovalWebhook(
      webhook,
      this.options.signer,
      body,
      id,
      request.settledController.signal,
      this.options.log,
    ).then(
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
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function createApprovalBroker(options: ApprovalBrokerOptions): ApprovalBrokerImpl {
  return new ApprovalBrokerImpl(options);
}
