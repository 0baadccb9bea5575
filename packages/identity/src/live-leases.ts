import type { CredentialLease } from '@agentgate/core';

/**
 * The leases of tokens one issuer's verifier handed out that may still be in use, so removing the issuer from the
 * configuration can end their sessions. Expired leases are dropped as the set grows, so it stays as large as the
 * tokens alive at once.
 */
export class LiveLeases {
  readonly #leases = new Set<CredentialLease>();
  #pruneAt = 1024;

  constructor(private readonly now: () => number) {}

  add(lease: CredentialLease): void {
    this.#leases.add(lease);
    if (this.#leases.size < this.#pruneAt) return;
    const now = this.now();
    for (const l of this.#leases) if (l.lapse(now) !== undefined) this.#leases.delete(l);
    this.#pruneAt = Math.max(1024, this.#leases.size * 2);
  }

  /** Revoke every lease still alive; returns how many were. */
  revokeAll(reason: string): number {
    let revoked = 0;
    const now = this.now();
    for (const lease of this.#leases) {
      if (lease.lapse(now) === undefined) revoked++;
      lease.revoke(reason);
    }
    this.#leases.clear();
    return revoked;
  }
}
