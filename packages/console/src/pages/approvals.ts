/**
 * The approvals page: pending requests first (each with who asked, where, the decoded command, the rule, the time
 * left and the session's previous commands), then the settled ones with who decided and why. The same card
 * renderer serves the page and the live stream, per viewer: approvers get Approve / Deny, the requester sees
 * them disabled, everyone else sees none.
 */
import type { IdentityService, PrincipalRef } from '@agentgate/core';
import type { ApprovalEntry } from '../approvals-feed.js';
import { html, type SafeHtml } from '../html.js';
import { mayDecide } from '../roles.js';
import { commandView } from './commands.js';
import { duration, page, time, type PageContext } from './layout.js';

export interface RecentCommand {
  readonly ts: number;
  readonly text: string;
  readonly action?: string;
}

export interface CardOptions {
  readonly context: PageContext;
  readonly identity: IdentityService;
  /** The approvers the request's rule has in the configuration in force (undefined once the rule is gone). */
  readonly inForce: readonly PrincipalRef[] | undefined;
  readonly recent: readonly RecentCommand[];
  readonly now: number;
  /** Auditors may follow the link to the session. */
  readonly linkSession: boolean;
}

const outcomeText: Record<string, string> = {
  approved: 'Approved',
  rejected: 'Denied',
  expired: 'Expired',
  cancelled: 'Cancelled',
};

export function approvalCard(entry: ApprovalEntry, options: CardOptions): SafeHtml {
  const { session, settlement } = entry;
  const state = settlement?.outcome ?? 'pending';
  return html`<article class="approval ${state}" id="approval-${entry.id}" data-approval="${entry.id}" data-state="${state}">
  <header>
    <span class="state">${settlement === undefined ? 'Waiting for approval' : outcomeText[state]}</span>
    <a class="permalink" href="/approvals/${entry.id}">${entry.id}</a>
  </header>
  <dl class="meta">
    <dt>Requested by</dt><dd class="requester">${session.identity.name}${session.identity.groups.length > 0 ? html` <span class="groups">${session.identity.groups.join(', ')}</span>` : ''}</dd>
    <dt>Listener</dt><dd>${session.listener} <span class="badge">${session.protocol}</span></dd>
    ${entry.heldElsewhere === undefined ? '' : html`<dt>Replica</dt><dd class="replica">${entry.heldElsewhere}</dd>`}
    <dt>Rule</dt><dd><code>${entry.rule}</code></dd>
    <dt>Approvers</dt><dd>${entry.approvers.join(', ') || 'none configured'}</dd>
    <dt>Requested</dt><dd>${time(entry.requestedAt)}</dd>
    ${
      settlement === undefined
        ? html`<dt>Time left</dt><dd><span class="countdown" data-expires-at="${String(entry.expiresAt)}">${duration(Math.max(0, entry.expiresAt - options.now))}</span> (until ${time(entry.expiresAt)})</dd>`
        : html`<dt>Decided</dt><dd class="decision">${outcomeText[state]}${settlement.by === undefined ? '' : html` by <strong class="decided-by">${settlement.by}</strong>`}${settlement.reason === undefined ? '' : html`: <q class="reason">${settlement.reason}</q>`} ${time(entry.settledAt)}</dd>`
    }
    <dt>Session</dt><dd>${options.linkSession ? html`<a href="/sessions/${session.id}">${session.id}</a>` : session.id}</dd>
  </dl>
  <section class="command">
    <h3>Command</h3>
    ${entry.command === undefined ? html`<pre class="code">${entry.text}</pre>` : commandView(entry.command, entry.text, entry.held)}
  </section>
  ${recentCommands(options.recent)}
  ${settlement === undefined ? decisionForm(entry, options) : ''}
</article>`;
}

function recentCommands(recent: readonly RecentCommand[]): SafeHtml | string {
  if (recent.length === 0) return html`<p class="muted context">No earlier commands in this session.</p>`;
  return html`<details class="context" open>
    <summary>Earlier in this session (last ${recent.length})</summary>
    <ol>
      ${recent.map(
        (c) =>
          html`<li>${time(c.ts)} ${c.action === undefined ? '' : html`<span class="badge ${c.action}">${c.action}</span>`} <code>${c.text}</code></li>`,
      )}
    </ol>
  </details>`;
}

function decisionForm(entry: ApprovalEntry, options: CardOptions): SafeHtml | string {
  const { context } = options;
  if (!context.roles.approver) return '';
  const may = mayDecide(
    context.session.identity,
    { identity: entry.session.identity.name, approvers: entry.approvers },
    options.identity,
    options.inForce,
  );
  const disabled = may.allowed ? '' : html` disabled`;
  return html`<form class="decide" method="post" action="/approvals/${entry.id}/decide">
    <input type="hidden" name="csrf" value="${context.session.csrfToken}">
    <label>Reason <input type="text" name="reason" maxlength="1000" autocomplete="off"${disabled}></label>
    <button type="submit" name="decision" value="approve" class="approve"${disabled}>Approve</button>
    <button type="submit" name="decision" value="deny" class="deny"${disabled}>Deny</button>
    ${may.allowed ? '' : html`<span class="muted why">You cannot decide this: ${may.why}.</span>`}
  </form>`;
}

export function approvalsPage(
  entries: readonly ApprovalEntry[],
  cards: (entry: ApprovalEntry) => SafeHtml,
  context: PageContext,
  focus?: string,
): SafeHtml {
  const pending = entries.filter((e) => e.settlement === undefined);
  const settled = entries.filter((e) => e.settlement !== undefined);
  return page({
    title: focus === undefined ? 'Approvals' : `Approval ${focus}`,
    context,
    active: 'approvals',
    data: { stream: '/approvals/events', ...(focus === undefined ? {} : { focus }) },
    body: html`<h1>Approvals</h1>
      ${focus === undefined ? '' : html`<p><a href="/approvals">All approvals</a></p>`}
      <section>
        <h2>Waiting <span class="count" id="pending-count">${pending.length}</span></h2>
        <p class="muted empty" id="pending-empty"${pending.length === 0 ? '' : html` hidden`}>Nothing is waiting for approval.</p>
        <div id="pending" class="approvals">${pending.map(cards)}</div>
      </section>
      <section>
        <h2>Decided</h2>
        <div id="decided" class="approvals">${settled.map(cards)}</div>
      </section>`,
  });
}
