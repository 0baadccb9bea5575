import { randomBytes } from 'node:crypto';

/**
 * Sortable unique ids: 48-bit ms timestamp + 80 random bits, Crockford base32 (ULID layout), so session ids
 * list in start order in the store and in `sessions list`.
 */
const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function newId(now: number = Date.now()): string {
  let out = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = alphabet[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(16);
  for (let i = 0; i < 16; i++) out += alphabet[rnd[i]! % 32];
  return out;
}
