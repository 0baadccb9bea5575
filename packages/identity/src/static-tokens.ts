import { createHash, timingSafeEqual } from 'node:crypto';
import type { Identity, StaticTokenConfig } from '@agentgate/core';

/** Static service tokens, stored only as SHA-256 hashes (docs/configuration.md, `identity.tokens[]`). */
export class StaticTokenTable {
  private readonly entries: { digest: Buffer; identity: Identity }[];

  constructor(tokens: readonly StaticTokenConfig[]) {
    this.entries = tokens.map((t) => ({
      digest: Buffer.from(t.sha256, 'hex'),
      identity: { name: t.name, groups: [...t.groups], source: 'token' as const },
    }));
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
}

/** Lower-case hex SHA-256 of a token, the form `identity.tokens[].sha256` stores. */
export function hashStaticToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
