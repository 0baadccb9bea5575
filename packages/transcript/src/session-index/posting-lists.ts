/**
 * Posting lists of the text index: sorted session positions (`ord`, session-order.ts), stored as a count and the
 * gaps between them as base-128 varints (a few bytes per session instead of a key per session), and the set
 * operations the search uses on them. Positions are below 2^53, so arithmetic, not bit operations, splits them.
 */

/** Encode ascending, distinct positions. */
export function encodePostings(sorted: readonly number[]): Buffer {
  const bytes: number[] = [];
  const put = (value: number): void => {
    let n = value;
    while (n >= 0x80) {
      bytes.push((n % 0x80) + 0x80);
      n = Math.floor(n / 0x80);
    }
    bytes.push(n);
  };
  put(sorted.length);
  let previous = 0;
  for (const ord of sorted) {
    put(ord - previous);
    previous = ord;
  }
  return Buffer.from(bytes);
}

export function postingCount(encoded: Uint8Array): number {
  return readVarint(encoded, 0).value;
}

export function decodePostings(encoded: Uint8Array, into: number[] = []): number[] {
  let { value: count, next: at } = readVarint(encoded, 0);
  let ord = 0;
  while (count-- > 0 && at < encoded.length) {
    const gap = readVarint(encoded, at);
    ord += gap.value;
    at = gap.next;
    into.push(ord);
  }
  return into;
}

function readVarint(bytes: Uint8Array, from: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  let at = from;
  while (at < bytes.length) {
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) break;
    scale *= 0x80;
  }
  return { value, next: at };
}

/**
 * Sort ascending and drop repeats, in place; returns the array. Chunks read in key order are mostly ascending
 * already, which costs one pass; otherwise a typed array sorts them (numerically, without a comparator call each).
 */
export function sortUnique(values: number[]): number[] {
  let ascending = true;
  for (let i = 1; i < values.length && ascending; i++) ascending = values[i - 1]! <= values[i]!;
  if (!ascending) {
    const sorted = Float64Array.from(values).sort();
    for (let i = 0; i < sorted.length; i++) values[i] = sorted[i]!;
  }
  let out = 0;
  for (let i = 0; i < values.length; i++)
    if (i === 0 || values[i] !== values[out - 1]) values[out++] = values[i]!;
  values.length = out;
  return values;
}

/** Positions in both ascending lists. */
export function intersect(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x === y) {
      out.push(x);
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return out;
}

/** Index of the last element below `bound` in an ascending list (-1 when none). */
export function lastBelow(sorted: readonly number[], bound: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < bound) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

export function contains(sorted: readonly number[], value: number): boolean {
  const at = lastBelow(sorted, value + 1);
  return at >= 0 && sorted[at] === value;
}
