/**
 * SSH key registrations shared by the replicas of a fleet (docs/configuration.md, `fleet`): each registration or
 * renewal is a row of `agentgate.ssh_key_registrations`, a revocation fills the revocation columns of the key's
 * rows, and both NOTIFY `agentgate_ssh_keys` so every replica reads the table again at once. The registry in
 * `@agentgate/identity` keeps what it read in memory for authentication; this is its store
 * (identity's `SshKeyRegistrationStore`, matched by shape: identity and fleet do not import each other).
 */
import { createHash } from 'node:crypto';
import { AgentgateError, type Logger } from '@agentgate/core';
import type { FleetDatabase } from './fleet-database.js';
import type { FleetNotifications } from './fleet-notifications.js';

export const sshKeysChannel = 'agentgate_ssh_keys';

export type FleetRegisteredWith =
  { readonly kind: 'token'; readonly sha256: string } | { readonly kind: 'oidc'; readonly issuer: string };

/** A registration as identity's registry hands it over and takes it back (times in ms since the epoch). */
export interface FleetSshKeyRegistration {
  readonly publicKey: string;
  readonly identity: string;
  readonly groups: readonly string[];
  readonly registeredAt: number;
  readonly expiresAt: number;
  readonly registeredWith?: FleetRegisteredWith;
  readonly revoked?: { readonly reason: string };
}

export interface FleetSshKeyRevocation {
  readonly fingerprint: string;
  readonly by: string;
  readonly reason?: string;
}

export interface FleetSshKeysOptions {
  readonly db: FleetDatabase;
  readonly notifications: FleetNotifications;
  /** this replica's `fleet.node`, kept with its registrations and revocations */
  readonly node: string;
  readonly log: Logger;
  /** how often the table is read even without a notification, ms (default 3000) */
  readonly pollMs?: number;
}

interface RegistrationRow {
  fingerprint: string;
  public_key: string;
  identity: string;
  groups: string[];
  registered_with: FleetRegisteredWith | null;
  registered_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
  revoked_node: string | null;
  revoked_reason: string | null;
}

/** For each key with an unexpired row, its latest row (a renewal may have shortened it). */
const latestRegistrations = `
SELECT DISTINCT ON (fingerprint)
       fingerprint, public_key, identity, groups, registered_with, registered_at, expires_at,
       revoked_at, revoked_by, revoked_node, revoked_reason
  FROM agentgate.ssh_key_registrations
 WHERE fingerprint IN (SELECT fingerprint FROM agentgate.ssh_key_registrations WHERE expires_at > now())
 ORDER BY fingerprint, id DESC`;

export class FleetSshKeys {
  readonly shared = true;
  private readonly pollMs: number;
  private readonly stops = new Set<() => void>();

  constructor(private readonly options: FleetSshKeysOptions) {
    this.pollMs = options.pollMs ?? 3000;
  }

  async read(): Promise<FleetSshKeyRegistration[]> {
    const result = await this.options.db.query<RegistrationRow>(latestRegistrations);
    const now = Date.now();
    return result.rows
      .filter((row) => row.expires_at.getTime() > now || row.revoked_at !== null)
      .map((row) => ({
        publicKey: row.public_key,
        identity: row.identity,
        groups: row.groups,
        registeredAt: row.registered_at.getTime(),
        expiresAt: row.expires_at.getTime(),
        ...(row.registered_with === null ? {} : { registeredWith: row.registered_with }),
        ...(row.revoked_at === null
          ? {}
          : {
              revoked: {
                reason:
                  `by ${row.revoked_by ?? 'unknown'} through replica ${row.revoked_node ?? 'unknown'}` +
                  (row.revoked_reason === null ? '' : ` (${row.revoked_reason})`),
              },
            }),
      }));
  }

  /**
   * Insert the registration unless another identity holds the key (its latest row unexpired and unrevoked): one
   * transaction under a lock on the key, so two replicas registering it at once for different identities cannot
   * both succeed.
   */
  async saveRegistration(registration: FleetSshKeyRegistration): Promise<void> {
    const fingerprint = fingerprintOf(registration.publicKey);
    await this.transaction(async (query) => {
      await query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [fingerprint]);
      const holder = await query<{ identity: string }>(
        `SELECT identity FROM agentgate.ssh_key_registrations
          WHERE fingerprint = $1 AND id = (SELECT max(id) FROM agentgate.ssh_key_registrations WHERE fingerprint = $1)
            AND revoked_at IS NULL AND expires_at > now()`,
        [fingerprint],
      );
      const identity = holder.rows[0]?.identity;
      if (identity !== undefined && identity !== registration.identity)
        throw new AgentgateError('CONFLICT', `ssh key ${fingerprint} is registered by another identity`);
      await query(
        `INSERT INTO agentgate.ssh_key_registrations
           (fingerprint, public_key, identity, groups, registered_with, registered_at, expires_at, node)
         VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz, $8)`,
        [
          fingerprint,
          registration.publicKey,
          registration.identity,
          JSON.stringify(registration.groups),
          registration.registeredWith === undefined ? null : JSON.stringify(registration.registeredWith),
          // as ISO strings: exact to the millisecond, which a read gives back unchanged
          new Date(registration.registeredAt).toISOString(),
          new Date(registration.expiresAt).toISOString(),
          this.options.node,
        ],
      );
      await query('SELECT pg_notify($1, $2)', [sshKeysChannel, `registered ${fingerprint}`]);
    });
  }

  /** Mark every unrevoked row of each key revoked; the NOTIFYs go out when the transaction commits. */
  async saveRevocations(revocations: readonly FleetSshKeyRevocation[]): Promise<void> {
    if (revocations.length === 0) return;
    await this.transaction(async (query) => {
      for (const r of revocations) {
        await query(
          `UPDATE agentgate.ssh_key_registrations
              SET revoked_at = now(), revoked_by = $2, revoked_node = $3, revoked_reason = $4
            WHERE fingerprint = $1 AND revoked_at IS NULL`,
          [r.fingerprint, r.by, this.options.node, r.reason ?? null],
        );
        await query('SELECT pg_notify($1, $2)', [sshKeysChannel, `revoked ${r.fingerprint}`]);
      }
    });
  }

  /**
   * Report a possible change on every notification, after every (re)connect of the LISTEN connection (notifications
   * may have been missed), and every `pollMs` as a fallback.
   */
  watch(changed: () => void): () => void {
    const unsubscribe = this.options.notifications.subscribe(sshKeysChannel, {
      onNotify: (payload) => {
        this.options.log.debug('fleet: ssh key change', { change: payload });
        changed();
      },
      onResync: changed,
    });
    const timer = setInterval(changed, this.pollMs);
    timer.unref();
    const stop = (): void => {
      clearInterval(timer);
      unsubscribe();
      this.stops.delete(stop);
    };
    this.stops.add(stop);
    return stop;
  }

  /** Stop watching (before the fleet database closes). */
  close(): void {
    for (const stop of [...this.stops]) stop();
  }

  private async transaction(
    body: (
      query: <R extends object>(text: string, values?: unknown[]) => Promise<{ rows: R[] }>,
    ) => Promise<void>,
  ): Promise<void> {
    const client = await this.options.db.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        await body((text, values) => client.query(text, values));
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } finally {
      client.release();
    }
  }
}

/** The fingerprint OpenSSH prints (`SHA256:` and the unpadded base64 of the blob's SHA-256). */
function fingerprintOf(publicKey: string): string {
  const blob = publicKey.split(/\s+/)[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}
