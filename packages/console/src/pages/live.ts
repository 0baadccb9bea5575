/** A running session's events as they happen, and (for admins) the button that ends it. */
import {
  recordedDecision,
  type RecordedDecision,
  type SessionInfo,
  type TranscriptEvent,
} from '@agentgate/core';
import { html, type SafeHtml } from '../html.js';
import type { LiveEvent } from '../live-sessions.js';
import type { ConsoleSession } from '../session-query.js';
import { page, time, type PageContext } from './layout.js';
import { eventRow, eventSummary } from './session.js';

export function livePage(options: { context: PageContext; info: SessionInfo }): SafeHtml {
  const { info, context } = options;
  return page({
    title: `Live ${info.id}`,
    context,
    active: 'sessions',
    data: { live: `/sessions/${info.id}/live/events` },
    body: html`<h1>Live session <code>${info.id}</code> <span class="badge live" id="live-state">live</span></h1>
<dl class="meta summary">
  <dt>Identity</dt><dd>${info.identity.name}${info.identity.groups.length > 0 ? html` <span class="groups">${info.identity.groups.join(', ')}</span>` : ''}</dd>
  <dt>Listener</dt><dd>${info.listener} <span class="badge">${info.protocol}</span></dd>
  <dt>Client</dt><dd>${info.client.address}${info.client.port === undefined ? '' : `:${info.client.port}`}</dd>
  <dt>Started</dt><dd>${time(info.startedAt)}</dd>
</dl>
<p><a href="/sessions/${info.id}">Full timeline so far</a></p>
${
  context.roles.admin
    ? html`<form class="terminate" method="post" action="/sessions/${info.id}/terminate">
  <input type="hidden" name="csrf" value="${context.session.csrfToken}">
  <button type="submit" class="deny" id="terminate">End this session</button>
</form>`
    : ''
}
<p class="muted" id="live-ended" hidden></p>
<ol class="timeline live" id="live-events"></ol>`,
  });
}

/**
 * A session another replica runs, followed from the fleet database: read-only (only the console of the replica that
 * runs it can end it), its events appearing as that replica ships them.
 */
export function remoteLivePage(options: { context: PageContext; summary: ConsoleSession }): SafeHtml {
  const { summary: s, context } = options;
  const node = s.node ?? '';
  const client = s.client as { address?: unknown; port?: unknown };
  return page({
    title: `Live ${s.id}`,
    context,
    active: 'sessions',
    data: { live: `/sessions/${s.id}/live/events` },
    body: html`<h1>Live session <code>${s.id}</code> <span class="badge live" id="live-state">live on ${node}</span></h1>
<p class="notice" id="held-elsewhere">This session runs on replica <strong>${node}</strong>. Its events appear here as ${node} ships them to the fleet database (a few seconds behind). This console cannot end it: use ${node}'s console.</p>
<dl class="meta summary">
  <dt>Replica</dt><dd>${node}</dd>
  <dt>Identity</dt><dd>${s.identity}${s.groups.length > 0 ? html` <span class="groups">${s.groups.join(', ')}</span>` : ''}</dd>
  <dt>Listener</dt><dd>${s.listener} <span class="badge">${s.protocol}</span></dd>
  <dt>Client</dt><dd>${String(client.address ?? '')}${client.port === undefined ? '' : `:${String(client.port)}`}</dd>
  <dt>Started</dt><dd>${time(s.startedAt)}</dd>
</dl>
<p><a href="/sessions/${s.id}">Full timeline so far</a></p>
<p class="muted" id="live-ended" hidden></p>
<ol class="timeline live" id="live-events"></ol>`,
  });
}

/** ANSI control sequences (CSI, OSC, charset selection) removed so live terminal output reads as text. */
export function stripAnsi(text: string): string {
  return text.replace(
    /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>78DEHM]/g,
    '',
  );
}

/** One live event as the fragment the page appends. */
export function liveEventFragment(event: LiveEvent & { kind: 'event' | 'io' }, ioText?: string): SafeHtml {
  if (event.kind === 'io')
    return html`<li class="item io ${event.direction}"><pre class="code">${stripAnsi(ioText ?? '')}</pre></li>`;
  const e: TranscriptEvent = event.event;
  const decision = recordedDecision(e);
  if (e.type === 'command')
    return html`<li class="item command" data-seq="${String(e.seq)}"><div class="line">${time(e.ts)} <span class="badge">command</span>${decision === undefined ? '' : html` ${decisionBadge(decision)}`}</div><pre class="code">${String(e['recordedText'] ?? e['text'] ?? '')}</pre></li>`;
  if (decision !== undefined)
    return html`<li class="item decision" data-seq="${String(e.seq)}"><div class="line">${time(e.ts)} ${decisionBadge(decision)}</div></li>`;
  if (e.type === 'result' && (e['commandTag'] !== undefined || e['method'] !== undefined))
    return html`<li class="item result" data-seq="${String(e.seq)}"><div class="line">${time(e.ts)} <span class="badge">result</span> ${e['commandTag'] === undefined ? `${String(e['method'])} ${String(e['path'])} → ${String(e['status'])}` : `${String(e['commandTag'] ?? '')} ${typeof e['rowCount'] === 'number' ? `(${e['rowCount']} rows)` : ''}`}</div></li>`;
  if (e.type === 'result' || e.type === 'notice' || e.type === 'error' || e.type.startsWith('approval'))
    return html`<li class="item event" data-seq="${String(e.seq)}"><div class="line">${time(e.ts)} <span class="badge">${e.type}</span> ${eventSummary(e)}</div></li>`;
  return eventRow(e);
}

/** How the gate decided a command: its action and deciding rule. */
function decisionBadge(d: RecordedDecision): SafeHtml {
  return html`<span class="badge ${d.action}">${d.action}</span>${d.rule === undefined ? '' : html` <code>${d.rule}</code>`}`;
}
