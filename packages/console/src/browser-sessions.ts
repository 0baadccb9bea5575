/**
 * Browser sessions, kept on the server: the cookie holds only a random id (256 bits). Each session carries the
 * signed-in identity, its CSRF token and its end, which is never later than the IdP token it came from, and it ends
 * early when that identity's credential is revoked.
 * Sign-out deletes it here, so a copied cookie is worthless afterwards. Sessions do not survive a restart.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '@agentgate/core';

export interface BrowserSession {
  readonly id: string;
  readonly identity: Identity;
  readonly csrfToken: string;
  /** ms since the epoch */
  readonly createdAt: number;
  readonly expiresAt: number;
  /** How the person signed in: the IdP's login page or a one-time link. */
  readonly via: 'oidc' | 'link';
}

const MAX_SESSIONS = 10_000;

export class BrowserSessions {
  private readonly sessions = new Map<string, BrowserSession>();

  constructor(private readonly now: () => number = Date.now) {}

  create(identity: Identity, expiresAt: number, via: BrowserSession['via']): BrowserSession {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      // The oldest goes first: a flood of sign-ins cannot grow memory without bound.
      const oldest = this.sessions.keys().next();
      if (oldest.done !== true) this.sessions.delete(oldest.value);
    }
    const session: BrowserSession = {
      id: randomBytes(32).toString('base64url'),
      identity,
      csrfToken: randomBytes(32).toString('base64url'),
      createdAt: this.now(),
      expiresAt,
      via,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for a cookie value; an expired one is removed. */
  get(id: string | undefined): BrowserSession | undefined {
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const session = this.sessions.get(id);
    if (session === undefined) return undefined;
    // A revoked credential (its issuer or token removed by a reload) signs its browser sessions out too, as it
    // ends the agent sessions it opened.
    if (session.expiresAt <= this.now() || session.identity.lease?.revoked === true) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfTokenMatches(session: BrowserSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
