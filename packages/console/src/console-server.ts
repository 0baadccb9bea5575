/**
 * The console's HTTP handler on the admin listener. Every request is routed here after the admin routes:
 * assets and sign-in are public; every page, stream and action needs a browser session and a role, checked here
 * on each request; every state-changing request needs the session's CSRF token and this origin. Refused actions
 * are recorded (`record`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  isAgentgateError,
  type ConsoleConfig,
  type Identity,
  type IdentityService,
  type Logger,
  type PrincipalRef,
  type TranscriptEvent,
} from '@agentgate/core';
import { exportAsciicast, exportJsonl, type CheckpointRecord, type StoreHealth } from '@agentgate/transcript';
import { ApprovalsFeed, type ApprovalEntry, type ApprovalsSource, type DecideFn } from './approvals-feed.js';
import { loadAssets, serveAsset } from './assets.js';
import { BrowserSessions, csrfTokenMatches, type BrowserSession } from './browser-sessions.js';
import { checkSessionChain } from './chain-check.js';
import { html, type SafeHtml } from './html.js';
import { cookie, headerValue, parseCookies, readForm, redirect, sendHtml, sendText } from './http.js';
import type { LiveSessions } from './live-sessions.js';
import { OidcSignIn } from './oidc-signin.js';
import { OneTimeLinks } from './one-time-links.js';
import { approvalCard, approvalsPage } from './pages/approvals.js';
import { messagePage, type PageContext } from './pages/layout.js';
import { livePage } from './pages/live.js';
import { overviewPage } from './pages/overview.js';
import { sessionPage } from './pages/session.js';
import { sessionsPage, type SessionsQueryText } from './pages/sessions.js';
import { loginPage } from './pages/signin.js';
import { hasAnyRole, rolesOf, type RoleSources } from './roles.js';
import {
  storeRecords,
  type ConsoleSession,
  type SessionFilter,
  type SessionQuery,
  type SessionRecords,
} from './session-query.js';
import { FleetUnavailable } from './fleet-session-query.js';
import { remoteLivePage } from './pages/live.js';
import { createOverviewData, type ConsoleFleet } from './overview-data.js';
import { RecentCommands } from './recent-commands.js';
import { safeReturnTo as returnToPath } from './return-to.js';
import { createSignInRoutes } from './sign-in-routes.js';
import { buildTimeline } from './timeline.js';
import { createConsoleActions } from './console-actions.js';
import { createConsoleStreams } from './console-streams.js';

/** The store readers the console uses (a subset of `TranscriptStore`). */
export interface ConsoleStore {
  readonly health: StoreHealth;
  events(sessionId: string): Iterable<TranscriptEvent>;
  checkpoints(sessionId: string): Iterable<CheckpointRecord>;
}

/** An action recorded in the transcript under the console's own source. */
export interface ConsoleAction {
  readonly action: string;
  readonly actor: Identity;
  readonly detail: Record<string, unknown>;
}

export interface ConsoleOptions {
  readonly config: ConsoleConfig;
  readonly identity: IdentityService;
  /** `approvals.approvers` and every rule's `approvers`, as in force now. */
  readonly approvers: () => readonly PrincipalRef[];
  /** The approvers a rule has as in force now (its own, else `approvals.approvers`); undefined once it is gone. */
  readonly ruleApprovers?: (rule: string) => readonly PrincipalRef[] | undefined;
  readonly approvals: ApprovalsSource;
  /** The live policy, to mark the held statements of a batch. */
  readonly decide?: DecideFn;
  readonly store: ConsoleStore;
  /** Verifies a checkpoint JWS with the gateway's key (and its previous keys); returns the payload. */
  readonly verifySignature: (jws: string) => Promise<Buffer>;
  readonly live: LiveSessions;
  readonly listeners: () => readonly { readonly name: string; readonly protocol: string }[];
  readonly storeSizeBytes: () => number | undefined;
  /** Where used one-time link ids are remembered. */
  readonly linkLedgerFile: string;
  readonly record: (action: ConsoleAction) => void;
  readonly log: Logger;
  /** Sessions: lists, filters, search and the overview's counts (an IndexedSessionQuery over the session index). */
  readonly sessionQuery: SessionQuery;
  /** Where a session's events and checkpoints are read (default: `store`, checked with `verifySignature`). */
  readonly records?: SessionRecords;
  /** With a fleet: this replica's name, its shipping, and the replicas the fleet database knows. */
  readonly fleet?: ConsoleFleet;
  /** How often the page of a session another replica runs reads its new events from the fleet (default 2 s). */
  readonly remotePollMs?: number;
  readonly now?: () => number;
}

export interface ConsoleHandler {
  /** Handle a request on the admin listener; false for paths that are not the console's (`/api/…`). */
  handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean>;
  /** The console page of an approval request. */
  approvalUrl(id: string): string;
  close(): void;
}

const PAGE_SIZE = 50;

class Forbidden extends Error {}

export function createConsole(options: ConsoleOptions): ConsoleHandler {
  const now = options.now ?? Date.now;
  const { config, log } = options;
  const publicOrigin = new URL(config.publicUrl).origin;
  const https = publicOrigin.startsWith('https:');
  const sessionCookie = https ? '__Host-agentgate_console' : 'agentgate_console';
  const sessions = new BrowserSessions(now);
  const assets = loadAssets();
  const feed = new ApprovalsFeed(options.approvals, options.decide, now);
  const links = new OneTimeLinks(options.identity, options.linkLedgerFile, now);
  const oidc =
    config.oidc === undefined
      ? undefined
      : new OidcSignIn(config.oidc, `${publicOrigin}/auth/callback`, log, now);
  const query = options.sessionQuery;
  const records = options.records ?? storeRecords(options.store, options.verifySignature);
  const fleet = options.fleet;
  /** Held by another replica: it runs (or ran) there, and only its console can end it. */
  const elsewhere = (s: ConsoleSession): boolean =>
    fleet !== undefined && s.node !== undefined && s.node !== fleet.node;
  const roleSources: RoleSources = {
    identity: options.identity,
    auditors: () => config.auditors,
    admins: () => config.admins,
    approvers: options.approvers,
  };
  const recentCommands = new RecentCommands(options.store);

  // ---- helpers ---------------------------------------------------------------------------------------------

  const send = (res: ServerResponse, status: number, body: SafeHtml, extra: { wasm?: boolean } = {}): void =>
    sendHtml(res, status, body, { https, ...extra });

  const sessionOf = (req: IncomingMessage): BrowserSession | undefined =>
    sessions.get(parseCookies(req.headers.cookie).get(sessionCookie));

  const contextOf = (session: BrowserSession): PageContext => ({
    session,
    roles: rolesOf(session.identity, roleSources),
  });

  const sessionCookieFor = (session: BrowserSession): string =>
    cookie(sessionCookie, session.id, {
      secure: https,
      maxAge: Math.max(1, (session.expiresAt - now()) / 1000),
    });

  const safeReturnTo = (value: string | null | undefined): string => returnToPath(value, publicOrigin);

  function record(action: string, actor: Identity, detail: Record<string, unknown>): void {
    try {
      options.record({ action, actor, detail });
    } catch (err) {
      log.error('console: recording an action failed', { action, error: String(err) });
    }
  }

  /** Refuse (403) and record a state-changing request that is not allowed. */
  function refuse(res: ServerResponse, context: PageContext, what: string, why: string, path: string): void {
    record('console request refused', context.session.identity, { request: what, path, reason: why });
    log.warn('console: request refused', { identity: context.session.identity.name, path, reason: why });
    send(res, 403, messagePage('Not allowed', why, context));
  }

  /** Origin and CSRF token of a state-changing request; undefined when both are right. */
  function stateChangeProblem(
    req: IncomingMessage,
    session: BrowserSession | undefined,
    form: Map<string, string>,
  ) {
    if (req.headers.origin !== publicOrigin) return 'the request did not come from this console (Origin)';
    if (session === undefined) return undefined;
    const token = form.get('csrf') ?? headerValue(req, 'x-csrf-token');
    if (!csrfTokenMatches(session, token)) return 'the request carried no valid CSRF token';
    return undefined;
  }

  const card = (entry: ApprovalEntry, context: PageContext): SafeHtml =>
    approvalCard(entry, {
      context,
      identity: options.identity,
      inForce: options.ruleApprovers?.(entry.rule),
      recent: recentCommands.of(entry),
      now: now(),
      linkSession: context.roles.auditor,
    });

  const signIn = createSignInRoutes({
    config,
    log,
    now,
    https,
    publicOrigin,
    sessions,
    links,
    oidc,
    send,
    record,
    sessionCookieFor,
    safeReturnTo,
    stateChangeProblem,
  });

  // ---- pages -----------------------------------------------------------------------------------------------

  function requireRole(context: PageContext, allowed: boolean): void {
    if (!allowed) throw new Forbidden('Your roles do not include this page.');
  }

  const overviewData = createOverviewData(query, now, log);

  async function overview(res: ServerResponse, context: PageContext): Promise<void> {
    const active = new Map<string, number>();
    for (const s of options.live.list()) active.set(s.info.listener, (active.get(s.info.listener) ?? 0) + 1);
    const health = options.store.health;
    const size = options.storeSizeBytes();
    send(
      res,
      200,
      overviewPage({
        context,
        listeners: options.listeners().map((l) => ({ ...l, active: active.get(l.name) ?? 0 })),
        activity: await overviewData.activity(),
        store: {
          writable: health.writable,
          dropped: health.dropped,
          writeErrors: health.writeErrors,
          queued: health.queued,
          ...(health.lastError === undefined ? {} : { lastError: health.lastError }),
          ...(size === undefined ? {} : { sizeBytes: size }),
        },
        pendingApprovals: feed.all().filter((e) => e.settlement === undefined).length,
        ...(fleet === undefined ? {} : { fleet: await overviewData.fleet(fleet) }),
      }),
    );
  }

  async function sessionsList(res: ServerResponse, context: PageContext, url: URL): Promise<void> {
    const p = url.searchParams;
    const text: SessionsQueryText = {
      identity: (p.get('identity') ?? '').trim(),
      protocol: p.get('protocol') ?? '',
      listener: p.get('listener') ?? '',
      since: p.get('since') ?? '',
      until: p.get('until') ?? '',
      q: (p.get('q') ?? '').trim(),
      denied: p.get('denied') === '1',
      approvals: p.get('approvals') === '1',
      active: p.get('active') === '1',
    };
    let error: string | undefined;
    const since = parseLocalTime(text.since);
    const until = parseLocalTime(text.until);
    if (since === null || until === null) error = 'From and To must be dates and times.';
    const filter: SessionFilter = {
      ...(text.identity ? { identity: text.identity } : {}),
      ...(text.protocol ? { protocol: text.protocol } : {}),
      ...(text.listener ? { listener: text.listener } : {}),
      ...(typeof since === 'number' ? { since } : {}),
      ...(typeof until === 'number' ? { until } : {}),
      ...(text.denied ? { hasDenials: true } : {}),
      ...(text.approvals ? { hasApprovals: true } : {}),
      ...(text.active ? { activeNow: true } : {}),
    };
    const before = p.get('before') ?? undefined;
    const page = { limit: PAGE_SIZE, ...(before ? { before } : {}) };
    const result = text.q ? await query.search(text.q, filter, page) : await query.list(filter, page);
    let nextHref: string | undefined;
    if (result.next !== undefined) {
      const next = new URLSearchParams(p);
      next.set('before', result.next);
      nextHref = `/sessions?${next.toString()}`;
    }
    send(
      res,
      200,
      sessionsPage({
        context,
        query: text,
        result,
        listeners: options.listeners().map((l) => l.name),
        isActive: (id) => options.live.has(id),
        indexBehind: query.behind?.() ?? 0,
        ...(fleet === undefined ? {} : { thisNode: fleet.node }),
        ...(nextHref === undefined ? {} : { nextHref }),
        ...(error === undefined ? {} : { error }),
        now: now(),
      }),
    );
  }

  async function sessionDetail(res: ServerResponse, context: PageContext, id: string): Promise<void> {
    const summary = await query.get(id);
    if (summary === undefined)
      return send(res, 404, messagePage('No such session', `No session ${id}.`, context));
    const events = await records.events(summary);
    const timeline = buildTimeline(events);
    const chain = await checkSessionChain(events, await records.checkpoints(summary), (jws) =>
      records.verifySignature(jws, summary),
    );
    const kid = chain.lastCheckpoint?.kid;
    const keyHolder = kid === undefined ? undefined : records.keyHolder?.(kid);
    const player = summary.protocol === 'ssh' && timeline.hasTerminalOutput;
    send(
      res,
      200,
      sessionPage({
        context,
        summary,
        timeline,
        chain,
        live: options.live.has(id),
        ...(fleet === undefined ? {} : { thisNode: fleet.node }),
        ...(keyHolder === undefined ? {} : { keyHolder }),
      }),
      { wasm: player },
    );
  }

  async function exportSession(res: ServerResponse, id: string, format: 'jsonl' | 'cast'): Promise<void> {
    const summary = await query.get(id);
    if (summary === undefined) return sendText(res, 404, `no session ${id}\n`, { https });
    const events = await records.events(summary);
    const filename = `agentgate-session-${id}.${format}`;
    const headers = { 'content-disposition': `attachment; filename="${filename}"` };
    if (format === 'cast') {
      return sendText(res, 200, exportAsciicast(events), {
        https,
        contentType: 'application/x-asciicast',
        headers,
      });
    }
    res.writeHead(200, {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    for (const line of exportJsonl(events)) res.write(line);
    res.end();
  }

  const {
    approvalsStream,
    liveStream,
    remoteLiveStream,
    closeSession: closeStreamsOf,
    closeAll: closeStreams,
  } = createConsoleStreams({
    https,
    alive: (session, reads) => {
      // Roles are asked again: a reload that takes one away ends the streams it opened.
      if (sessions.get(session.id) === undefined) return false;
      const roles = rolesOf(session.identity, roleSources);
      return reads === 'sessions' ? roles.auditor : hasAnyRole(roles);
    },
    feed,
    card: (entry, session) => card(entry, contextOf(session)),
    live: options.live,
    records,
    remotePollMs: options.remotePollMs ?? 2000,
    log,
  });

  const actions = createConsoleActions({ options, feed, send, refuse, https });

  // ---- routing ---------------------------------------------------------------------------------------------

  async function route(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    if (pathname.startsWith('/api/') || pathname === '/api') return false;
    const url = new URL(req.url ?? '/', publicOrigin);
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      if (serveAsset(assets, req, res, pathname, https)) return true;
      if (pathname === '/login')
        return (
          send(
            res,
            200,
            loginPage({ oidc: oidc !== undefined, returnTo: safeReturnTo(url.searchParams.get('returnTo')) }),
          ),
          true
        );
      if (pathname === '/auth/oidc') return (await signIn.startOidc(req, res, url), true);
      if (pathname === '/auth/callback') return (await signIn.finishOidc(req, res, url), true);
      if (pathname === '/auth/link') return (await signIn.linkPage(res, url), true);
    }
    if (method === 'POST' && pathname === '/auth/link') return (await signIn.redeemLink(req, res), true);

    const session = sessionOf(req);
    if (session === undefined) {
      if (method === 'GET' && !pathname.endsWith('/events')) {
        redirect(res, `/login?returnTo=${encodeURIComponent(url.pathname + url.search)}`, { https });
      } else sendText(res, 401, 'sign in first\n', { https });
      return true;
    }
    const context = contextOf(session);

    if (method === 'POST') {
      const form = await readForm(req);
      const problem = stateChangeProblem(req, session, form);
      if (problem !== undefined) return (refuse(res, context, `POST ${pathname}`, problem, pathname), true);
      if (pathname === '/logout') {
        sessions.delete(session.id);
        closeStreamsOf(session.id);
        record('console sign-out', session.identity, {});
        redirect(res, '/login', {
          https,
          headers: { 'set-cookie': cookie(sessionCookie, '', { secure: https, maxAge: 0 }) },
        });
        return true;
      }
      if (!hasAnyRole(context.roles))
        return (
          refuse(res, context, `POST ${pathname}`, 'You have no role in this console.', pathname),
          true
        );
      let m = /^\/approvals\/([0-9A-Z]{26})\/decide$/.exec(pathname);
      if (m !== null) return (await actions.decideApproval(req, res, context, m[1]!, form, pathname), true);
      m = /^\/sessions\/([0-9A-Za-z_-]{1,64})\/terminate$/.exec(pathname);
      if (m !== null) {
        const id = m[1]!;
        if (context.roles.admin && !options.live.has(id)) {
          const held = await query.get(id);
          if (held !== undefined && elsewhere(held))
            return (
              send(
                res,
                409,
                messagePage(
                  'Not ended',
                  `Session ${id} runs on replica ${held.node!}: this console cannot end it. End it from ${held.node!}'s console.`,
                  context,
                ),
              ),
              true
            );
        }
        return (actions.terminate(res, context, id, pathname), true);
      }
      send(res, 404, messagePage('Not found', `Nothing here: ${pathname}`, context));
      return true;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      sendText(res, 405, 'method not allowed\n', { https, headers: { allow: 'GET, POST' } });
      return true;
    }

    if (!hasAnyRole(context.roles)) {
      send(
        res,
        403,
        messagePage(
          'No role',
          html`You are signed in as ${session.identity.name}, who is neither an approver, an auditor nor an admin of this console.`,
          context,
        ),
      );
      return true;
    }
    try {
      if (pathname === '/' || pathname === '/overview') {
        if (!context.roles.auditor) return (redirect(res, '/approvals', { https }), true);
        await overview(res, context);
        return true;
      }
      if (pathname === '/approvals') {
        send(
          res,
          200,
          approvalsPage(feed.all(), (e) => card(e, context), context),
        );
        return true;
      }
      if (pathname === '/approvals/events') return (approvalsStream(req, res, session), true);
      let m = /^\/approvals\/([0-9A-Z]{26})$/.exec(pathname);
      if (m !== null) {
        const entry = feed.get(m[1]!);
        if (entry === undefined) {
          send(
            res,
            404,
            messagePage(
              'No such request',
              `Approval ${m[1]!} is not pending and was not decided recently.`,
              context,
            ),
          );
          return true;
        }
        send(
          res,
          200,
          approvalsPage([entry], (e) => card(e, context), context, entry.id),
        );
        return true;
      }
      requireRole(context, context.roles.auditor);
      if (pathname === '/sessions') return (await sessionsList(res, context, url), true);
      m = /^\/sessions\/([0-9A-Za-z_-]{1,64})(\/live|\/live\/events|\/export\.jsonl|\/export\.cast)?$/.exec(
        pathname,
      );
      if (m !== null) {
        const id = m[1]!;
        switch (m[2]) {
          case undefined:
            await sessionDetail(res, context, id);
            return true;
          case '/live': {
            const live = options.live.get(id);
            if (live !== undefined) return (send(res, 200, livePage({ context, info: live.info })), true);
            const held = fleet === undefined ? undefined : await query.get(id);
            if (held !== undefined && elsewhere(held) && held.endedAt === null)
              send(res, 200, remoteLivePage({ context, summary: held }));
            else redirect(res, `/sessions/${id}`, { https });
            return true;
          }
          case '/live/events': {
            const held = options.live.has(id) || fleet === undefined ? undefined : await query.get(id);
            if (held !== undefined && elsewhere(held)) remoteLiveStream(req, res, session, held);
            else liveStream(req, res, session, id);
            return true;
          }
          case '/export.jsonl':
            await exportSession(res, id, 'jsonl');
            return true;
          case '/export.cast':
            await exportSession(res, id, 'cast');
            return true;
        }
      }
      send(res, 404, messagePage('Not found', `Nothing here: ${pathname}`, context));
      return true;
    } catch (err) {
      if (err instanceof Forbidden) {
        send(res, 403, messagePage('Not allowed', err.message, context));
        return true;
      }
      throw err;
    }
  }

  return {
    async handle(req, res, pathname) {
      try {
        return await route(req, res, pathname);
      } catch (err) {
        const status = isAgentgateError(err, 'LIMIT_EXCEEDED')
          ? 413
          : isAgentgateError(err, 'BAD_REQUEST')
            ? 400
            : err instanceof FleetUnavailable
              ? 503
              : 500;
        if (status === 500) log.error('console: request failed', { path: pathname, error: String(err) });
        const title =
          status === 500
            ? 'Something went wrong'
            : status === 503
              ? 'Fleet database unreachable'
              : 'Bad request';
        if (!res.headersSent)
          send(
            res,
            status,
            messagePage(
              title,
              status === 500 ? 'The console could not answer this request.' : (err as Error).message,
            ),
          );
        else res.destroy();
        return true;
      }
    },
    approvalUrl: (id) => `${publicOrigin}/approvals/${id}`,
    close() {
      feed.close();
      closeStreams();
    },
  };
}

/** `YYYY-MM-DDTHH:MM` from a datetime-local field, read as UTC; '' → undefined; bad → null. */
function parseLocalTime(text: string): number | undefined | null {
  if (text === '') return undefined;
  const ms = Date.parse(/Z|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isFinite(ms) ? ms : null;
}
