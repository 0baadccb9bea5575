/**
 * Sign-in: the OpenID Connect authorization code flow with PKCE (`/auth/oidc`, `/auth/callback`) and one-time links
 * (`/auth/link`, confirmed by a POST so link previews cannot spend them). Both end in a browser session cookie
 * that expires no later than what signed the person in.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAgentgateError, type ConsoleConfig, type Identity, type Logger } from '@agentgate/core';
import type { BrowserSession, BrowserSessions } from './browser-sessions.js';
import type { SafeHtml } from './html.js';
import { cookie, parseCookies, readForm, redirect } from './http.js';
import type { OidcSignIn } from './oidc-signin.js';
import type { OneTimeLinks } from './one-time-links.js';
import { messagePage } from './pages/layout.js';
import { linkConfirmPage, loginPage } from './pages/signin.js';

const LOGIN_COOKIE = 'agentgate_console_login';

export interface SignInDeps {
  readonly config: ConsoleConfig;
  readonly log: Logger;
  readonly now: () => number;
  readonly https: boolean;
  readonly publicOrigin: string;
  readonly sessions: BrowserSessions;
  readonly links: OneTimeLinks;
  readonly oidc: OidcSignIn | undefined;
  send(res: ServerResponse, status: number, body: SafeHtml, extra?: { wasm?: boolean }): void;
  record(action: string, actor: Identity, detail: Record<string, unknown>): void;
  sessionCookieFor(session: BrowserSession): string;
  safeReturnTo(value: string | null | undefined): string;
  stateChangeProblem(req: IncomingMessage, session: undefined, form: Map<string, string>): string | undefined;
}

export interface SignInRoutes {
  startOidc(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  finishOidc(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  linkPage(res: ServerResponse, url: URL): Promise<void>;
  redeemLink(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createSignInRoutes(deps: SignInDeps): SignInRoutes {
  const { config, log, now, https, publicOrigin, sessions, links, oidc, send, record } = deps;
  const { sessionCookieFor, safeReturnTo, stateChangeProblem } = deps;
  return {
    async startOidc(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
      if (oidc === undefined)
        return send(res, 404, messagePage('Not found', 'No identity provider is configured.'));
      try {
        const begun = await oidc.begin(safeReturnTo(url.searchParams.get('returnTo')));
        redirect(res, begun.url, {
          https,
          headers: {
            'set-cookie': cookie(LOGIN_COOKIE, begun.cookie, { secure: https, maxAge: 600, path: '/auth' }),
          },
        });
      } catch (err) {
        log.warn('console: sign-in could not start', { error: String(err) });
        send(
          res,
          502,
          loginPage({
            oidc: true,
            returnTo: '/',
            error: 'The identity provider cannot be reached; try again shortly.',
          }),
        );
      }
    },

    async finishOidc(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
      if (oidc === undefined)
        return send(res, 404, messagePage('Not found', 'No identity provider is configured.'));
      const callback = new URL(url.pathname + url.search, publicOrigin);
      const clearLogin = cookie(LOGIN_COOKIE, '', { secure: https, maxAge: 0, path: '/auth' });
      try {
        const signedIn = await oidc.finish(callback, parseCookies(req.headers.cookie).get(LOGIN_COOKIE));
        const expiresAt = Math.min(signedIn.tokenExpiresAt, now() + config.sessionTtlMs);
        const session = sessions.create(signedIn.identity, expiresAt, 'oidc');
        record('console sign-in', signedIn.identity, { via: 'oidc', expiresAt });
        log.info('console: signed in', { identity: signedIn.identity.name, via: 'oidc' });
        redirect(res, signedIn.returnTo, {
          https,
          headers: { 'set-cookie': [sessionCookieFor(session), clearLogin] },
        });
      } catch (err) {
        log.warn('console: sign-in failed', { error: err instanceof Error ? err.message : String(err) });
        send(res, 401, loginPage({ oidc: true, returnTo: '/', error: signInError(err) }), {});
      }
    },

    async linkPage(res: ServerResponse, url: URL): Promise<void> {
      const token = url.searchParams.get('token') ?? '';
      try {
        const link = await links.inspect(token);
        send(res, 200, linkConfirmPage({ token, identity: link.identity, expiresAt: link.expiresAt }));
      } catch (err) {
        send(res, 401, loginPage({ oidc: oidc !== undefined, returnTo: '/', error: signInError(err) }));
      }
    },

    async redeemLink(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const form = await readForm(req);
      const problem = stateChangeProblem(req, undefined, form);
      if (problem !== undefined) return send(res, 403, messagePage('Not allowed', problem));
      try {
        const link = await links.redeem(form.get('token') ?? '');
        const expiresAt = Math.min(link.expiresAt, now() + config.sessionTtlMs);
        const session = sessions.create({ ...link.identity }, expiresAt, 'link');
        record('console sign-in', link.identity, { via: 'one-time link', jti: link.jti, expiresAt });
        log.info('console: signed in', { identity: link.identity.name, via: 'link' });
        redirect(res, '/', { https, headers: { 'set-cookie': sessionCookieFor(session) } });
      } catch (err) {
        log.warn('console: sign-in link refused', {
          error: err instanceof Error ? err.message : String(err),
        });
        send(res, 401, loginPage({ oidc: oidc !== undefined, returnTo: '/', error: signInError(err) }));
      }
    },
  };
}

function signInError(err: unknown): string {
  if (isAgentgateError(err)) return err.message;
  return 'Sign-in failed; try again.';
}
