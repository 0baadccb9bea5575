/**
 * One session: its summary, the chain check, exports, the terminal player for SSH sessions with output, and the
 * timeline (SQL with decision, duration, rows affected and the recorded masked rows; Docker requests with status;
 * SSH commands and file transfers with name, size and SHA-256).
 */
import type { TranscriptEvent } from '@agentgate/core';
import type { ChainReport } from '../chain-check.js';
import type { ConsoleSession } from '../session-query.js';
import { html, join, type SafeHtml } from '../html.js';
import type { CommandItem, Timeline, TimelineItem } from '../timeline.js';
import { bytes, duration, page, time, type PageContext } from './layout.js';

export function sessionPage(options: {
  context: PageContext;
  summary: ConsoleSession;
  timeline: Timeline;
  chain: ChainReport;
  live: boolean;
  /** With a fleet: this replica's name. */
  thisNode?: string;
  /** Whose signing key signed the last checkpoint (with a fleet: the replica that recorded it). */
  keyHolder?: string;
}): SafeHtml {
  const { summary, timeline, chain } = options;
  const elsewhere =
    options.thisNode !== undefined && summary.node !== undefined && summary.node !== options.thisNode;
  const player = summary.protocol === 'ssh' && timeline.hasTerminalOutput;
  return page({
    title: `Session ${summary.id}`,
    context: options.context,
    active: 'sessions',
    ...(player
      ? {
          scripts: ['/assets/player/asciinema-player.min.js'],
          styles: ['/assets/player/asciinema-player.css'],
        }
      : {}),
    body: html`<h1>Session <code>${summary.id}</code>${options.live ? html` <a class="badge live" href="/sessions/${summary.id}/live">live — watch</a>` : ''}</h1>
${elsewhere && summary.endedAt === null ? html`<p class="notice" id="held-elsewhere">This session is open on replica <strong>${summary.node ?? ''}</strong>. This console shows it read-only from the fleet database: <a href="/sessions/${summary.id}/live">follow it</a> as ${summary.node ?? ''} ships its events; only ${summary.node ?? ''}'s console can end it.</p>` : ''}
${summaryList(summary)}
${options.thisNode === undefined ? '' : fleetSection(summary, options.thisNode, chain.events)}
${chainSection(chain, options.keyHolder)}
<section class="exports">
  <h2>Export</h2>
  <a class="button" href="/sessions/${summary.id}/export.jsonl" download>JSON Lines</a>
  ${timeline.hasTerminalOutput ? html`<a class="button" href="/sessions/${summary.id}/export.cast" download>asciicast</a>` : ''}
</section>
${player ? html`<section class="terminal"><h2>Terminal</h2><div id="player" data-cast="/sessions/${summary.id}/export.cast"></div></section>` : ''}
<section class="timeline">
  <h2>Timeline</h2>
  ${timeline.items.length === 0 ? html`<p class="muted">No events.</p>` : ''}
  <ol class="timeline">${timeline.items.map(timelineItem)}</ol>
  ${
    timeline.ioBytes.in + timeline.ioBytes.out + timeline.ioBytes.err > 0
      ? html`<p class="muted">Stream bytes recorded: ${bytes(timeline.ioBytes.in)} in, ${bytes(timeline.ioBytes.out)} out, ${bytes(timeline.ioBytes.err)} error output.</p>`
      : ''
  }
</section>`,
  });
}

function summaryList(s: ConsoleSession): SafeHtml {
  const client = s.client as { address?: unknown; port?: unknown };
  return html`<dl class="meta summary">
  <dt>Identity</dt><dd>${s.identity}${s.groups.length > 0 ? html` <span class="groups">${s.groups.join(', ')}</span>` : ''}</dd>
  <dt>Listener</dt><dd>${s.listener} <span class="badge">${s.protocol}</span></dd>
  <dt>Client</dt><dd>${String(client.address ?? '')}${client.port === undefined ? '' : `:${String(client.port)}`}</dd>
  <dt>Started</dt><dd>${time(s.startedAt)}</dd>
  <dt>Ended</dt><dd>${time(s.endedAt)}${s.endReason === undefined ? '' : html` — ${s.endReason}`}</dd>
  <dt>Commands</dt><dd>${s.commands}, ${s.denied} denied</dd>
</dl>`;
}

/** Which replica holds the session, and where this page read it. */
function fleetSection(s: ConsoleSession, thisNode: string, events: number): SafeHtml {
  const node = s.node ?? thisNode;
  const here = node === thisNode && s.fromFleet !== true;
  let shipping: SafeHtml | string = '';
  if (here && s.shippedThrough !== undefined)
    shipping =
      s.shippedThrough < 0
        ? html` Not shipped to the fleet database yet.`
        : s.shippedThrough + 1 >= events
          ? html` The fleet database holds all of it.`
          : html` The fleet database holds events 0–${s.shippedThrough}; the rest is not shipped yet.`;
  return html`<p class="fleet-source" id="fleet-source">Recorded by replica <strong id="session-node">${node}</strong>${node === thisNode ? ' (this one)' : ''}; read from ${here ? "this replica's store" : 'the fleet database'}.${shipping}</p>`;
}

function chainSection(chain: ChainReport, keyHolder?: string): SafeHtml {
  const cp = chain.lastCheckpoint;
  return html`<section class="integrity ${chain.intact ? 'intact' : 'broken'}" id="chain">
  <h2>Integrity</h2>
  <p><strong class="chain-state">${chain.intact ? 'Chain intact' : 'Chain broken'}</strong>: ${chain.events} events, ${chain.checkpoints} valid signed checkpoint(s).</p>
  ${
    cp === undefined
      ? html`<p class="muted">No signed checkpoint yet.</p>`
      : html`<p>Last checkpoint at event ${cp.seq}, ${time(cp.ts)}, signed by key <code>${cp.kid ?? 'unknown'}</code>${keyHolder === undefined ? '' : html` (${keyHolder})`}${chain.endSigned ? ' — covers the end of the session' : ''}.</p>`
  }
  ${chain.problems.length === 0 ? '' : html`<ul class="problems">${chain.problems.map((p) => html`<li>${p}</li>`)}</ul>`}
</section>`;
}

function timelineItem(item: TimelineItem): SafeHtml {
  return item.kind === 'command' ? commandItem(item) : eventRow(item.event);
}

/** A decision as a badge: allow, deny, or the approval's outcome. */
function verdict(item: CommandItem): SafeHtml {
  const d = item.decision;
  const action = d?.action ?? 'unknown';
  const rule = d?.rule === undefined ? '' : html` <code>${d.rule}</code>`;
  const reason = d?.reason === undefined ? '' : html` <span class="muted">(${d.reason})</span>`;
  if (action !== 'approve') return html`<span class="badge ${action}">${action}</span>${rule}${reason}`;
  const decided = item.approvalDecided;
  if (decided === undefined) return html`<span class="badge approve">held for approval</span>${rule}`;
  const outcome = String(decided['outcome']);
  const by =
    decided['by'] === null || decided['by'] === undefined
      ? ''
      : html` by <strong>${String(decided['by'])}</strong>`;
  const why =
    decided['reason'] === null || decided['reason'] === undefined
      ? ''
      : html`: <q>${String(decided['reason'])}</q>`;
  return html`<span class="badge ${outcome === 'approved' ? 'allow' : 'deny'}">${outcome}</span>${rule}${by}${why}`;
}

function commandItem(item: CommandItem): SafeHtml {
  const c = item.command;
  const text = String(c['recordedText'] ?? c['text'] ?? '');
  const kind = c['kind'] === undefined ? '' : html`<span class="badge">${String(c['kind'])}</span>`;
  return html`<li class="item command" data-seq="${String(c.seq)}">
  <div class="line">${time(c.ts)} ${kind} ${verdict(item)}</div>
  <pre class="code">${text}</pre>
  ${c['unanalysable'] === undefined ? '' : html`<p class="muted">Not analysable: ${String(c['unanalysable'])}</p>`}
  ${item.results.map(resultView)}
</li>`;
}

function resultView(r: TranscriptEvent): SafeHtml {
  if (r['method'] !== undefined) return dockerResult(r);
  if (r['commandTag'] !== undefined || r['rowDescription'] !== undefined) return sqlResult(r);
  return html`<div class="result">${eventSummary(r)}</div>`;
}

function sqlResult(r: TranscriptEvent): SafeHtml {
  const error = r['error'] as { code?: unknown; message?: unknown } | undefined;
  const desc = r['rowDescription'] as { names?: unknown } | null | undefined;
  const names = Array.isArray(desc?.names) ? (desc.names as unknown[]).map(String) : [];
  const rows = Array.isArray(r['rows']) ? (r['rows'] as unknown[][]) : [];
  const omitted = typeof r['rowsOmitted'] === 'number' ? r['rowsOmitted'] : 0;
  const head = html`<div class="line">${r['commandTag'] === null || r['commandTag'] === undefined ? '' : html`<code>${String(r['commandTag'])}</code>`}
    ${typeof r['rowCount'] === 'number' ? html`<span>${r['rowCount']} row(s)</span>` : ''}
    ${typeof r['durationMs'] === 'number' ? html`<span class="muted">${duration(r['durationMs'])}</span>` : ''}
    ${error === undefined ? '' : html`<span class="badge deny">error ${String(error.code ?? '')}</span> ${String(error.message ?? '')}`}</div>`;
  if (names.length === 0) return html`<div class="result sql">${head}</div>`;
  return html`<div class="result sql">${head}
  <div class="table-scroll"><table class="rows">
    <thead><tr>${names.map((n) => html`<th>${n}</th>`)}</tr></thead>
    <tbody>${rows.map((row) => html`<tr>${(Array.isArray(row) ? row : []).map((v) => html`<td>${v === null ? html`<span class="null">NULL</span>` : cell(v)}</td>`)}</tr>`)}</tbody>
  </table></div>
  ${omitted > 0 ? html`<p class="muted">${omitted} more row(s) not recorded.</p>` : ''}
</div>`;
}

function cell(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function dockerResult(r: TranscriptEvent): SafeHtml {
  const status = Number(r['status']);
  return html`<div class="result docker">
  <div class="line"><code>${String(r['method'])} ${String(r['path'] ?? '')}</code>
    <span class="badge ${status >= 400 ? 'deny' : 'allow'}">${String(r['status'] ?? '')}</span>
    ${typeof r['bodyBytes'] === 'number' ? html`<span class="muted">${bytes(r['bodyBytes'])}</span>` : ''}
    ${r['truncated'] === true ? html`<span class="muted">(body truncated)</span>` : ''}</div>
  ${typeof r['body'] === 'string' && r['body'].length > 0 ? html`<details><summary>Body</summary><pre class="code">${r['body']}</pre></details>` : ''}
</div>`;
}

/** One event on a line: notices, errors, file transfers, exits, session start and end. */
export function eventRow(event: TranscriptEvent): SafeHtml {
  return html`<li class="item event ${event.type.replace('.', '-')}" data-seq="${String(event.seq)}">
  <div class="line">${time(event.ts)} <span class="badge">${event.type}</span> ${eventSummary(event)}</div>
</li>`;
}

export function eventSummary(e: TranscriptEvent): SafeHtml {
  const kind = e['event'];
  if (kind === 'file.transfer') {
    const sha = e['sha256'];
    return html`<span class="transfer">${String(e['via'] ?? '')} ${String(e['direction'] ?? '')} <code>${String(e['path'] ?? '')}</code>
      ${typeof e['bytes'] === 'number' ? bytes(e['bytes']) : ''}
      ${typeof sha === 'string' ? html`SHA-256 <code class="sha">${sha}</code>` : ''}</span>`;
  }
  if (kind === 'exit') return html`exit status ${String(e['exitStatus'] ?? e['exitSignal'] ?? '')}`;
  if (kind === 'session.terminated') return html`<strong>ended by admin ${String(e['by'] ?? '')}</strong>`;
  if (e.type === 'session.start')
    return html`${String(e['identity'] ?? '')} on ${String(e['listener'] ?? '')} (${String(e['protocol'] ?? '')})`;
  if (e.type === 'session.end') return html`${String(e['reason'] ?? '')}`;
  const { session: _s, seq: _q, ts: _t, type: _y, prev: _p, hash: _h, ...body } = e;
  const fields = Object.entries(body)
    .filter(([, v]) => v !== undefined && typeof v !== 'object')
    .map(([k, v]) => html`<span class="field">${k}=<code>${String(v)}</code></span>`);
  return join(fields, ' ');
}
