/** The page shell: header with navigation by role, the signed-in identity and sign-out; no inline script or style. */
import { html, type SafeHtml } from '../html.js';
import type { BrowserSession } from '../browser-sessions.js';
import type { Roles } from '../roles.js';

export interface PageContext {
  readonly session: BrowserSession;
  readonly roles: Roles;
}

export type NavItem = 'overview' | 'approvals' | 'sessions';

export function page(options: {
  title: string;
  context?: PageContext;
  active?: NavItem;
  body: SafeHtml;
  /** data-* attributes for the page script (e.g. which event stream to open). */
  data?: Record<string, string>;
  /** Extra scripts and styles served from /assets (the player page). */
  scripts?: readonly string[];
  styles?: readonly string[];
}): SafeHtml {
  const { context } = options;
  const data = Object.entries(options.data ?? {}).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · agentgate</title>
<link rel="stylesheet" href="/assets/console.css">
${(options.styles ?? []).map((href) => html`<link rel="stylesheet" href="${href}">\n`)}
${(options.scripts ?? []).map((src) => html`<script src="${src}" defer></script>\n`)}
<script type="module" src="/assets/console.js"></script>
</head>
<body${data}>
<header class="top">
  <a class="brand" href="/">agentgate</a>
  ${context === undefined ? '' : nav(context, options.active)}
  ${context === undefined ? '' : whoAmI(context)}
</header>
<main>
${options.body}
</main>
</body>
</html>
`;
}

function nav(context: PageContext, active: NavItem | undefined): SafeHtml {
  const item = (name: NavItem, href: string, label: string): SafeHtml =>
    html`<a href="${href}"${name === active ? html` class="active" aria-current="page"` : ''}>${label}</a>`;
  const { roles } = context;
  return html`<nav>
    ${roles.auditor ? item('overview', '/', 'Overview') : ''}
    ${item('approvals', '/approvals', 'Approvals')}
    ${roles.auditor ? item('sessions', '/sessions', 'Sessions') : ''}
  </nav>`;
}

function whoAmI(context: PageContext): SafeHtml {
  const { identity } = context.session;
  const roles = [
    context.roles.admin ? 'admin' : context.roles.auditor ? 'auditor' : '',
    context.roles.approver ? 'approver' : '',
  ].filter(Boolean);
  return html`<div class="whoami">
    <span>Signed in as <strong id="signed-in-identity">${identity.name}</strong></span>
    ${identity.groups.length > 0 ? html`<span class="groups">${identity.groups.join(', ')}</span>` : ''}
    ${roles.length > 0 ? html`<span class="roles">${roles.join(' · ')}</span>` : ''}
    <form method="post" action="/logout">
      <input type="hidden" name="csrf" value="${context.session.csrfToken}">
      <button type="submit" class="link">Sign out</button>
    </form>
  </div>`;
}

/** A simple message page (errors, refusals). */
export function messagePage(title: string, message: SafeHtml | string, context?: PageContext): SafeHtml {
  return page({
    title,
    ...(context === undefined ? {} : { context }),
    body: html`<section class="message"><h1>${title}</h1><p>${message}</p></section>`,
  });
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `2025-01-31 14:05:09 UTC` inside a <time> element. */
export function time(ms: number | null | undefined): SafeHtml {
  if (ms === null || ms === undefined) return html`<span class="muted">–</span>`;
  const d = new Date(ms);
  const text = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  return html`<time datetime="${d.toISOString()}">${text}</time>`;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
