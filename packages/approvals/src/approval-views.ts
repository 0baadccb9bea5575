/** How a request reads outside the broker: the waiting client's notice, and another replica's row as a pending view. */
import type { ApprovalRequestInput, ApprovalWait } from '@agentgate/core';
import type { ApprovalOutcome } from '@agentgate/core';
import type { PendingApproval, SettledApproval, SharedApproval } from './types.js';
import type { ApprovalLinks } from './webhook-payload.js';

/** The notice a waiting client is shown (once held, then at each reminder): the one text all protocols show. */
export function waitNotice(
  view: PendingApproval,
  expiresAtMs: number,
  notice: number,
  nowMs: number,
  links: ApprovalLinks,
): ApprovalWait {
  const url = links.consoleUrl ?? links.apiUrl;
  const remainingMs = Math.max(0, expiresAtMs - nowMs);
  return {
    approvalId: view.id,
    rule: view.rule,
    expiresAt: expiresAtMs,
    notice,
    message:
      `agentgate: waiting for approval ${view.id} (rule ${view.rule}), ` +
      `expires in ${formatRemaining(remainingMs)}${url === undefined ? '' : ` — ${url}`}`,
    ...(url === undefined ? {} : { url }),
  };
}

export function formatSeconds(ms: number): string {
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

export function pendingView(row: SharedApproval): PendingApproval {
  return {
    id: row.id,
    node: row.node,
    session: row.session,
    listener: row.listener,
    protocol: row.protocol,
    identity: row.identity,
    command: row.command,
    rule: row.rule,
    approvers: row.approvers,
    requestedAt: new Date(row.requestedAt).toISOString(),
    expiresAt: new Date(row.expiresAt).toISOString(),
  };
}

/** A request held on this replica as the API lists it: the command as recorded (credentials redacted). */
export function requestView(
  id: string,
  input: ApprovalRequestInput,
  approvers: readonly string[],
  requestedAtMs: number,
  expiresAtMs: number,
): PendingApproval {
  return {
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
}

/** A settled request as `GET /api/approvals/{id}` shows it, keeping who may read it. */
export function settledView(
  request: { readonly id: string; readonly identity: string; readonly approvers: readonly string[] },
  outcome: ApprovalOutcome,
  by: string | undefined,
  reason: string | undefined,
  settledAtMs: number,
): SettledApproval {
  return {
    id: request.id,
    status: outcome,
    by: by ?? null,
    reason: reason ?? null,
    settledAt: new Date(settledAtMs).toISOString(),
    identity: request.identity,
    approvers: request.approvers,
  };
}

/** Recently settled requests, the oldest forgotten past `capacity`: a late decision gets 409, not 404. */
export class SettledMemory {
  private readonly byId = new Map<string, SettledApproval>();

  constructor(private readonly capacity: number) {}

  get(id: string): SettledApproval | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  remember(settled: SettledApproval): void {
    this.byId.set(settled.id, settled);
    if (this.byId.size <= this.capacity) return;
    const oldest = this.byId.keys().next();
    if (oldest.done !== true) this.byId.delete(oldest.value);
  }
}
