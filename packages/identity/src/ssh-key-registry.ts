import { AgentgateError, CredentialLease, type Identity } from '@agentgate/core';
import { parseSshPublicKey } from './ssh-public-key.js';

export interface SshKeyRegistration {
  /** `SHA256:<base64 without padding>`; the registry's key. */
  readonly fingerprint: string;
  readonly keyType: string;
  readonly comment: string;
  /** The identity the key acts as (name and groups of the token that registered it). */
  readonly identity: Identity;
  /** Milliseconds since the epoch. */
  readonly registeredAt: number;
  /** Milliseconds since the epoch; the key stops matching at this instant. */
  readonly expiresAt: number;
}

export interface SshKeyRegistry {
  /**
   * Let the key act as `identity` for `ttlMs`. Registering the same key again by the same identity renews it.
   * Throws BAD_REQUEST for a malformed key or TTL, CONFLICT when the key is configured in `identity.sshKeys` or
   * registered by a different identity (otherwise one user could get another user's connections attributed to them).
   */
  register(publicKeyLine: string, identity: Identity, ttlMs: number): SshKeyRegistration;
  /** Registrations that have not expired, oldest first. */
  list(): SshKeyRegistration[];
  /** Remove a registration; false when none has that fingerprint. */
  revoke(fingerprint: string): boolean;
}

interface RegistryEntry extends SshKeyRegistration {
  readonly blob: Buffer;
  /**
   * The registration's lease, shared by the identities of every renewal: one per key for as long as it stays
   * registered, so a renewal extends connections made before it and a revocation ends them too.
   */
  readonly lease: CredentialLease;
}

/** Registrations live in memory only: they do not survive a gateway restart (users run `agentgate ssh-login` again). */
export class InMemorySshKeyRegistry implements SshKeyRegistry {
  private readonly entries = new Map<string, RegistryEntry>();

  constructor(
    private readonly now: () => number,
    private readonly isConfiguredKey: (blob: Buffer) => boolean,
    private readonly maxEntries = 10_000,
  ) {}

  register(publicKeyLine: string, identity: Identity, ttlMs: number): SshKeyRegistration {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0)
      throw new AgentgateError('BAD_REQUEST', 'ssh key ttl must be a positive duration');
    const key = parseSshPublicKey(publicKeyLine);
    if (this.isConfiguredKey(key.blob)) {
      throw new AgentgateError(
        'CONFLICT',
        `ssh key ${key.fingerprint} is already configured in identity.sshKeys`,
      );
    }
    this.pruneExpired();
    const existing = this.entries.get(key.fingerprint);
    if (existing !== undefined && existing.identity.name !== identity.name) {
      throw new AgentgateError('CONFLICT', `ssh key ${key.fingerprint} is registered by another identity`);
    }
    if (existing === undefined && this.entries.size >= this.maxEntries) {
      throw new AgentgateError('LIMIT_EXCEEDED', `too many registered ssh keys (${this.maxEntries})`);
    }
    const registeredAt = this.now();
    const expiresAt = registeredAt + ttlMs;
    // A renewal extends (or shortens) the connections already made with the key, and revoking the key ends them:
    // they share the registration's lease rather than keeping the one they were opened with.
    const lease = existing?.lease ?? new CredentialLease(expiresAt);
    lease.renew(expiresAt);
    const keyIdentity: Identity = {
      name: identity.name,
      groups: [...identity.groups],
      source: 'ssh-key',
      lease,
    };
    const entry: RegistryEntry = {
      fingerprint: key.fingerprint,
      keyType: key.keyType,
      comment: key.comment,
      identity: keyIdentity,
      registeredAt,
      expiresAt,
      blob: key.blob,
      lease,
    };
    this.entries.delete(key.fingerprint); // re-insert so list() stays ordered by registration time
    this.entries.set(key.fingerprint, entry);
    return publicView(entry);
  }

  list(): SshKeyRegistration[] {
    this.pruneExpired();
    return [...this.entries.values()].map(publicView);
  }

  revoke(fingerprint: string): boolean {
    const entry = this.entries.get(fingerprint);
    if (entry === undefined) return false;
    this.entries.delete(fingerprint);
    entry.lease.revoke();
    return true;
  }

  /** The identity of an unexpired registration whose blob equals `blob`. */
  find(fingerprint: string, blob: Buffer): { keyType: string; identity: Identity } | undefined {
    const entry = this.entries.get(fingerprint);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(fingerprint);
      return undefined;
    }
    return entry.blob.equals(blob) ? { keyType: entry.keyType, identity: entry.identity } : undefined;
  }

  private pruneExpired(): void {
    const now = this.now();
    for (const [fingerprint, entry] of this.entries)
      if (entry.expiresAt <= now) this.entries.delete(fingerprint);
  }
}

function publicView(entry: RegistryEntry): SshKeyRegistration {
  const { blob: _blob, lease: _lease, ...view } = entry;
  return view;
}
