/**
 * Who may do what in the console, decided on the server for every page and call:
 * - auditors (`console.auditors`): sessions, session pages, replay, exports, the overview;
 * - admins (`console.admins`): what auditors may, and ending a live session;
 * - approvers (`approvals.approvers` or a rule's `approvers`): the approvals page, and deciding the requests whose
 *   approvers they are (never their own: the broker refuses that too).
 * Anyone else who signs in sees that they have no role, and nothing else.
 */
import type { Identity, IdentityService, PrincipalRef } from '@agentgate/core';

export interface RoleSources {
  readonly identity: IdentityService;
  readonly auditors: () => readonly PrincipalRef[];
  readonly admins: () => readonly PrincipalRef[];
  /** Every approver reference in force: `approvals.approvers` and each rule's `approvers`. */
  readonly approvers: () => readonly PrincipalRef[];
}

export interface Roles {
  readonly auditor: boolean;
  readonly admin: boolean;
  readonly approver: boolean;
}

export function rolesOf(who: Identity, sources: RoleSources): Roles {
  const admin = sources.identity.isAllowed(who, sources.admins());
  return {
    admin,
    auditor: admin || sources.identity.isAllowed(who, sources.auditors()),
    approver: sources.identity.isAllowed(who, sources.approvers()),
  };
}

export function hasAnyRole(roles: Roles): boolean {
  return roles.auditor || roles.admin || roles.approver;
}

/**
 * May `who` decide a request held for `requester` with these approvers? Mirrors the broker's own check: `inForce`,
 * the approvers its rule has in the configuration in force (undefined when the rule is gone), must name `who` too.
 */
export function mayDecide(
  who: Identity,
  request: { readonly identity: string; readonly approvers: readonly PrincipalRef[] },
  identity: IdentityService,
  inForce?: readonly PrincipalRef[],
): { allowed: boolean; why?: string } {
  if (who.name === request.identity) return { allowed: false, why: 'your own request' };
  if (!identity.isAllowed(who, request.approvers))
    return { allowed: false, why: 'you are not an approver of this request' };
  if (inForce !== undefined && !identity.isAllowed(who, inForce))
    return { allowed: false, why: 'a reload changed the approvers of its rule, and you are not one of them' };
  return { allowed: true };
}
