import { AgentgateError, CredentialLease, type Identity } from '@agentgate/core';
import { type RegisteredWith, type RegistrationFile, type StoredRegistration } from './registration-file.js';
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
   * Resolves once the registration is durable (when the registry keeps a file); a failed write changes nothing.
   * Throws BAD_REQUEST for a malformed key or TTL, CONFLICT when the key is configured in `identity.sshKeys` or
   * registered by a different identity (otherwise one user could get another user's connections attributed to them).
   */
  register(publicKeyLine: string, identity: Identity, ttlMs: number): Promise<SshKeyRegistration>;
  /** Registrations that have not expired, oldest first. */
  list(): SshKeyRegistration[];
  /** Remove a registration, ending the connections made with it; false when none has that fingerprint. */
  revoke(fingerprint: string): Promise<boolean>;
}

interface RegistryEntry extends SshKeyRegistration {
  readonly blob: Buffer;
  /**
   * The registration's lease, shared by the identities of every renewal: one per key for as long as it stays
   * registered, so a renewal extends connections made before it and a revocation ends them too.
   */
  readonly lease: CredentialLease;
  /** The credential that registered it, so removing that credential from the configuration ends it. */
  readonly registeredWith?: RegisteredWith;
}

export interface SshKeyRegistryOptions {
  readonly now: () => number;
  readonly isConfiguredKey: (blob: Buffer) => boolean;
  /** How a registering identity's credential is named (a static token's hash, an OIDC issuer). */
  readonly credentialOf: (identity: Identity) => RegisteredWith | undefined;
  /** Where registrations are kept across restarts; without it they live in memory only. */
  readonly file?: RegistrationFile;
  readonly maxEntries?: number;
}

/**
 * Time-limited SSH key registrations (`POST /api/ssh-keys`, `agentgate ssh-login`). With a file they survive a
 * restart with their expiry: every change is written before it is acknowledged.
 */
export class SshKeyRegistryImpl implements SshKeyRegistry {
  private readonly entries = new Map<string, RegistryEntry>();
  private readonly maxEntries: number;

  constructor(private readonly options: SshKeyRegistryOptions) {
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /**
   * Take over the registrations stored in the file that are still good: unexpired, of a key that is not configured,
   * registered with a credential `stillValid` accepts. Returns how many were restored and how many dropped.
   */
  async load(stillValid: (registeredWith: RegisteredWith | undefined) => boolean): Promise<{
    restored: number;
    dropped: number;
  }> {
    const file = this.options.file;
    if (file === undefined) return { restored: 0, dropped: 0 };
    const stored = await file.read();
    const now = this.options.now();
    let dropped = 0;
    for (const s of stored) {
      let key;
      try {
        key = parseSshPublicKey(s.publicKey);
      } catch {
        dropped++;
        continue;
      }
      if (s.expiresAt <= now || this.options.isConfiguredKey(key.blob) || !stillValid(s.registeredWith)) {
        dropped++;
        continue;
      }
      const lease = new CredentialLease(s.expiresAt);
      this.entries.set(key.fingerprint, {
        fingerprint: key.fingerprint,
        keyType: key.keyType,
        comment: key.comment,
        identity: { name: s.identity, groups: [...s.groups], source: 'ssh-key', lease },
        registeredAt: s.registeredAt,
        expiresAt: s.expiresAt,
        blob: key.blob,
        lease,
        ...(s.registeredWith === undefined ? {} : { registeredWith: s.registeredWith }),
      });
    }
    if (dropped > 0) await this.save();
    return { restored: this.entries.size, dropped };
  }

  async register(publicKeyLine: string, identity: Identity, ttlMs: number): Promise<SshKeyRegistration> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0)
      throw new AgentgateError('BAD_REQUEST', 'ssh key ttl must be a positive duration');
    const key = parseSshPublicKey(publicKeyLine);
    if (this.options.isConfiguredKey(key.blob)) {
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
    const registeredAt = this.options.now();
    const expiresAt = registeredAt + ttlMs;
    // A renewal extends (or shortens) the connections already made with the key, and revoking the key ends them:
    // they share the registration's lease rather than keeping the one they were opened with.
    const lease = existing?.lease ?? new CredentialLease(expiresAt);
    const keyIdentity: Identity = {
      name: identity.name,
      groups: [...identity.groups],
      source: 'ssh-key',
      lease,
    };
    const registeredWith = this.options.credentialOf(identity);
    const entry: RegistryEntry = {
      fingerprint: key.fingerprint,
      keyType: key.keyType,
      comment: key.comment,
      identity: keyIdentity,
      registeredAt,
      expiresAt,
      blob: key.blob,
      lease,
      ...(registeredWith === undefined ? {} : { registeredWith }),
    };
    this.entries.delete(key.fingerprint); // re-insert so list() stays ordered by registration time
    this.entries.set(key.fingerprint, entry);
    try {
      await this.save();
    } catch (err) {
      // Not durable, so not made: the key is as it was before.
      if (this.entries.get(key.fingerprint) === entry) {
        this.entries.delete(key.fingerprint);
        if (existing !== undefined) this.entries.set(key.fingerprint, existing);
      }
      throw savingFailed(err);
    }
    lease.renew(expiresAt);
    return publicView(entry);
  }

  list(): SshKeyRegistration[] {
    this.pruneExpired();
    return [...this.entries.values()].map(publicView);
  }

  async revoke(fingerprint: string): Promise<boolean> {
    const entry = this.entries.get(fingerprint);
    if (entry === undefined) return false;
    this.entries.delete(fingerprint);
    // Revoked at once, whatever the file says: a key must stop working when it is revoked.
    entry.lease.revoke();
    try {
      await this.save();
    } catch (err) {
      throw savingFailed(
        err,
        'the key is revoked, but the file still lists it until the next change is saved',
      );
    }
    return true;
  }

  /** Revoke every registration `matches` selects (its credential was removed, its key configured); returns them. */
  async revokeWhere(
    matches: (entry: RegistryEntry) => boolean,
    reason: string,
  ): Promise<SshKeyRegistration[]> {
    const revoked: RegistryEntry[] = [];
    for (const [fingerprint, entry] of this.entries) {
      if (!matches(entry)) continue;
      this.entries.delete(fingerprint);
      entry.lease.revoke(reason);
      revoked.push(entry);
    }
    if (revoked.length > 0) await this.save();
    return revoked.map(publicView);
  }

  /** The identity of an unexpired registration whose blob equals `blob`. */
  find(fingerprint: string, blob: Buffer): { keyType: string; identity: Identity } | undefined {
    const entry = this.entries.get(fingerprint);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.options.now()) {
      this.entries.delete(fingerprint);
      return undefined;
    }
    return entry.blob.equals(blob) ? { keyType: entry.keyType, identity: entry.identity } : undefined;
  }

  private save(): Promise<void> {
    const file = this.options.file;
    if (file === undefined) return Promise.resolve();
    this.pruneExpired();
    return file.write([...this.entries.values()].map(stored));
  }

  private pruneExpired(): void {
    const now = this.options.now();
    for (const [fingerprint, entry] of this.entries)
      if (entry.expiresAt <= now) this.entries.delete(fingerprint);
  }
}

function stored(entry: RegistryEntry): StoredRegistration {
  return {
    publicKey: `${entry.keyType} ${entry.blob.toString('base64')}${entry.comment === '' ? '' : ` ${entry.comment}`}`,
    identity: entry.identity.name,
    groups: entry.identity.groups,
    registeredAt: entry.registeredAt,
    expiresAt: entry.expiresAt,
    ...(entry.registeredWith === undefined ? {} : { registeredWith: entry.registeredWith }),
  };
}

function savingFailed(err: unknown, consequence = 'nothing changed'): AgentgateError {
  return new AgentgateError(
    'INTERNAL',
    `the ssh key registrations could not be saved (${err instanceof Error ? err.message : String(err)}); ${consequence}`,
    { expose: true },
  );
}

function publicView(entry: RegistryEntry): SshKeyRegistration {
  const { blob: _blob, lease: _lease, registeredWith: _with, ...view } = entry;
  return view;
}

export type { RegistryEntry };
