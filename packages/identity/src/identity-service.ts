import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  AgentgateError,
  CredentialLease,
  matchesPrincipal,
  silentLogger,
  type Identity,
  type IdentityConfig,
  type IdentityService,
  type Logger,
  type OidcIssuerConfig,
  type PrincipalRef,
  type SshKeyConfig,
} from '@agentgate/core';
import { authFailed } from './auth-failure.js';
import { JwksKeySource } from './jwks-key-source.js';
import { decodeJwt, looksLikeJwt } from './jwt.js';
import { LiveLeases } from './live-leases.js';
import { OidcIssuerVerifier } from './oidc-verifier.js';
import { RegistrationFile, type RegisteredWith } from './registration-file.js';
import type { SshKeyRegistrationStore } from './registration-store.js';
import {
  SshKeyRegistryImpl,
  type RegisteredAs,
  type SshKeyRegistration,
  type SshKeyRegistry,
} from './ssh-key-registry.js';
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
  /**
   * Where SSH key registrations are kept so they survive a restart (docs/configuration.md, files the gateway
   * creates). Without it they live in memory only.
   */
  registrationsFile?: string;
  /**
   * Where SSH key registrations are kept instead of `registrationsFile`: a store the replicas of a fleet share
   * (docs/configuration.md, `fleet`).
   */
  registrations?: SshKeyRegistrationStore;
}

/**
 * What a reload of the `identity` section changed, for the log and the record. A changed entry (another hash or
 * other groups for a token, other groups for a key) counts as removed and added.
 */
export interface IdentityChanges {
  /** Names of `identity.tokens` entries removed or changed: their sessions were ended. */
  readonly tokensRemoved: readonly string[];
  readonly tokensAdded: readonly string[];
  /** Names of `identity.sshKeys` entries removed or changed: their sessions were ended. */
  readonly sshKeysRemoved: readonly string[];
  readonly sshKeysAdded: readonly string[];
  /** Issuers removed from `identity.oidc`: sessions opened with their tokens were ended. */
  readonly issuersRemoved: readonly string[];
  readonly issuersAdded: readonly string[];
  /** Issuers whose settings changed: tokens verified from now on are checked against the new ones. */
  readonly issuersChanged: readonly string[];
  /** Fingerprints of SSH key registrations ended because the credential that registered them was removed. */
  readonly registrationsRevoked: readonly string[];
}

/** A validated identity section, ready to replace the one in force (`apply`) or to be dropped. */
export interface PreparedIdentity {
  /** Swap it in and end what the removed credentials opened. */
  apply(): Promise<IdentityChanges>;
}

export interface IdentityServiceImpl extends IdentityService {
  /** Keys registered through `POST /api/ssh-keys`; kept in `registrationsFile` when one is given. */
  readonly sshKeys: SshKeyRegistry;
  /** The per-issuer JWKS sources (for diagnostics and tests). */
  readonly jwksSources: ReadonlyMap<string, JwksKeySource>;
  /**
   * Check a reloaded `identity` section (throws CONFIG_INVALID as `createIdentityService` would) without changing
   * anything; `apply` then makes it the one in force.
   */
  prepare(cfg: IdentityConfig): PreparedIdentity;
}

const maxCachedTokens = 10_000;

interface ConfiguredKey {
  readonly config: SshKeyConfig;
  readonly blob: Buffer;
  readonly keyType: string;
  /** Revocable: removing the entry by a reload ends its sessions. */
  readonly identity: Identity & { readonly lease: CredentialLease };
}

interface Issuer {
  readonly config: OidcIssuerConfig;
  readonly verifier: OidcIssuerVerifier;
  /** The leases of this issuer's tokens still in use: ended when the issuer is removed. */
  readonly leases: LiveLeases;
}

/** The parts of the identity section a reload replaces together. */
interface IdentityState {
  readonly issuers: readonly Issuer[];
  readonly staticTokens: StaticTokenTable;
  /** Configured ssh keys, by fingerprint (a SHA-256 of the blob; the blob itself is compared on lookup). */
  readonly configuredKeys: ReadonlyMap<string, ConfiguredKey>;
}

export async function createIdentityService(
  cfg: IdentityConfig,
  opts: IdentityServiceOptions = {},
): Promise<IdentityServiceImpl> {
  const log = opts.log ?? silentLogger;
  const now = opts.now ?? Date.now;
  const cacheMs = opts.verifiedTokenCacheMs ?? 60_000;

  const newIssuer = (issuer: OidcIssuerConfig, leases = new LiveLeases(now)): Issuer => ({
    config: issuer,
    verifier: new OidcIssuerVerifier(
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
    leases,
  });

  /** A state for `config`, keeping what is unchanged from `previous` (identities, leases, JWKS caches). */
  function buildState(config: IdentityConfig, previous?: IdentityState): IdentityState {
    const issuers = config.oidc.map((issuer) => {
      const same = previous?.issuers.find((i) => i.config.issuer === issuer.issuer);
      if (same !== undefined && isDeepStrictEqual(same.config, issuer)) return same;
      // Changed settings apply to tokens verified from now on; the tokens in use stay tied to the issuer, so its
      // later removal still ends their sessions.
      return newIssuer(issuer, same?.leases);
    });
    const configuredKeys = new Map<string, ConfiguredKey>();
    for (const [index, entry] of config.sshKeys.entries()) {
      let key;
      try {
        key = parseSshPublicKey(entry.publicKey);
      } catch (err) {
        throw new AgentgateError(
          'CONFIG_INVALID',
          `identity.sshKeys[${index}].publicKey: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      const kept = previous?.configuredKeys.get(key.fingerprint);
      configuredKeys.set(
        key.fingerprint,
        kept !== undefined && isDeepStrictEqual(kept.config, entry)
          ? kept
          : {
              config: entry,
              blob: key.blob,
              keyType: key.keyType,
              identity: {
                name: entry.name,
                groups: [...entry.groups],
                source: 'ssh-key',
                lease: new CredentialLease(),
              },
            },
      );
    }
    return {
      issuers,
      staticTokens: new StaticTokenTable(config.tokens, previous?.staticTokens),
      configuredKeys,
    };
  }

  let state = buildState(cfg);
  const verified = new Map<string, { identity: Identity; until: number }>();
  const isConfiguredKey = (blob: Buffer): boolean =>
    state.configuredKeys.get(sshFingerprint(blob))?.blob.equals(blob) === true;
  /** How a registering caller's credential is named, so that removing the credential ends the registration. */
  const credentialOf = (identity: Identity): RegisteredWith | undefined => {
    if (identity.source === 'oidc' && identity.issuer !== undefined)
      return { kind: 'oidc', issuer: identity.issuer };
    const sha256 = identity.source === 'token' ? state.staticTokens.hashOf(identity) : undefined;
    return sha256 === undefined ? undefined : { kind: 'token', sha256 };
  };
  /** A registration stays while the credential that registered it is configured (a token: unchanged). */
  const credentialStillConfigured = (
    registeredWith: RegisteredWith | undefined,
    registered: RegisteredAs,
  ): boolean => {
    if (registeredWith === undefined) return true;
    if (registeredWith.kind === 'token')
      return state.staticTokens.holds(registeredWith.sha256, registered.name, registered.groups);
    return state.issuers.some((i) => i.config.issuer === registeredWith.issuer);
  };
  const store =
    opts.registrations ??
    (opts.registrationsFile === undefined ? undefined : new RegistrationFile(opts.registrationsFile));
  const registry = new SshKeyRegistryImpl({
    now,
    isConfiguredKey,
    credentialOf,
    credentialConfigured: credentialStillConfigured,
    log,
    ...(store === undefined ? {} : { store }),
  });
  if (store?.shared === true) {
    // The fleet database away at start is not fatal: registered keys are refused here until it is read.
    try {
      const loaded = await registry.load();
      log.info('ssh key registrations read from the fleet', loaded);
    } catch (err) {
      log.warn(
        'ssh key registrations: the fleet database cannot be read; registered keys are refused until it is',
        {
          error: err instanceof Error ? err.message : String(err),
        },
      );
    }
    store.watch?.(() => void registry.refresh());
  } else {
    const loaded = await registry.load();
    if (loaded.restored > 0 || loaded.dropped > 0)
      log.info('ssh key registrations restored', {
        file: opts.registrationsFile,
        restored: loaded.restored,
        dropped: loaded.dropped,
      });
  }

  async function verifyJwt(token: string): Promise<Identity> {
    const jwt = decodeJwt(token);
    const iss = jwt.claims['iss'];
    // The unverified iss only picks which issuer's keys to try; that issuer's signature check then decides.
    const candidates = state.issuers.filter((i) => i.config.issuer === iss);
    if (candidates.length === 0)
      throw authFailed('unknown-issuer', `JWT issuer ${JSON.stringify(iss ?? null)} is not configured`);
    let firstError: unknown;
    for (const issuer of candidates) {
      try {
        const identity = await issuer.verifier.verify(token, jwt);
        if (identity.lease !== undefined) issuer.leases.add(identity.lease);
        return identity;
      } catch (err) {
        firstError ??= err;
      }
    }
    throw firstError;
  }

  const service: IdentityServiceImpl = {
    sshKeys: registry,
    get jwksSources() {
      return new Map(state.issuers.map((i) => [i.config.issuer, i.verifier.keys]));
    },

    async verifyToken(token: string, options: { readonly purpose?: string } = {}): Promise<Identity> {
      // Static tokens first: only a configured token's hash can match, and a service token may happen to contain dots.
      const staticIdentity = options.purpose === undefined ? state.staticTokens.find(token) : undefined;
      if (staticIdentity !== undefined) return staticIdentity;
      if (!looksLikeJwt(token))
        throw authFailed('unknown-token', 'token is neither a JWT nor a configured service token');
      // A one-time console link must not also be a bearer token for a day: it signs in once, and nothing else.
      const purpose = decodeJwt(token).claims['purpose'];
      if (purpose !== options.purpose)
        throw authFailed(
          'wrong-purpose',
          purpose === undefined
            ? `this token has no purpose ${JSON.stringify(options.purpose)}`
            : `a token for ${JSON.stringify(purpose)} is not accepted here`,
        );
      const cacheKey = createHash('sha256').update(token).digest('base64');
      const cached = verified.get(cacheKey);
      if (cached !== undefined) {
        if (cached.until > now()) return cached.identity;
        verified.delete(cacheKey);
      }
      try {
        let identity: Identity;
        let verifiedUnder: IdentityState;
        // A reload during the JWKS fetch may have removed or changed the issuer (and already revoked its leases and
        // emptied the cache): the section in force when verification ends decides, so verify again under it.
        do {
          verifiedUnder = state;
          identity = await verifyJwt(token);
        } while (state !== verifiedUnder);
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
      const configured = state.configuredKeys.get(fingerprint);
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

    prepare(next: IdentityConfig): PreparedIdentity {
      const previous = state;
      const prepared = buildState(next, previous);
      return {
        async apply(): Promise<IdentityChanges> {
          if (state !== previous)
            throw new AgentgateError('CONFLICT', 'the identity section changed since it was prepared');
          state = prepared;
          // Whatever was verified under the old section is verified again under the new one.
          verified.clear();
          const removedTokens = previous.staticTokens.removedIn(prepared.staticTokens);
          for (const entry of removedTokens)
            entry.identity.lease.revoke(
              `token ${entry.config.name} was removed from identity.tokens by a reload`,
            );
          const removedKeys = [...previous.configuredKeys.values()].filter(
            (k) => prepared.configuredKeys.get(sshFingerprint(k.blob)) !== k,
          );
          for (const key of removedKeys)
            key.identity.lease.revoke(
              `ssh key ${key.config.name} was removed from identity.sshKeys by a reload`,
            );
          const removedIssuers = previous.issuers.filter(
            (i) => !prepared.issuers.some((n) => n.config.issuer === i.config.issuer),
          );
          for (const issuer of removedIssuers)
            issuer.leases.revokeAll(
              `issuer ${issuer.config.issuer} was removed from identity.oidc by a reload`,
            );
          const changedIssuers = prepared.issuers.filter(
            (n) =>
              !previous.issuers.includes(n) &&
              previous.issuers.some((i) => i.config.issuer === n.config.issuer),
          );
          let revoked: SshKeyRegistration[] = [];
          try {
            revoked = await registry.revokeWhere(
              (entry) =>
                !credentialStillConfigured(entry.registeredWith, entry.identity) ||
                prepared.configuredKeys.get(entry.fingerprint)?.blob.equals(entry.blob) === true,
              'the credential that registered the key was removed, or the key configured, by a reload',
            );
          } catch (err) {
            // Revoked in memory at once; only the file (or the fleet database, until the next retry) lags.
            log.error('ssh key registrations could not be saved after the reload', {
              error: err instanceof Error ? err.message : String(err),
            });
          }
          // Registrations of the fleet made with a credential this reload added are admitted from now on.
          if (store?.shared === true) void registry.refresh();
          const names = (list: readonly { name: string }[]): string[] => [
            ...new Set(list.map((e) => e.name)),
          ];
          return {
            tokensRemoved: names(removedTokens.map((e) => e.config)),
            tokensAdded: names(prepared.staticTokens.removedIn(previous.staticTokens).map((e) => e.config)),
            sshKeysRemoved: names(removedKeys.map((k) => k.config)),
            sshKeysAdded: names(
              [...prepared.configuredKeys.values()]
                .filter((k) => previous.configuredKeys.get(sshFingerprint(k.blob)) !== k)
                .map((k) => k.config),
            ),
            issuersRemoved: removedIssuers.map((i) => i.config.issuer),
            issuersAdded: prepared.issuers
              .filter((n) => !previous.issuers.some((i) => i.config.issuer === n.config.issuer))
              .map((n) => n.config.issuer),
            issuersChanged: changedIssuers.map((i) => i.config.issuer),
            registrationsRevoked: revoked.map((r) => r.fingerprint),
          };
        },
      };
    },
  };
  return service;
}
