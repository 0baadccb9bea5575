/**
 * One-time sign-in links for setups without an IdP login page (`agentgate console link`): a short-lived JWT signed
 * by a configured issuer's key, with `purpose: "console-link"` and a `jti`. The gateway's identity service verifies
 * it like any token; each jti signs in once. Used jtis are remembered until their token expires, in memory and in
 * a small file (appended before the sign-in completes), so a restart does not make a used link good again.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { AgentgateError, type Identity, type IdentityService } from '@agentgate/core';

export const LINK_PURPOSE = 'console-link';
/** A link older than this is refused whatever its exp says: links are for signing in now, not for later. */
export const MAX_LINK_TTL_SECONDS = 24 * 3600;

export interface VerifiedLink {
  readonly identity: Identity;
  readonly jti: string;
  /** ms since the epoch */
  readonly expiresAt: number;
}

function payloadOf(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new AgentgateError('AUTH_FAILED', 'a sign-in link carries a JWT');
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    if (payload !== null && typeof payload === 'object' && !Array.isArray(payload))
      return payload as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new AgentgateError('AUTH_FAILED', 'the sign-in link is malformed');
}

export class OneTimeLinks {
  /** jti → exp (ms) */
  private readonly used = new Map<string, number>();
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly identity: IdentityService,
    private readonly ledgerFile: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Verify a link without using it up (the page that asks "sign in as …?"). */
  async inspect(token: string): Promise<VerifiedLink> {
    await this.load();
    const link = await this.verify(token);
    if (this.used.has(link.jti))
      throw new AgentgateError('AUTH_FAILED', 'this sign-in link was already used; ask for a new one');
    return link;
  }

  /** Verify and use up a link: a second call with the same link fails, also after a restart. */
  async redeem(token: string): Promise<VerifiedLink> {
    await this.load();
    const link = await this.verify(token);
    // Checked and marked in one turn, before any await: two concurrent redemptions cannot both succeed.
    if (this.used.has(link.jti))
      throw new AgentgateError('AUTH_FAILED', 'this sign-in link was already used; ask for a new one');
    this.used.set(link.jti, link.expiresAt);
    await appendFile(this.ledgerFile, `${JSON.stringify([link.jti, link.expiresAt])}\n`, { mode: 0o600 });
    return link;
  }

  private async verify(token: string): Promise<VerifiedLink> {
    const claims = payloadOf(token);
    if (claims['purpose'] !== LINK_PURPOSE)
      throw new AgentgateError('AUTH_FAILED', 'this token is not a console sign-in link');
    const identity = await this.identity.verifyToken(token, { purpose: LINK_PURPOSE });
    const jti = claims['jti'];
    const exp = claims['exp'];
    const iat = claims['iat'];
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 200)
      throw new AgentgateError('AUTH_FAILED', 'the sign-in link has no jti');
    if (typeof exp !== 'number') throw new AgentgateError('AUTH_FAILED', 'the sign-in link has no expiry');
    const issuedAt = typeof iat === 'number' ? iat : Math.floor(this.now() / 1000);
    if (exp - issuedAt > MAX_LINK_TTL_SECONDS)
      throw new AgentgateError('AUTH_FAILED', 'the sign-in link lives longer than 24h; make a shorter one');
    return { identity, jti, expiresAt: exp * 1000 };
  }

  /** Read the ledger once; drop what has expired and write the rest back. */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      let text: string;
      try {
        text = await readFile(this.ledgerFile, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return;
      }
      const now = this.now();
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          const [jti, exp] = JSON.parse(line) as [unknown, unknown];
          if (typeof jti === 'string' && typeof exp === 'number' && exp > now) this.used.set(jti, exp);
        } catch {
          // a torn last line after a crash: the link it named had not finished signing in
        }
      }
      const kept = [...this.used].map((entry) => JSON.stringify(entry) + '\n').join('');
      await writeFile(this.ledgerFile, kept, { mode: 0o600 });
    })();
    return this.loaded;
  }
}
