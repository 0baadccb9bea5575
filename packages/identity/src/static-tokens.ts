import { createHash, timingSafeEqual } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { CredentialLease, type Identity, type StaticTokenConfig } from '@agentgate/core';

interface TokenEntry {
  readonly config: StaticTokenConfig;
  readonly digest: Buffer;
  /** One per configured entry, its lease revocable: removing the entry by a reload ends its sessions. */
  readonly identity: Identity & { readonly lease: CredentialLease };
}

/** Static service tokens, stored only as SHA-256 hashes (docs/configuration.md, `identity.tokens[]`). */
export class StaticTokenTable {
  private readonly entries: TokenEntry[];

  /**
   * Entries equal to one of `previous` (hash, name and groups) keep its identity and lease, so the sessions opened
   * with the token go on across a reload; a changed or removed entry is a credential that no longer exists.
   */
  constructor(tokens: readonly StaticTokenConfig[], previous?: StaticTokenTable) {
    this.entries = tokens.map((config) => {
      const kept = previous?.entries.find((e) => isDeepStrictEqual(e.config, config));
      return (
        kept ?? {
          config,
          digest: Buffer.from(config.sha256, 'hex'),
          identity: {
            name: config.name,
            groups: [...config.groups],
            source: 'token' as const,
            lease: new CredentialLease(),
          },
        }
      );
    });
  }

  /** Compares against every entry with timingSafeEqual, without stopping early, so timing says nothing about which matched. */
  find(token: string): Identity | undefined {
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let match: Identity | undefined;
    for (const entry of this.entries) {
      if (entry.digest.length === digest.length && timingSafeEqual(entry.digest, digest))
        match ??= entry.identity;
    }
    return match;
  }

  /** The configured hash behind an identity this table handed out. */
  hashOf(identity: Identity): string | undefined {
    return this.entries.find((e) => e.identity === identity)?.config.sha256;
  }

  /**
   * Whether the token with this hash is configured with this name and groups. A changed entry is another
   * credential (docs/configuration.md, Reloading): what it registered does not carry over to it.
   */
  holds(sha256: string, name: string, groups: readonly string[]): boolean {
    return this.entries.some(
      (e) =>
        e.config.sha256 === sha256.toLowerCase() &&
        e.config.name === name &&
        isDeepStrictEqual(e.config.groups, [...groups]),
    );
  }

  /** The entries of this table that `next` no longer has (removed or changed). */
  removedIn(next: StaticTokenTable): readonly TokenEntry[] {
    return this.entries.filter((e) => !next.entries.some((n) => n.identity === e.identity));
  }
}

/** Lower-case hex SHA-256 of a token, the form `identity.tokens[].sha256` stores. */
export function hashStaticToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
