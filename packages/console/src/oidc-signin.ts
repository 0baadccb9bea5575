/**
 * Sign-in through the IdP's own login page: OpenID Connect authorization code flow with PKCE (S256), state and
 * nonce, done by `openid-client`. The IdP is discovered on first use (a gateway starts even while its IdP is
 * down). Groups come from the claim agent tokens of the same issuer use, in the ID token or else from userinfo.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import {
  AgentgateError,
  CredentialLease,
  hasControlCharacters,
  type ConsoleOidcConfig,
  type Identity,
  type Logger,
} from '@agentgate/core';
import { LoginSealer } from './sealed-login.js';

export interface SignedIn {
  readonly identity: Identity;
  /** ms since the epoch: when the IdP's tokens stop being valid. */
  readonly tokenExpiresAt: number;
}

const LOGIN_TTL_MS = 10 * 60_000;
/** Spent states remembered until they expire; past this many the oldest go (the IdP's codes are single-use too). */
const MAX_SPENT = 10_000;

function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export class OidcSignIn {
  private configuration: Promise<oidc.Configuration> | undefined;
  private readonly sealer = new LoginSealer();
  /** States already answered, with when they expire: a callback is taken once, whoever replays it with the cookie. */
  private readonly spent = new Map<string, number>();

  constructor(
    private readonly config: ConsoleOidcConfig,
    private readonly redirectUri: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Start a login: the IdP URL to redirect to and the browser's login cookie, which carries the login sealed. */
  async begin(returnTo: string): Promise<{ url: string; cookie: string }> {
    const configuration = await this.discover();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = randomBytes(32).toString('base64url');
    const nonce = oidc.randomNonce();
    const cookie = this.sealer.seal({
      state,
      codeVerifier,
      nonce,
      returnTo,
      expiresAt: this.now() + LOGIN_TTL_MS,
    });
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.redirectUri,
      scope: this.config.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, cookie };
  }

  /**
   * Finish a login from the IdP's redirect. `callbackUrl` is the URL the IdP redirected to (under publicUrl);
   * `loginCookie` is this browser's login cookie, whose sealed state must equal the `state` the IdP echoes.
   */
  async finish(callbackUrl: URL, loginCookie: string | undefined): Promise<SignedIn & { returnTo: string }> {
    const state = callbackUrl.searchParams.get('state') ?? '';
    const pending = this.sealer.open(loginCookie);
    const now = this.now();
    this.forgetExpired(now);
    if (
      pending === undefined ||
      pending.state !== state ||
      pending.expiresAt <= now ||
      this.spent.has(state)
    ) {
      throw new AgentgateError(
        'AUTH_FAILED',
        'this sign-in was not started in this browser or took too long; sign in again',
      );
    }
    if (this.spent.size >= MAX_SPENT) this.spent.delete(this.spent.keys().next().value!);
    this.spent.set(state, pending.expiresAt);
    const configuration = await this.discover();
    const tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (claims === undefined) throw new AgentgateError('AUTH_FAILED', 'the IdP returned no ID token');
    // As for tokens on the listeners: the name reaches logs, the record (decided_by) and the CLI's tables as is.
    if (hasControlCharacters(claims.sub))
      throw new AgentgateError('AUTH_FAILED', "the IdP's sub claim contains control characters");
    let groups = readGroups(claims as Record<string, unknown>, this.config.groupsClaim);
    if (groups === undefined && configuration.serverMetadata().userinfo_endpoint !== undefined) {
      const userinfo = await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub);
      groups = readGroups(userinfo as Record<string, unknown>, this.config.groupsClaim);
    }
    const expiresIn = tokens.expiresIn();
    const tokenExpiresAt = Math.min(
      claims.exp * 1000,
      expiresIn === undefined ? Number.POSITIVE_INFINITY : this.now() + expiresIn * 1000,
    );
    return {
      identity: {
        name: claims.sub,
        groups: groups ?? [],
        source: 'oidc',
        issuer: this.config.issuer,
        lease: new CredentialLease(tokenExpiresAt),
      },
      tokenExpiresAt,
      returnTo: pending.returnTo,
    };
  }

  private discover(): Promise<oidc.Configuration> {
    if (this.configuration === undefined) {
      const issuer = new URL(this.config.issuer);
      const auth =
        this.config.clientSecret === undefined
          ? oidc.None()
          : oidc.ClientSecretPost(this.config.clientSecret);
      const discovering = oidc.discovery(
        issuer,
        this.config.clientId,
        undefined,
        auth,
        // Plain http only for an IdP on loopback (the configuration refuses it anywhere else).
        isLoopbackUrl(issuer) && issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {},
      );
      this.configuration = discovering;
      discovering.catch((err: unknown) => {
        // Not cached: the next sign-in tries again.
        this.configuration = undefined;
        this.log.warn('console: OpenID discovery failed', {
          issuer: this.config.issuer,
          error: err instanceof Error ? err.message : String(err),
        });
      });
    }
    return this.configuration;
  }

  /** Spent states in the order they were spent, which is about the order they expire in. */
  private forgetExpired(now: number): void {
    for (const [state, expiresAt] of this.spent) {
      if (expiresAt > now) break;
      this.spent.delete(state);
    }
  }
}

/** Groups from a claim (or a dotted path such as `realm_access.roles`), read as agent tokens' groups are. */
export function readGroups(claims: Record<string, unknown>, name: string): string[] | undefined {
  let value: unknown = claims[name];
  if (value === undefined && name.includes('.')) {
    value = name
      .split('.')
      .reduce<unknown>(
        (node, part) =>
          typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined,
        claims,
      );
  }
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && !hasControlCharacters(value)) return [value];
  if (Array.isArray(value) && value.every((g) => typeof g === 'string' && !hasControlCharacters(g)))
    return [...value];
  throw new AgentgateError(
    'AUTH_FAILED',
    `the IdP's ${name} claim is not a list of strings without control characters`,
  );
}
