/**
 * What a masked value becomes. `replace`: the rule's replacement text. `partial`: the replacement followed by the
 * last 4 characters (only for values of 8 or more characters, so a short value is never mostly revealed).
 * `hash`: HMAC-SHA-256 under the gateway's key, 16 hex digits: equal inputs give equal outputs, so masked columns
 * still join and group, while the key keeps dictionary attacks on the digest out of the client's reach.
 */
import { createHmac } from 'node:crypto';
import type { MaskStrategy } from '@agentgate/core';

export type MaskFunction = (secret: string) => string;

const PARTIAL_KEEP = 4;
const PARTIAL_MIN_LENGTH = 8;
const HASH_HEX_DIGITS = 16;

export function maskFunction(strategy: MaskStrategy, replacement: string, hashKey: Buffer): MaskFunction {
  switch (strategy) {
    case 'replace':
      return () => replacement;
    case 'partial':
      return (secret) =>
        secret.length >= PARTIAL_MIN_LENGTH
          ? replacement + secret.slice(secret.length - PARTIAL_KEEP)
          : replacement;
    case 'hash':
      return (secret) =>
        createHmac('sha256', hashKey).update(secret, 'utf8').digest('hex').slice(0, HASH_HEX_DIGITS);
  }
}
