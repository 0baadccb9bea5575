import {
  AgentgateError,
  CredentialLease,
  credentialLapse,
  isAgentgateError,
  silentLogger,
  type Identity,
  type Logger,
} from '@agentgate/core';
import type {
  RegisteredWith,
  SshKeyRegistrationStore,
  StoredRegistration,
  StoredRevocation,
} from './registration-store.js';
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
   * Resolves once the registration is durable (in the file, or the fleet database); a failed write changes nothing.
   * Throws BAD_REQUEST for a malformed key or TTL, CONFLICT when the key is configured in `identity.sshKeys` or
   * registered by a different identity (otherwise one user could get another user's connections attributed to them).
   */
  register(publicKeyLine: string, identity: Identity, ttlMs: number): Promise<SshKeyRegistration>;
  /** Registrations that have not expired, oldest first. */
  list(): SshKeyRegistration[];
  /**
   * Remove a registration, ending the connections made with it; false when none has that fingerprint. `by` (who
   * asked) is kept with a shared store's revocation.
   */
  revoke(fingerprint: string, by?: string): Promise<boolean>;
}

/** Who a registration acts as: the name and groups its credential had when it registered the key. */
export interface RegisteredAs {
  readonly name: string;
  readonly groups: readonly string[];
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
  /** The registry's change counter when the entry was made: a read of a shared store begun before it lacks it. */
  readonly seq: number;
}

export interface SshKeyRegistryOptions {
  readonly now: () => number;
  readonly isConfiguredKey: (blob: Buffer) => boolean;
  /** How a registering identity's credential is named (a static token's hash, an OIDC issuer). */
  readonly credentialOf: (identity: Identity) => RegisteredWith | undefined;
  /**
   * Whether a registration made with this credential, as this identity, may be used here (the credential is
   * configured, and a static token still with that name and those groups).
   */
  readonly credentialConfigured: (
    registeredWith: RegisteredWith | undefined,
    registered: RegisteredAs,
  ) => boolean;
  /** Where registrations are kept across restarts (and shared by a fleet); without it they live in memory only. */
  readonly store?: SshKeyRegistrationStore;
  readonly maxEntries?: number;
  readonly log?: Logger;
}

/**
 * Time-limited SSH key registrations (`POST /api/ssh-keys`, `agentgate ssh-login`). With a store they survive a
 * restart with their expiry: every change is written before it is acknowledged. With a shared store (a fleet) the
 * registrations of every replica are held here too, read again whenever the store reports a change.
 */
export class SshKeyRegistryImpl implements SshKeyRegistry {
  private readonly entries = new Map<string, RegistryEntry>();
  /** Registrations being written, so two at once for one key by different identities conflict. */
  private readonly inFlight = new Map<string, StoredRegistration>();
  /**
   * Keys revoked here, with the change counter from which a read of the shared store reflects the revocation
   * (Infinity while it is not written): an older read must not bring the key back.
   */
  private readonly revokedHere = new Map<string, number>();
  /** Revocations a shared store has not taken yet; written again before every read of it. */
  private readonly pendingRevocations = new Map<string, StoredRevocation>();
  private readonly maxEntries: number;
  private readonly log: Logger;
  private seq = 0;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private readFailing = false;

  constructor(private readonly options: SshKeyRegistryOptions) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.log = options.log ?? silentLogger;
  }

  /**
   * Take over the stored registrations that are still good: unexpired, not revoked, of a key that is not
   * configured, registered with a credential that is configured. Returns how many were restored and how many
   * dropped (a file is rewritten without the dropped ones; a shared store keeps them for the replicas that accept
   * them).
   */
  async load(): Promise<{ restored: number; dropped: number }> {
    const store = this.options.store;
    if (store === undefined) return { restored: 0, dropped: 0 };
    const since = this.seq;
    const stored = await store.read();
    const dropped = this.apply(stored, since);
    if (dropped > 0 && !store.shared) await this.saveAll((all) => store.saveRevocations([], all));
    return { restored: this.entries.size, dropped };
  }

  /**
   * Read a shared store again and follow it: keys registered on other replicas are added, renewals extend the
   * connections made with the key, revocations end them. Calls that overlap one in progress run once more after it.
   */
  refresh(): Promise<void> {
    if (this.refreshing !== undefined) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const run = async (): Promise<void> => {
      await Promise.resolve(); // `refreshing` is set before any of the work can ask for another refresh
      try {
        do {
          this.refreshAgain = false;
          await this.refreshOnce();
        } while (this.refreshAgain);
      } finally {
        this.refreshing = undefined;
      }
    };
    this.refreshing = run();
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return;
    try {
      await this.writePendingRevocations(store);
      const since = this.seq;
      this.apply(await store.read(), since);
      if (this.readFailing) this.log.info('ssh key registrations: the shared store is readable again');
      this.readFailing = false;
    } catch (err) {
      if (!this.readFailing)
        this.log.warn(
          'ssh key registrations: the shared store cannot be read; keys known here keep working, and ' +
            'revocations made elsewhere apply once it is back',
          { error: err instanceof Error ? err.message : String(err) },
        );
      this.readFailing = true;
    }
  }

  /**
   * Make the entries match `stored` (from a read begun at change counter `since`); returns how many stored
   * registrations were not taken. Entries made after the read began are kept as they are.
   */
  private apply(stored: readonly StoredRegistration[], since: number): number {
    const now = this.options.now();
    const seen = new Set<string>();
    let dropped = 0;
    for (const s of stored) {
      let key;
      try {
        key = parseSshPublicKey(s.publicKey);
      } catch {
        dropped++;
        continue;
      }
      seen.add(key.fingerprint);
      const entry = this.entries.get(key.fingerprint);
      if (entry !== undefined && entry.seq > since) continue;
      if (s.revoked !== undefined) {
        if (entry !== undefined) this.remove(entry, `revoked on another replica: ${s.revoked.reason}`);
        continue;
      }
      // Revoked here after the read began: what it says of the key is older than the revocation.
      if ((this.revokedHere.get(key.fingerprint) ?? -1) > since) continue;
      if (
        s.expiresAt <= now ||
        this.options.isConfiguredKey(key.blob) ||
        !this.options.credentialConfigured(s.registeredWith, { name: s.identity, groups: s.groups })
      ) {
        if (entry !== undefined) this.remove(entry, 'the key is no longer registered');
        dropped++;
        continue;
      }
      const sameRegistration =
        entry !== undefined &&
        entry.identity.name === s.identity &&
        entry.expiresAt === s.expiresAt &&
        entry.registeredAt === s.registeredAt;
      if (sameRegistration) continue;
      // Renewed elsewhere by the same identity: the connections made with the key follow the renewal.
      const keepLease = entry !== undefined && entry.identity.name === s.identity;
      if (entry !== undefined && !keepLease)
        this.remove(entry, 'the key was registered again by another identity');
      const lease = keepLease ? entry.lease : new CredentialLease(s.expiresAt);
      this.entries.delete(key.fingerprint);
      this.entries.set(key.fingerprint, {
        fingerprint: key.fingerprint,
        keyType: key.keyType,
        comment: key.comment,
        identity: { name: s.identity, groups: [...s.groups], source: 'ssh-key', lease },
        registeredAt: s.registeredAt,
        expiresAt: s.expiresAt,
        blob: key.blob,
        lease,
        seq: since,
        ...(s.registeredWith === undefined ? {} : { registeredWith: s.registeredWith }),
      });
      lease.renew(s.expiresAt);
    }
    // A key no longer listed has expired (by the store's clock) or was revoked where the store no longer says so.
    for (const entry of [...this.entries.values()])
      if (!seen.has(entry.fingerprint) && entry.seq <= since)
        this.remove(entry, 'the key is no longer registered');
    // Revocations this read already reflects need no guard any more.
    for (const [fingerprint, from] of this.revokedHere)
      if (from <= since) this.revokedHere.delete(fingerprint);
    return dropped;
  }

  private remove(entry: RegistryEntry, reason: string): void {
    if (this.entries.get(entry.fingerprint) === entry) this.entries.delete(entry.fingerprint);
    if (entry.expiresAt > this.options.now()) entry.lease.revoke(reason);
  }

  async register(publicKeyLine: string, identity: Identity, ttlMs: number): Promise<SshKeyRegistration> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0)
      throw new AgentgateError('BAD_REQUEST', 'ssh key ttl must be a positive duration');
    const key = parseSshPublicKey(publicKeyLine);
    // The caller's token was verified before its request body was read: a reload may have removed it since, and a
    // registration made now would name no configured credential and outlive it.
    this.refuseLapsed(identity);
    if (this.options.isConfiguredKey(key.blob)) {
      throw new AgentgateError(
        'CONFLICT',
        `ssh key ${key.fingerprint} is already configured in identity.sshKeys`,
      );
    }
    this.pruneExpired();
    const existing = this.entries.get(key.fingerprint);
    const holder = this.inFlight.get(key.fingerprint)?.identity ?? existing?.identity.name;
    if (holder !== undefined && holder !== identity.name) {
      throw new AgentgateError('CONFLICT', `ssh key ${key.fingerprint} is registered by another identity`);
    }
    if (existing === undefined && this.entries.size + this.inFlight.size >= this.maxEntries) {
      throw new AgentgateError('LIMIT_EXCEEDED', `too many registered ssh keys (${this.maxEntries})`);
    }
    const registeredAt = this.options.now();
    const expiresAt = registeredAt + ttlMs;
    const registeredWith = this.options.credentialOf(identity);
    const registration: StoredRegistration = {
      publicKey: authorizedKeysLine(key.keyType, key.blob, key.comment),
      identity: identity.name,
      groups: [...identity.groups],
      registeredAt,
      expiresAt,
      ...(registeredWith === undefined ? {} : { registeredWith }),
    };
    const store = this.options.store;
    if (store !== undefined) {
      // Not durable (and, in a fleet, not checked against the other replicas), so not made: nothing changes.
      this.inFlight.set(key.fingerprint, registration);
      try {
        await store.saveRegistration(registration, [
          ...[...this.entries.values()].filter((e) => e.fingerprint !== key.fingerprint).map(stored),
          ...this.inFlight.values(),
        ]);
      } catch (err) {
        throw savingFailed(err, store.shared);
      } finally {
        if (this.inFlight.get(key.fingerprint) === registration) this.inFlight.delete(key.fingerprint);
      }
    }
    // Removed while the write ran: the reload's revocation did not see this registration, so it is not made here
    // (the stored one names the credential, which is no longer configured, and is dropped when read again).
    this.refuseLapsed(identity);
    // A renewal extends (or shortens) the connections already made with the key, and revoking the key ends them:
    // they share the registration's lease rather than keeping the one they were opened with. The entry present now
    // may have changed while the write ran (a read of the shared store).
    const current = this.entries.get(key.fingerprint);
    const lease =
      current !== undefined && current.identity.name === identity.name
        ? current.lease
        : new CredentialLease(expiresAt);
    if (current !== undefined && current.lease !== lease)
      this.remove(current, 'the key was registered again by another identity');
    const entry: RegistryEntry = {
      fingerprint: key.fingerprint,
      keyType: key.keyType,
      comment: key.comment,
      identity: { name: identity.name, groups: [...identity.groups], source: 'ssh-key', lease },
      registeredAt,
      expiresAt,
      blob: key.blob,
      lease,
      seq: ++this.seq,
      ...(registeredWith === undefined ? {} : { registeredWith }),
    };
    this.revokedHere.delete(key.fingerprint);
    this.entries.delete(key.fingerprint); // re-insert so list() stays ordered by registration time
    this.entries.set(key.fingerprint, entry);
    lease.renew(expiresAt);
    return publicView(entry);
  }

  private refuseLapsed(identity: Identity): void {
    const lapse = credentialLapse(identity, this.options.now());
    if (lapse !== undefined)
      throw new AgentgateError(
        'AUTH_FAILED',
        `the token that asked to register the key is no longer valid (${lapse.kind})`,
      );
  }

  list(): SshKeyRegistration[] {
    this.pruneExpired();
    return [...this.entries.values()].map(publicView);
  }

  async revoke(fingerprint: string, by = 'unknown'): Promise<boolean> {
    const entry = this.entries.get(fingerprint);
    if (entry === undefined) return false;
    await this.revokeEntries([entry], { by });
    return true;
  }

  /** Revoke every registration `matches` selects (its credential was removed, its key configured); returns them. */
  async revokeWhere(
    matches: (entry: RegistryEntry) => boolean,
    reason: string,
  ): Promise<SshKeyRegistration[]> {
    const selected = [...this.entries.values()].filter(matches);
    if (selected.length > 0) await this.revokeEntries(selected, { by: 'reload', reason });
    return selected.map(publicView);
  }

  /**
   * Revoked here at once, whatever the store says: a key must stop working when it is revoked. A shared store that
   * cannot take the revocation gets it again before each later read, until it does.
   */
  private async revokeEntries(
    selected: readonly RegistryEntry[],
    why: { by: string; reason?: string },
  ): Promise<void> {
    const revocations: StoredRevocation[] = selected.map((entry) => ({
      fingerprint: entry.fingerprint,
      ...why,
    }));
    const store = this.options.store;
    for (const entry of selected) {
      this.entries.delete(entry.fingerprint);
      entry.lease.revoke(why.reason);
      if (store?.shared === true) this.revokedHere.set(entry.fingerprint, Infinity);
    }
    if (store === undefined) return;
    try {
      await store.saveRevocations(revocations, [...this.entries.values()].map(stored));
    } catch (err) {
      if (!store.shared)
        throw savingFailed(
          err,
          false,
          'the key is revoked, but the file still lists it until the next change is saved',
        );
      for (const r of revocations) this.pendingRevocations.set(r.fingerprint, r);
      throw savingFailed(
        err,
        true,
        'the key is revoked on this replica; the other replicas accept it until the revocation reaches the fleet ' +
          'database, which this replica retries every few seconds',
      );
    }
    if (store.shared) {
      const from = ++this.seq;
      for (const r of revocations) this.revokedHere.set(r.fingerprint, from);
    }
  }

  private async writePendingRevocations(store: SshKeyRegistrationStore): Promise<void> {
    if (this.pendingRevocations.size === 0) return;
    const pending = [...this.pendingRevocations.values()];
    await store.saveRevocations(pending, []);
    const from = ++this.seq;
    for (const r of pending) {
      this.pendingRevocations.delete(r.fingerprint);
      if (this.revokedHere.get(r.fingerprint) === Infinity) this.revokedHere.set(r.fingerprint, from);
    }
    this.log.info('ssh key registrations: revocations made while the shared store was away are written', {
      fingerprints: pending.map((r) => r.fingerprint),
    });
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

  private async saveAll(write: (all: StoredRegistration[]) => Promise<void>): Promise<void> {
    this.pruneExpired();
    await write([...this.entries.values()].map(stored));
  }

  private pruneExpired(): void {
    const now = this.options.now();
    for (const [fingerprint, entry] of this.entries)
      if (entry.expiresAt <= now) this.entries.delete(fingerprint);
  }
}

function authorizedKeysLine(keyType: string, blob: Buffer, comment: string): string {
  return `${keyType} ${blob.toString('base64')}${comment === '' ? '' : ` ${comment}`}`;
}

function stored(entry: RegistryEntry): StoredRegistration {
  return {
    publicKey: authorizedKeysLine(entry.keyType, entry.blob, entry.comment),
    identity: entry.identity.name,
    groups: entry.identity.groups,
    registeredAt: entry.registeredAt,
    expiresAt: entry.expiresAt,
    ...(entry.registeredWith === undefined ? {} : { registeredWith: entry.registeredWith }),
  };
}

function savingFailed(err: unknown, shared: boolean, consequence = 'nothing changed'): AgentgateError {
  // The shared store's own verdict (another identity holds the key on another replica) goes to the caller as is.
  if (isAgentgateError(err, 'CONFLICT')) return err;
  const what = shared
    ? 'the fleet database could not take the change'
    : 'the ssh key registrations could not be saved';
  return new AgentgateError(
    shared ? 'UPSTREAM_UNAVAILABLE' : 'INTERNAL',
    `${what} (${err instanceof Error ? err.message : String(err)}); ${consequence}`,
    { expose: true },
  );
}

function publicView(entry: RegistryEntry): SshKeyRegistration {
  const { blob: _blob, lease: _lease, registeredWith: _with, seq: _seq, ...view } = entry;
  return view;
}

export type { RegistryEntry };
