/** The sessions list: filters and text search in a GET form (so every view is a link), paged on the server. */
import { html, type SafeHtml } from '../html.js';
import type { ConsoleSession, SessionPage } from '../session-query.js';
import { duration, page, time, type PageContext } from './layout.js';

export interface SessionsQueryText {
  readonly identity: string;
  readonly protocol: string;
  readonly listener: string;
  readonly since: string;
  readonly until: string;
  readonly q: string;
  readonly denied: boolean;
  readonly approvals: boolean;
  readonly active: boolean;
}

export function sessionsPage(options: {
  context: PageContext;
  query: SessionsQueryText;
  result: SessionPage;
  listeners: readonly string[];
  isActive: (id: string) => boolean;
  /** commits the session index has yet to read: the newest sessions may be missing */
  indexBehind?: number;
  /** With a fleet: this replica's name (every replica's sessions are listed, with the one that holds each). */
  thisNode?: string;
  nextHref?: string;
  error?: string;
  now: number;
}): SafeHtml {
  const { query, result } = options;
  const fleet = options.thisNode !== undefined;
  const checked = (on: boolean): SafeHtml | string => (on ? html` checked` : '');
  const option = (value: string, label: string, current: string): SafeHtml =>
    html`<option value="${value}"${value === current ? html` selected` : ''}>${label}</option>`;
  return page({
    title: 'Sessions',
    context: options.context,
    active: 'sessions',
    body: html`<h1>Sessions</h1>
<form class="filters" method="get" action="/sessions">
  <label>Search commands <input type="search" name="q" value="${query.q}" placeholder="text in a command"></label>
  <label>Identity <input type="text" name="identity" value="${query.identity}"></label>
  <label>Protocol <select name="protocol">
    ${option('', 'any', query.protocol)}${option('postgres', 'postgres', query.protocol)}${option('ssh', 'ssh', query.protocol)}${option('docker', 'docker', query.protocol)}
  </select></label>
  <label>Listener <select name="listener">
    ${option('', 'any', query.listener)}${options.listeners.map((l) => option(l, l, query.listener))}
  </select></label>
  <label>From <input type="datetime-local" name="since" value="${query.since}"></label>
  <label>To <input type="datetime-local" name="until" value="${query.until}"></label>
  <label class="check"><input type="checkbox" name="denied" value="1"${checked(query.denied)}> has denials</label>
  <label class="check"><input type="checkbox" name="approvals" value="1"${checked(query.approvals)}> has approvals</label>
  <label class="check"><input type="checkbox" name="active" value="1"${checked(query.active)}> active now</label>
  <button type="submit">Apply</button>
  <a href="/sessions">Reset</a>
</form>
<p class="muted">Times are UTC.${options.thisNode === undefined ? '' : html` Every replica's sessions are listed, from the fleet database; this replica is <strong id="this-node">${options.thisNode}</strong>.`}</p>
${result.notice === undefined ? '' : html`<p class="notice" id="fleet-notice">${result.notice}</p>`}
${(options.indexBehind ?? 0) > 0 ? html`<p class="notice" id="index-behind">The session index is catching up with the transcript (${options.indexBehind} commits to read): the newest sessions and commands may not be listed yet.</p>` : ''}
${options.error === undefined ? '' : html`<p class="error">${options.error}</p>`}
<table class="sessions">
  <thead><tr><th>Session</th>${fleet ? html`<th>Replica</th>` : ''}<th>Identity</th><th>Listener</th><th>Protocol</th><th>Started</th><th>Duration</th><th>Commands</th><th>Denied</th><th></th></tr></thead>
  <tbody>
  ${result.items.length === 0 ? html`<tr><td colspan="${fleet ? '10' : '9'}" class="muted">No sessions match.</td></tr>` : ''}
  ${result.items.map((s) => row(s, options.isActive(s.id), options.now, options.thisNode))}
  </tbody>
</table>
${options.nextHref === undefined ? '' : html`<p class="paging"><a rel="next" href="${options.nextHref}">Older sessions →</a></p>`}`,
  });
}

function row(s: ConsoleSession, active: boolean, now: number, thisNode: string | undefined): SafeHtml {
  const ended = s.endedAt ?? now;
  // Open on another replica: followed from here by reading the fleet, not live.
  const openElsewhere = !active && thisNode !== undefined && s.node !== thisNode && s.endedAt === null;
  return html`<tr class="${s.denied > 0 ? 'has-denials' : ''}" data-session="${s.id}">
    <td><a href="/sessions/${s.id}">${s.id}</a></td>
    ${thisNode === undefined ? '' : html`<td class="node">${nodeCell(s, thisNode)}</td>`}
    <td>${s.identity}</td>
    <td>${s.listener}</td>
    <td><span class="badge">${s.protocol}</span></td>
    <td>${time(s.startedAt)}</td>
    <td>${active ? html`<span class="badge live">live</span>` : openElsewhere ? html`<span class="badge">open</span>` : duration(Math.max(0, ended - s.startedAt))}</td>
    <td>${s.commands}</td>
    <td>${s.denied > 0 ? html`<span class="badge deny">${s.denied}</span>` : '0'}</td>
    <td>${active ? html`<a href="/sessions/${s.id}/live">watch</a>` : openElsewhere ? html`<a href="/sessions/${s.id}/live">follow</a>` : ''}</td>
  </tr>`;
}

function nodeCell(s: ConsoleSession, thisNode: string): SafeHtml {
  const name = s.node ?? thisNode;
  return html`${name}${name === thisNode ? html` <span class="muted">(this one)</span>` : ''}${s.shippedThrough === -1 ? html` <span class="badge" title="recorded here; the fleet database does not hold it yet">not shipped yet</span>` : ''}`;
}
