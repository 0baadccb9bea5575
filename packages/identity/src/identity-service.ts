import { createHash } from 'node:crypto';
import {
  AgentgateError,
  matchesPrincipal,
  silentLogger,
  type Identity,
  type IdentityConfig,
  type IdentityService,
  type Logger,
  type PrincipalRef,
} from '@agentgate/core';
import { authFailed } from './auth-failure.js';
import { JwksKeySource } from './jwks-key-source.js';
import { decodeJwt, looksLikeJwt } from './jwt.js';
import { OidcIssuerVerifier } from './oidc-verifier.js';
import { InMemorySshKeyRegistry, type SshKeyRegistry } from './ssh-key-registry.js';
import { algorithmFitsKeyType, parseSshPublicKey, sshFingerprint } from './ssh-public-key.js';
import { StaticTokenTable } from './static-tokens.js';

export interface IdentityServiceOptions {
  log?: Logger;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
  /** Timeout of one JWKS HTTP fetch (default 5 s). */
  fetchTimeoutMs?: number;
  /** An unknown kid re-fetches a URL JWKS at most this often per issuer (default 30 s). */
  jwksMinRefetchIntervalMs?: number;
  /** Cached JWKS are refreshed on next use after this long (default 10 min). */
  jwksMaxAgeMs?: number;
  /** Successful JWT verifications are remembered this long, never past the token's exp (default 60 s; 0 disables). */
  verifiedTokenCacheMs?: number;
}

export interface IdentityServiceImpl extends IdentityService {
  /** Keys registered through `POST /api/ssh-keys`. In memory: registrations do not survive a restart. */
  readonly sshKeys: SshKeyRegistry;
  /** The per-issuer JWKS sources (for diagnostics and tests). */
  readonly jwksSources: ReadonlyMap<string, JwksKeySource>;
}

const maxCachedTokens = 10_000;

export async function createIdentityService(
  cfg: IdentityConfig,
  opts: IdentityServiceOptions = {},
): Promise<IdentityServiceImpl> {
  const log = opts.log ?? silentLogger;
  const now = opts.now ?? Date.now;
  const cacheMs = opts.verifiedTokenCacheMs ?? 60_000;
  const verifiers = cfg.oidc.map(
    (issuer) =>
      new OidcIssuerVerifier(
        issuer,
        new JwksKeySource(issuer.jwks, {
          now,
          log: log.child({ issuer: issuer.issuer }),
          fetchTimeoutMs: opts.fetchTimeoutMs ?? 5_000,
          minRefetchIntervalMs: opts.jwksMinRefetchIntervalMs ?? 30_000,
          maxAgeMs: opts.jwksMaxAgeMs ?? 600_000,
        }),
        now,
      ),
  );
  const staticTokens = new StaticTokenTable(cfg.tokens);
  // Configured ssh keys, by fingerprint (a SHA-256 of the blob; the blob itself is compared on lookup).
  const configuredKeys = new Map<string, { blob: Buffer; keyType: string; identity: Identity }>();
  for (const [index, entry] of cfg.sshKeys.entries()) {
    let key;
    try {
      key = parseSshPublicKey(entry.publicKey);
    } catch (err) {
      throw new AgentgateError(
        'CONFIG_INVALID',
        `identity.sshKeys[${index}].publicKey: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    configuredKeys.set(key.fingerprint, {
      blob: key.blob,
      keyType: key.keyType,
      identity: { name: entry.name, groups: [...entry.groups], source: 'ssh-key' },
    });
  }
  const registry = new InMemorySshKeyRegistry(
    now,
    (blob) => configuredKeys.get(sshFingerprint(blob))?.blob.equals(blob) === true,
  );
  const verified = new Map<string, { identity: Identity; until: number }>();

  async function verifyJwt(token: string): Promise<Identity> {
    const jwt = decodeJwt(token);
    const iss = jwt.claims['iss'];
    // The unverified iss only picks which issuer's keys to try; that issuer's signature check then decides.
    const candidates = verifiers.filter((v) => v.config.issuer === iss);
    if (candidates.length === 0)
      throw authFailed('unknown-issuer', `JWT issuer ${JSON.stringify(iss ?? null)} is not configured`);
    let firstError: unknown;
    for (const verifier of candidates) {
      try {
        return await verifier.verify(token, jwt);
      } catch (err) {
        firstError ??= err;
      }
    }
    throw firstError;
  }

  const service: IdentityServiceImpl = {
    sshKeys: registry,
    jwksSources: new Map(verifiers.map((v) => [v.config.issuer, v.keys])),

    async verifyToken(token: string): Promise<Identity> {
      // Static tokens first: only a configured token's hash can match, and a service token may happen to contain dots.
      const staticIdentity = staticTokens.find(token);
      if (staticIdentity !== undefined) return staticIdentity;
      if (!looksLikeJwt(token))
        throw authFailed('unknown-token', 'token is neither a JWT nor a configured service token');
      const cacheKey = createHash('sha256').update(token).digest('base64');
      const cached = verified.get(cacheKey);
      if (cached !== undefined) {
        if (cached.until > now()) return cached.identity;
        verified.delete(cacheKey);
      }
      try {
        const identity = await verifyJwt(token);
        if (cacheMs > 0) {
          if (verified.size >= maxCachedTokens) {
            const oldest = verified.keys().next();
            if (oldest.done !== true) verified.delete(oldest.value);
          }
          verified.set(cacheKey, {
            identity,
            until: Math.min(now() + cacheMs, identity.lease?.expiresAtMs ?? 0),
          });
        }
        return identity;
      } catch (err) {
        log.debug('token refused', { error: err instanceof Error ? err.message : String(err) });
        throw err;
      }
    },

    findSshKey(algorithm: string, keyData: Buffer): Identity | undefined {
      const fingerprint = sshFingerprint(keyData);
      const configured = configuredKeys.get(fingerprint);
      const match =
        configured !== undefined && configured.blob.equals(keyData)
          ? configured
          : registry.find(fingerprint, keyData);
      if (match === undefined || !algorithmFitsKeyType(algorithm, match.keyType)) return undefined;
      return match.identity;
    },

    isAllowed(identity: Identity, refs: readonly PrincipalRef[]): boolean {
      return matchesPrincipal(identity, refs);
    },
  };
  return service;
}
