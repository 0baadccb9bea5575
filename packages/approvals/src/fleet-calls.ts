/**
 * The broker's calls to the fleet database (`ApprovalSharing`) and the checks made before them: holding a request
 * as a row, reading every replica's requests, and who may decide one. The broker keeps the waiting commands; these
 * only say what the database answered and what the broker should do with it.
 */
import { AgentgateError, isAgentgateError, type Identity, type Logger } from '@agentgate/core';
import { pendingView, settledView } from './approval-views.js';
import type {
  ApprovalBrokerOptions,
  ApprovalSharing,
  PendingApproval,
  SettledApproval,
  SharedApproval,
  SharedDecision,
  WhenSharingDown,
} from './types.js';
import type { ApprovalLinks } from './webhook-payload.js';

/** Why a hold the fleet database could not take is refused (`fleet.approvalsWhenDown: closed`). */
export const UNREACHABLE_REFUSAL =
  'the fleet database is unreachable, so no replica could approve it (fleet.approvalsWhenDown: closed)';

/**
 * Write a request to the fleet database before it waits. 'shared': any replica may decide it; 'local': the
 * database is away and `approvalsWhenDown: local` holds it here alone; 'refused': the database is away (fail closed).
 */
export async function shareHold(
  sharing: ApprovalSharing,
  view: PendingApproval,
  requestedAtMs: number,
  expiresAtMs: number,
  whenDown: WhenSharingDown | undefined,
  log: Logger,
): Promise<'shared' | 'local' | 'refused'> {
  try {
    await sharing.hold({
      id: view.id,
      node: sharing.node,
      session: view.session,
      listener: view.listener,
      protocol: view.protocol,
      identity: view.identity,
      command: view.command,
      rule: view.rule,
      approvers: view.approvers,
      requestedAt: requestedAtMs,
      expiresAt: expiresAtMs,
    });
    return 'shared';
  } catch (err) {
    const fields = {
      approval: view.id,
      session: view.session,
      rule: view.rule,
      error: (err as Error).message,
    };
    if (whenDown !== 'local') {
      log.warn('approval refused: the fleet database is unreachable', fields);
      return 'refused';
    }
    log.warn('the fleet database is unreachable: holding the approval on this replica only', fields);
    return 'local';
  }
}

/** A fleet database call for the API: its failure is the API's 503, never an internal error. */
export async function fleetCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isAgentgateError(err)) throw err;
    throw new AgentgateError(
      'UPSTREAM_UNAVAILABLE',
      `the fleet database is unreachable: ${(err as Error).message}`,
    );
  }
}

/** Every replica's pending requests and this replica's unshared ones, oldest first; undefined if the database is away. */
export async function listAcrossFleet(
  sharing: ApprovalSharing,
  onlyHere: readonly PendingApproval[],
  log: Logger,
): Promise<PendingApproval[] | undefined> {
  let rows: SharedApproval[];
  try {
    rows = await sharing.listPending();
  } catch (err) {
    log.warn("the fleet database is unreachable: listing this replica's approvals only", {
      error: (err as Error).message,
    });
    return undefined;
  }
  return [...rows.map(pendingView), ...onlyHere].sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
}

/** Another replica's request as `GET /api/approvals/{id}` shows it; undefined if unknown or the database is away. */
export async function readFromFleet(
  sharing: ApprovalSharing,
  id: string,
  links: ApprovalLinks,
  nowMs: number,
  log: Logger,
): Promise<(PendingApproval & ApprovalLinks & { status: 'pending' }) | SettledApproval | undefined> {
  let row: SharedApproval | undefined;
  try {
    row = await sharing.get(id);
  } catch (err) {
    log.warn('the fleet database is unreachable: showing what this replica knows', {
      approval: id,
      error: (err as Error).message,
    });
    return undefined;
  }
  if (row === undefined) return undefined;
  if (row.state === 'pending') return { ...pendingView(row), status: 'pending', ...links };
  return settledView(
    row,
    row.state,
    row.decidedBy ?? undefined,
    row.reason ?? undefined,
    row.decidedAt ?? nowMs,
  );
}

/** Who decides: the broker's identity service and, when the gateway provides it, the approvers in force now. */
export type DecidersInForce = Pick<ApprovalBrokerOptions, 'identity' | 'liveApprovers'>;

/**
 * Approver groups, and no approving one's own request: checked by the deciding replica, from the request and from
 * the deciding replica's configuration. An approver a reload removed from the request's rule (or from
 * `approvals.approvers`) no longer decides requests held before it; a rule no longer in force leaves the recorded ones.
 */
export function checkMayDecide(
  deciders: DecidersInForce,
  approver: Identity,
  outcome: 'approved' | 'rejected',
  request: Pick<PendingApproval, 'id' | 'identity' | 'rule' | 'approvers'>,
): void {
  const { id, approvers } = request;
  if (!deciders.identity.isAllowed(approver, approvers)) {
    throw new AgentgateError(
      'FORBIDDEN',
      `${approver.name} is not an approver for approval ${id} (approvers: ${approvers.join(', ') || 'none configured'})`,
    );
  }
  const inForce = deciders.liveApprovers?.(request.rule);
  if (inForce !== undefined && !deciders.identity.isAllowed(approver, inForce)) {
    throw new AgentgateError(
      'FORBIDDEN',
      `${approver.name} is no longer an approver for approval ${id}: a reload changed the approvers of rule ` +
        `${request.rule} (approvers now: ${inForce.join(', ') || 'none configured'})`,
    );
  }
  if (outcome === 'approved' && approver.name === request.identity) {
    throw new AgentgateError('FORBIDDEN', `${approver.name} may not approve their own request ${id}`);
  }
}

/** Why a decision through the fleet database did not take: the error the API and the console answer with. */
export function notDecided(id: string, result: Exclude<SharedDecision, { kind: 'decided' }>): AgentgateError {
  if (result.kind === 'not-found') return new AgentgateError('NOT_FOUND', `no approval request ${id}`);
  if (result.kind === 'holder-gone')
    return new AgentgateError(
      'UPSTREAM_UNAVAILABLE',
      `approval ${id} is held by replica ${result.approval.node}, which is not connected to the fleet database, ` +
        'so nothing would run the command: not decided (the replica cancels it when it starts again)',
    );
  const why = result.approval.state === 'pending' ? 'expired' : result.approval.state;
  return new AgentgateError('CONFLICT', `approval ${id} is already settled (${why})`);
}
