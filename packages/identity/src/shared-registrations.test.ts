/**
 * The registry over a store the replicas of a fleet share (an in-memory stand-in for the fleet database's table,
 * with its rules: a key's latest registration is in force, another identity cannot take a key, a revocation marks
 * the key's rows): what one replica registers, renews or revokes reaches the other at its next read; a read begun
 * before a local change does not undo it; and a store that is away refuses registrations and takes revocations
 * late, while the replica revokes at once.
 */
import { describe, expect, it } from '@jest/globals';
import { AgentgateError, type IdentityConfig } from '@agentgate/core';
import { createIdentityService, type IdentityServiceImpl } from './identity-service.js';
import type { SshKeyRegistrationStore, StoredRegistration, StoredRevocation } from './registration-store.js';
import { parseSshPublicKey } from './ssh-public-key.js';

const key =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJMbQwLgpKF+MxfB878HJEifwqhBVrr6gEsrtQ2b2n80hzjuHzTPEJg036dQiVqQQH8/ISqHAm9sju+FXZj4ncc= test-ecdsa@agentgate';
const blob = parseSshPublicKey(key).blob;
const fingerprint = parseSshPublicKey(key).fingerprint;
const alice = { name: 'alice', groups: ['dba'], source: 'oidc' as const, issuer: 'https://idp' };
const identityConfig: IdentityConfig = {
  oidc: [
    {
      issuer: 'https://idp',
      audience: 'agentgate',
      jwks: '/nonexistent/jwks.json',
      groupsClaim: 'groups',
      clockSkewSeconds: 30,
    },
  ],
  tokens: [],
  sshKeys: [],
};

interface Row {
  readonly node: string;
  readonly registration: StoredRegistration;
  revoked?: string;
}

/** The shared table and its notifications. */
class SharedTable {
  readonly rows: Row[] = [];
  down = false;
  now = 1_000_000;
  private readonly watchers = new Set<() => void>();

  storeFor(node: string): SshKeyRegistrationStore & { readonly reads: { hold?: Promise<void> } } {
    const reads: { hold?: Promise<void> } = {};
    return {
      shared: true,
      reads,
      read: async () => {
        this.check();
        // What the read sees is fixed when it runs; `hold` delays its answer (a slow query).
        const latest = new Map<string, Row>();
        for (const row of this.rows) latest.set(fingerprintOf(row.registration), row);
        const snapshot = [...latest.values()]
          .filter((r) => r.registration.expiresAt > this.now)
          .map((r) => ({
            ...r.registration,
            ...(r.revoked === undefined ? {} : { revoked: { reason: r.revoked } }),
          }));
        await reads.hold;
        return snapshot;
      },
      saveRegistration: async (registration) => {
        this.check();
        const latest = this.rows
          .filter((r) => fingerprintOf(r.registration) === fingerprintOf(registration))
          .at(-1);
        if (
          latest !== undefined &&
          latest.revoked === undefined &&
          latest.registration.expiresAt > this.now &&
          latest.registration.identity !== registration.identity
        )
          throw new AgentgateError('CONFLICT', 'ssh key is registered by another identity');
        this.rows.push({ node, registration });
        this.notify();
      },
      saveRevocations: async (revocations: readonly StoredRevocation[]) => {
        this.check();
        for (const r of revocations)
          for (const row of this.rows)
            if (fingerprintOf(row.registration) === r.fingerprint && row.revoked === undefined)
              row.revoked = `by ${r.by} through replica ${node}`;
        this.notify();
      },
      watch: (changed) => {
        this.watchers.add(changed);
        return () => this.watchers.delete(changed);
      },
    };
  }

  /** Delivered after the change, as a NOTIFY is after its commit. */
  notify(): void {
    queueMicrotask(() => {
      for (const changed of this.watchers) changed();
    });
  }

  private check(): void {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }
}

function fingerprintOf(registration: StoredRegistration): string {
  return parseSshPublicKey(registration.publicKey).fingerprint;
}

/** Let the reads a notification started finish. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function replicas(table: SharedTable): Promise<[IdentityServiceImpl, IdentityServiceImpl]> {
  const now = (): number => table.now;
  return [
    await createIdentityService(identityConfig, { now, registrations: table.storeFor('A') }),
    await createIdentityService(identityConfig, { now, registrations: table.storeFor('B') }),
  ];
}

describe('ssh key registrations in a shared store', () => {
  it("carries one replica's registration, renewal and revocation to the other", async () => {
    const table = new SharedTable();
    const [a, b] = await replicas(table);
    const registered = await b.sshKeys.register(key, alice, 60_000);
    await settle();
    const onA = a.findSshKey('ecdsa-sha2-nistp256', blob); // a connection made through A holds this
    expect(onA).toMatchObject({ name: 'alice', groups: ['dba'], source: 'ssh-key' });
    expect(a.sshKeys.list().map((r) => r.fingerprint)).toEqual([registered.fingerprint]);

    table.now += 30_000;
    await b.sshKeys.register(key, alice, 60_000);
    await settle();
    // The renewal through B extends the connection made through A.
    expect(onA?.lease?.expiresAtMs).toBe(1_090_000);

    // Another identity cannot take the key through A (the store says so, whatever A's memory holds).
    await expect(a.sshKeys.register(key, { ...alice, name: 'mallory' }, 60_000)).rejects.toMatchObject({
      code: 'CONFLICT',
    });

    const onB = b.findSshKey('ecdsa-sha2-nistp256', blob);
    expect(await a.sshKeys.revoke(fingerprint, 'alice')).toBe(true);
    expect(onA?.lease?.revoked).toBe(true);
    await settle();
    expect(onB?.lease?.lapse(table.now)).toEqual({
      kind: 'revoked',
      reason: 'revoked on another replica: by alice through replica A',
    });
    expect(b.findSshKey('ecdsa-sha2-nistp256', blob)).toBeUndefined();
    expect(b.sshKeys.list()).toEqual([]);
  });

  it('a read begun before a local registration or revocation does not undo it', async () => {
    const table = new SharedTable();
    const [a] = await replicas(table);
    const store = table.storeFor('B');
    const b = await createIdentityService(identityConfig, { now: () => table.now, registrations: store });

    /** Hold B's next reads until `release()`: each then answers with what the table held when it began. */
    let release = (): void => undefined;
    const holdReads = (): void => {
      store.reads.hold = new Promise<void>((resolve) => (release = resolve));
    };

    holdReads();
    table.notify(); // B begins a read while the key is not registered
    await settle();
    await b.sshKeys.register(key, alice, 60_000); // its notification asks for another read, held too
    const first = release;
    holdReads();
    first();
    await settle();
    expect(b.findSshKey('ecdsa-sha2-nistp256', blob)?.name).toBe('alice');
    release();
    await settle();

    holdReads();
    table.notify(); // B begins a read while the key is registered
    await settle();
    await b.sshKeys.revoke(fingerprint, 'alice');
    const second = release;
    holdReads();
    second();
    await settle();
    expect(b.findSshKey('ecdsa-sha2-nistp256', blob)).toBeUndefined();
    release();
    await settle();
    expect(b.findSshKey('ecdsa-sha2-nistp256', blob)).toBeUndefined();
    expect(a.findSshKey('ecdsa-sha2-nistp256', blob)).toBeUndefined();
  });

  it('with the store away, refuses registrations, revokes locally at once and writes the revocation when it is back', async () => {
    const table = new SharedTable();
    const [a, b] = await replicas(table);
    await b.sshKeys.register(key, alice, 60_000);
    await settle();
    const onA = a.findSshKey('ecdsa-sha2-nistp256', blob);
    const onB = b.findSshKey('ecdsa-sha2-nistp256', blob);

    table.down = true;
    const other =
      'ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBD9iyWZVUayRRQrD9LDyiUTViIDwf5KjFna7SE/Aottg7KgrPcKFRuhXI8ZE90ZsT4dS098a5iK8HwUY5e0OQhRM/cLxCIaH3qXKcuRqEheUgmIU3uznrdFECtY+ZKAoxA== e384';
    await expect(b.sshKeys.register(other, alice, 60_000)).rejects.toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
      message: expect.stringContaining('the fleet database could not take the change'),
    });
    expect(b.sshKeys.list().map((r) => r.fingerprint)).toEqual([fingerprint]);
    // Known registrations keep working while the store is away.
    table.notify();
    await settle();
    expect(b.findSshKey('ecdsa-sha2-nistp256', blob)?.name).toBe('alice');

    await expect(a.sshKeys.revoke(fingerprint, 'alice')).rejects.toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
      message: expect.stringContaining('the key is revoked on this replica'),
    });
    expect(onA?.lease?.revoked).toBe(true);
    expect(onB?.lease?.revoked).toBe(false);

    table.down = false;
    table.notify(); // the poll tick: A writes its revocation, B then reads it
    await settle();
    table.notify();
    await settle();
    expect(table.rows[0]?.revoked).toBe('by alice through replica A');
    expect(onB?.lease?.revoked).toBe(true);
    expect(a.findSshKey('ecdsa-sha2-nistp256', blob)).toBeUndefined();
  });
});
