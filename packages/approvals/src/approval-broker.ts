/**
 * The approvals broker: holds one command until an approver (or the webhook) decides, it expires, or
 * the client leaves. Each request settles exactly once; both ends are recorded in the session's transcript
 * (`approval.requested`, `approval.decided`), logged, and sent to the webhook. While it waits, the requesting
 * engine is told so (`onWaiting`) when it is held and at every reminder, with the one text all protocols show.
 *
 * In a fleet (`sharing`), a held request is also a row in the fleet database: any replica's API decides it through
 * a conditional update, this replica learns the decision from the store's watch and settles the waiting command;
 * its expiry and withdrawal are written back the same way, so each request has one outcome fleet-wide.
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
import type {
  ApprovalBrokerOptions,
  ApprovalEvent,
  ApprovalSharing,
  PendingApproval,
  SettledApproval,
  SharedApproval,
} from './types.js';
import { ApprovalWebhooks } from './approval-webhooks.js';
import { formatSeconds, requestView, SettledMemory, settledView, waitNotice } from './approval-views.js';
import {
  checkMayDecide,
  notDecided,
  fleetCall,
  listAcrossFleet,
  readFromFleet,
  shareHold,
  UNREACHABLE_REFUSAL,
} from './fleet-calls.js';
import { webhookEventOf, type PendingRequest } from './pending-request.js';
import type { ApprovalLinks } from './webhook-payload.js';

const SHUTTING_DOWN: WithdrawCause = { kind: 'shutdown' };

/** How many settled ids are remembered to answer 409 (not 404) to a late decision, and `GET` by id. */
const SETTLED_MEMORY = 10_000;
const REMINDER_INTERVAL_MS = 30_000;
/** On close, webhook deliveries still under way (the `cancelled` of each pending request) get this long. */
const CLOSE_DELIVERY_GRACE_MS = 3_000;

export class ApprovalBrokerImpl implements ApprovalBroker {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly settled = new SettledMemory(SETTLED_MEMORY);
  private readonly webhooks: ApprovalWebhooks;
  private readonly subscribers = new Set<(event: ApprovalEvent) => void>();
  private readonly now: () => number;
  private closed = false;
  /** The `approvals` section in force: replaced by `reconfigure` (a configuration reload). */
  private config: ApprovalsConfig;
  private readonly sharing: ApprovalSharing | undefined;
  private readonly stopWatching: () => void;

  constructor(private readonly options: ApprovalBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.config = options.config;
    this.webhooks = new ApprovalWebhooks(options.signer, options.log);
    this.sharing = options.sharing;
    this.stopWatching =
      this.sharing?.watch(
        () => [...this.pending.values()].filter((p) => p.shared && !p.withdrawing).map((p) => p.view.id),
        (approval) => this.learned(approval),
      ) ?? (() => undefined);
  }

  /**
   * A reloaded `approvals` section (timeout, default approvers, webhook) applies to requests held from now on;
   * pending ones keep their expiry, and are decided by who is an approver both as held and as now in force
   * (`liveApprovers`).
   */
  reconfigure(config: ApprovalsConfig): void {
    this.config = config;
  }

  request(input: ApprovalRequestInput, signal?: AbortSignal): Promise<ApprovalSettlement> {
    const requestedAtMs = this.now();
    const id = newId(requestedAtMs);
    if (signal?.aborted)
      return Promise.resolve({ id, outcome: 'cancelled', reason: describeCause(causeOf(signal.reason)) });
    const timeoutMs = this.closed ? 0 : this.config.timeoutMs;
    const expiresAtMs = requestedAtMs + timeoutMs;
    // The rule's approvers, else the section's default.
    const approvers = input.approvers.length > 0 ? input.approvers : this.config.approvers;
    const view = requestView(id, input, approvers, requestedAtMs, expiresAtMs);
    try {
      input.recorder.append('approval.requested', {
        approvalId: id,
        rule: input.rule,
        command: input.command.recordedText ?? input.command.text,
        approvers,
        requestedAt: requestedAtMs,
        expiresAt: expiresAtMs,
      });
      if (this.closed) return Promise.resolve(this.refuseAtOnce(view, input, SHUTTING_DOWN));
    } catch (err) {
      // RECORDING_FAILED: nothing is held, and the gate refuses the command (fail closed).
      return Promise.reject(err);
    }
    const sharing = this.sharing;
    if (sharing === undefined)
      return this.hold(view, input, requestedAtMs, expiresAtMs, timeoutMs, false, signal);
    return this.holdShared(sharing, view, input, requestedAtMs, expiresAtMs, timeoutMs, signal);
  }

  /**
   * Write the request to the fleet database before it waits, so any replica can decide it. When the database cannot
   * be reached the command is refused (fail closed) unless `fleet.approvalsWhenDown: local` holds it here alone.
   */
  private async holdShared(
    sharing: ApprovalSharing,
    view: PendingApproval,
    input: ApprovalRequestInput,
    requestedAtMs: number,
    expiresAtMs: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ApprovalSettlement> {
    const { whenSharingDown, log } = this.options;
    switch (await shareHold(sharing, view, requestedAtMs, expiresAtMs, whenSharingDown, log)) {
      case 'refused':
        return this.refuseAtOnce(view, input, { kind: 'failed', message: UNREACHABLE_REFUSAL });
      case 'local':
        return this.hold(view, input, requestedAtMs, expiresAtMs, timeoutMs, false, signal);
      case 'shared':
        return this.hold(
          { ...view, node: sharing.node },
          input,
          requestedAtMs,
          expiresAtMs,
          timeoutMs,
          true,
          signal,
        );
    }
  }

  private hold(
    view: PendingApproval,
    input: ApprovalRequestInput,
    requestedAtMs: number,
    expiresAtMs: number,
    timeoutMs: number,
    shared: boolean,
    signal: AbortSignal | undefined,
  ): Promise<ApprovalSettlement> {
    const id = view.id;
    const onWaiting = input.onWaiting;
    return new Promise<ApprovalSettlement>((resolve) => {
      // Withdrawn: the signal's reason names why (the client left, shutdown, the credential expired, ...).
      const onAbort = (): void => {
        const cause = causeOf(signal?.reason);
        void this.withdraw(id, 'cancelled', describeCause(cause), cause);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () => void this.withdraw(id, 'expired', `no decision within ${formatSeconds(timeoutMs)}`),
        timeoutMs,
      );
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
        shared,
        withdrawing: false,
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
      // Withdrawn or shut down while the fleet database was being written.
      if (signal?.aborted === true) return onAbort();
      if (this.closed)
        return void this.withdraw(id, 'cancelled', describeCause(SHUTTING_DOWN), SHUTTING_DOWN);
      this.startWebhook(id);
      this.tellWaiting(id, onWaiting);
    });
  }

  /**
   * Expiry and withdrawal are the holder's. A shared request settles as the fleet database has it after a
   * conditional update: this outcome, or the decision that came first. When the database cannot be reached the
   * command is refused all the same (the store writes the outcome back once it can).
   */
  private async withdraw(
    id: string,
    outcome: 'expired' | 'cancelled',
    reason: string,
    cause?: WithdrawCause,
  ): Promise<void> {
    const request = this.pending.get(id);
    if (request === undefined) return;
    if (!request.shared || this.sharing === undefined) {
      this.settle(id, outcome, undefined, reason, cause);
      return;
    }
    if (request.withdrawing) return;
    request.withdrawing = true;
    clearTimeout(request.timer);
    let approval: SharedApproval | undefined;
    try {
      approval = await this.sharing.withdraw(id, outcome, reason);
    } catch (err) {
      this.options.log.warn(
        'the fleet database is unreachable: the approval settles here and is written back later',
        {
          approval: id,
          outcome,
          error: (err as Error).message,
        },
      );
    }
    if (approval !== undefined && approval.state !== 'pending' && approval.state !== outcome)
      this.learned(approval);
    else this.settle(id, outcome, undefined, reason, cause);
  }

  /** The fleet database says a request this replica holds has settled: settle the waiting command the same way. */
  private learned(approval: SharedApproval): void {
    if (approval.state === 'pending') return;
    this.settle(approval.id, approval.state, approval.decidedBy ?? undefined, approval.reason ?? undefined);
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
    const wait = waitNotice(request.view, request.expiresAtMs, request.notices, this.now(), this.links(id));
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
   * A request made once closed (the gateway draining or stopping), or one that cannot be shared with the fleet, is
   * refused at once, and recorded like any other settlement (no approver is asked), so the record says why the
   * command did not run.
   */
  private refuseAtOnce(
    view: PendingApproval,
    input: ApprovalRequestInput,
    cause: WithdrawCause,
  ): ApprovalSettlement {
    const id = view.id;
    const reason = describeCause(cause);
    try {
      input.recorder.append('approval.decided', {
        approvalId: id,
        outcome: 'cancelled',
        by: null,
        reason,
        waitedMs: 0,
        cause: cause.kind,
      });
    } catch (err) {
      // The gate's own decision event hits the same store failure and fails closed.
      this.options.log.error('approval decision could not be recorded', {
        approval: id,
        error: (err as Error).message,
      });
    }
    this.settled.remember(settledView(view, 'cancelled', undefined, reason, this.now()));
    this.options.metrics?.settled('cancelled', 0);
    this.options.log.info(`approval refused: ${reason}`, {
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
    await Promise.all(
      [...this.pending.keys()].map((id) =>
        this.withdraw(id, 'cancelled', describeCause(SHUTTING_DOWN), SHUTTING_DOWN),
      ),
    );
    this.stopWatching();
    await this.webhooks.close(CLOSE_DELIVERY_GRACE_MS);
  }

  /** The admin API: `GET /api/approvals`, `POST /api/approvals/{id}/approve|deny`. False when not its path. */
  handleHttp(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    return handleApprovalsHttp(this, this.options.identity, this.options.log, req, res, pathname);
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
    if (request.shared)
      throw new AgentgateError(
        'INTERNAL',
        `approval ${id} is shared with the fleet: it is decided with decideAnywhere`,
      );
    checkMayDecide(this.options, approver, outcome, request.view);
    return this.settle(id, outcome, approver.name, reason)!;
  }

  /**
   * Decide a request held on this replica or, in a fleet, on any replica (the admin API and the console). A shared
   * request is decided by a conditional update of its row: of two approvers at the same instant one wins, the
   * other gets CONFLICT. Rejects UPSTREAM_UNAVAILABLE when the fleet database cannot be reached.
   */
  async decideAnywhere(
    id: string,
    approver: Identity,
    outcome: 'approved' | 'rejected',
    reason?: string,
  ): Promise<ApprovalSettlement> {
    const local = this.pending.get(id);
    const sharing = this.sharing;
    if (sharing === undefined || (local !== undefined && !local.shared) || this.settled.has(id))
      return this.decide(id, approver, outcome, reason);
    const row = await fleetCall(() => sharing.get(id));
    if (row === undefined) throw new AgentgateError('NOT_FOUND', `no approval request ${id}`);
    if (row.state !== 'pending')
      throw new AgentgateError('CONFLICT', `approval ${id} is already settled (${row.state})`);
    checkMayDecide(this.options, approver, outcome, row);
    const result = await fleetCall(() => sharing.decide(id, outcome, approver.name, reason));
    if (result.kind !== 'decided') {
      if (result.kind === 'settled') this.learned(result.approval);
      throw notDecided(id, result);
    }
    // The holder is told by the fleet database; when it is this replica, the command goes on at once.
    this.learned(result.approval);
    return {
      id,
      outcome,
      by: approver.name,
      ...(reason === undefined ? {} : { reason }),
    };
  }

  /** In a fleet: other replicas' requests are listed and decided here too (`listAnywhere`, `decideAnywhere`). */
  get sharedAcrossReplicas(): boolean {
    return this.sharing !== undefined;
  }

  /**
   * Pending requests, oldest first: in a fleet those of every replica (and any this replica holds alone). When the
   * fleet database cannot be reached, this replica's own.
   */
  async listAnywhere(): Promise<PendingApproval[]> {
    if (this.sharing === undefined) return this.list();
    const onlyHere = [...this.pending.values()].filter((p) => !p.shared).map((p) => p.view);
    return (await listAcrossFleet(this.sharing, onlyHere, this.options.log)) ?? this.list();
  }

  /** One request as `GET /api/approvals/{id}` shows it, whichever replica holds it. */
  async getAnywhere(
    id: string,
  ): Promise<(PendingApproval & ApprovalLinks & { status: 'pending' }) | SettledApproval | undefined> {
    const here = this.get(id);
    if (this.sharing === undefined || here !== undefined) return here;
    return readFromFleet(this.sharing, id, this.links(id), this.now(), this.options.log);
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
    this.settled.remember(settledView(request.view, outcome, by, reason, settledAtMs));
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

  /** `approval.requested`: the receiver may decide it (an auto-approval bot); delivery stops once it settles. */
  private startWebhook(id: string): void {
    const webhook = this.config.webhook;
    const request = this.pending.get(id);
    if (webhook === undefined || request === undefined) return;
    const event = webhookEventOf(request, 'approval.requested', this.links(id));
    this.webhooks.requested(webhook, event, request.settledController.signal, ({ outcome, reason }) => {
      if (!request.shared || this.sharing === undefined) {
        this.settle(id, outcome, 'webhook', reason);
        return;
      }
      // Like any approver's: one conditional update decides, and the holder (this replica) settles from it.
      this.sharing.decide(id, outcome, 'webhook', reason).then(
        (result) => {
          if (result.kind !== 'not-found') this.learned(result.approval);
        },
        (err: unknown) =>
          this.options.log.error("the webhook's decision could not be written to the fleet database", {
            approval: id,
            error: (err as Error).message,
          }),
      );
    });
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
    this.webhooks.settled(webhook, {
      ...webhookEventOf(request, `approval.${settlement.outcome}`, this.links(settlement.id)),
      settlement: {
        settlement,
        settledAt: settledAtMs,
        waitedMs,
        ...(cause === undefined ? {} : { cause: cause.kind }),
      },
    });
  }
}

export function createApprovalBroker(options: ApprovalBrokerOptions): ApprovalBrokerImpl {
  return new ApprovalBrokerImpl(options);
}
