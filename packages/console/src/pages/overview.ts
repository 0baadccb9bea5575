/** The overview: active sessions per listener, the last 24 hours as a small chart, store size and health. */
import { html, type SafeHtml } from '../html.js';
import type { ActivityBucket } from '../session-query.js';
import { bytes, page, time, type PageContext } from './layout.js';

export interface ListenerActivity {
  readonly name: string;
  readonly protocol: string;
  readonly active: number;
}

export interface StoreStatus {
  readonly writable: boolean;
  readonly sizeBytes?: number;
  readonly lastError?: string;
  readonly dropped: number;
  readonly writeErrors: number;
  readonly queued: number;
}

/** This replica's shipping to the fleet database (the shipper's status). */
export interface FleetStatus {
  readonly connected?: boolean;
  readonly lagEvents?: number;
  readonly lagSeconds?: number;
  readonly lastError?: string;
}

/** A replica as the fleet database knows it. */
export interface FleetNodeStatus {
  readonly node: string;
  readonly sessions: number;
  readonly open: number;
  readonly newestSessionAt?: number;
}

export function overviewPage(options: {
  context: PageContext;
  listeners: readonly ListenerActivity[];
  activity: readonly ActivityBucket[];
  store: StoreStatus;
  pendingApprovals: number;
  fleet?: {
    readonly node?: string;
    readonly status: FleetStatus;
    readonly nodes?: readonly FleetNodeStatus[];
    readonly error?: string;
  };
}): SafeHtml {
  const { store, activity } = options;
  const totals = activity.reduce(
    (t, b) => ({
      commands: t.commands + b.commands,
      denials: t.denials + b.denials,
      approvals: t.approvals + b.approvals,
    }),
    { commands: 0, denials: 0, approvals: 0 },
  );
  return page({
    title: 'Overview',
    context: options.context,
    active: 'overview',
    body: html`<h1>Overview</h1>
<div class="cards">
  <section class="card">
    <h2>Active sessions</h2>
    <table class="compact">
      <thead><tr><th>Listener</th><th>Protocol</th><th>Active</th></tr></thead>
      <tbody>${options.listeners.map(
        (l) =>
          html`<tr><td><a href="/sessions?listener=${encodeURIComponent(l.name)}&amp;active=1">${l.name}</a></td><td><span class="badge">${l.protocol}</span></td><td class="num">${l.active}</td></tr>`,
      )}</tbody>
    </table>
  </section>
  <section class="card">
    <h2>Approvals</h2>
    <p><a href="/approvals"><span class="big">${options.pendingApprovals}</span> waiting</a></p>
  </section>
  <section class="card">
    <h2>Store</h2>
    <p><span class="badge ${store.writable ? 'allow' : 'deny'}">${store.writable ? 'writable' : 'not writable'}</span>
      ${store.sizeBytes === undefined ? '' : html` ${bytes(store.sizeBytes)} on disk`}</p>
    ${store.lastError === undefined ? '' : html`<p class="error">${store.lastError}</p>`}
    <p class="muted">${store.queued} write(s) queued, ${store.writeErrors} write error(s), ${store.dropped} event(s) dropped.</p>
    <p><a href="/metrics">Prometheus metrics</a></p>
  </section>
</div>
${options.fleet === undefined ? '' : fleetCard(options.fleet)}
<section class="card wide">
  <h2>Last 24 hours${options.fleet === undefined ? '' : ', every replica'}</h2>
  <p class="legend"><span class="key commands"></span> commands ${totals.commands}
    <span class="key denials"></span> denials ${totals.denials}
    <span class="key approvals"></span> approval requests ${totals.approvals}</p>
  ${activityChart(activity)}
</section>`,
  });
}

function fleetCard(fleet: NonNullable<Parameters<typeof overviewPage>[0]['fleet']>): SafeHtml {
  const st = fleet.status;
  return html`<section class="card wide" id="fleet">
  <h2>Fleet</h2>
  <p>This replica <strong>${fleet.node ?? ''}</strong>: <span class="badge ${st.connected === true ? 'allow' : 'deny'}">${st.connected === true ? 'shipping' : 'fleet database unreachable'}</span>
    ${st.lagEvents === undefined ? '' : html` ${st.lagEvents} event(s) not shipped yet${st.lagSeconds === undefined ? '' : html`, ${st.lagSeconds.toFixed(1)} s behind`}.`}</p>
  ${st.lastError === undefined ? '' : html`<p class="muted">${st.lastError}</p>`}
  ${fleet.error === undefined ? '' : html`<p class="error">The fleet database cannot be read: ${fleet.error}</p>`}
  ${
    fleet.nodes === undefined
      ? ''
      : html`<table class="compact" id="fleet-nodes">
    <thead><tr><th>Replica</th><th>Sessions shipped</th><th>Open</th><th>Newest session</th></tr></thead>
    <tbody>${fleet.nodes.map(
      (n) =>
        html`<tr><td>${n.node}${n.node === fleet.node ? html` <span class="muted">(this one)</span>` : ''}</td><td class="num">${n.sessions}</td><td class="num">${n.open}</td><td>${n.newestSessionAt === undefined ? '' : time(n.newestSessionAt)}</td></tr>`,
    )}</tbody>
  </table>`
  }
</section>`;
}

/** Grouped bars per hour, drawn on the server; colours come from the stylesheet (classes), not attributes. */
export function activityChart(buckets: readonly ActivityBucket[]): SafeHtml {
  const width = 720;
  const height = 160;
  const top = 10;
  const bottom = 20;
  const left = 36;
  const plotHeight = height - top - bottom;
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.commands, b.denials, b.approvals)));
  const slot = (width - left) / Math.max(1, buckets.length);
  const barWidth = Math.max(1, (slot - 2) / 3);
  const bar = (i: number, k: number, value: number, cls: string): SafeHtml => {
    const h = (value / max) * plotHeight;
    const x = left + i * slot + 1 + k * barWidth;
    return html`<rect class="${cls}" x="${x.toFixed(1)}" y="${(top + plotHeight - h).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}"><title>${value} ${cls}</title></rect>`;
  };
  const labels = buckets
    .map((b, i) => ({ b, i }))
    .filter(({ i }) => i % 6 === 0)
    .map(({ b, i }) => {
      const d = new Date(b.start);
      const label = `${String(d.getUTCHours()).padStart(2, '0')}:00`;
      return html`<text class="axis" x="${(left + i * slot).toFixed(1)}" y="${height - 4}">${label}</text>`;
    });
  return html`<svg class="chart" id="activity-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="commands, denials and approval requests per hour">
  <line class="axis" x1="${left}" y1="${top + plotHeight}" x2="${width}" y2="${top + plotHeight}"></line>
  <text class="axis" x="2" y="${top + 8}">${max}</text>
  <text class="axis" x="2" y="${top + plotHeight}">0</text>
  ${buckets.map((b, i) => html`${bar(i, 0, b.commands, 'commands')}${bar(i, 1, b.denials, 'denials')}${bar(i, 2, b.approvals, 'approvals')}`)}
  ${labels}
</svg>`;
}
