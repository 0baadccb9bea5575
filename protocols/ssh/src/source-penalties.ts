import { isIPv4, isIPv6 } from 'node:net';

/** Failures a source may have before its attempts are delayed at all (a few typos, an agent with a stale token). */
const FREE_FAILURES = 3;
/** The first delay; each further failure doubles it, up to the listener's maximum. */
const BASE_DELAY_MS = 250;
/** A source's failures count half after a minute without new ones: the penalty wears off, it is no ban. */
const HALF_LIFE_MS = 60_000;
/** Attempts of one source wait in line; beyond this many maximum delays of waiting they are refused at once. */
const QUEUE_LIMIT = 4;
/** Sources remembered at most (the least recently failing are forgotten first). */
const MAX_SOURCES = 10_000;
/** A score this small is forgotten. */
const FORGOTTEN = 0.05;

interface SourceRecord {
  score: number;
  scoredAt: number;
  /** When the last reserved attempt of this source is answered: the next waits its delay after that. */
  lineEndsAt: number;
}

export type PenaltyWait = { readonly waitMs: number } | { readonly refused: true };

/**
 * A per-source penalty for failed authentications: once an address has had a few recent failures, each of its
 * attempts is answered only after a delay that doubles with every further failure, up to `maxDelayMs`. The attempts
 * of one source, over all its connections, wait in line, so opening many connections does not multiply the rate.
 * Failures decay (half-life one minute), so the penalty wears off when the failures stop. IPv6 sources count per
 * /64, the block one host usually has. docs/configuration.md describes it.
 */
export class SourcePenalties {
  private readonly sources = new Map<string, SourceRecord>();

  constructor(
    private readonly maxDelayMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** How long an attempt from `address` waits before it is answered; reserves its place in the source's line. */
  reserve(address: string): PenaltyWait {
    if (this.maxDelayMs <= 0) return { waitMs: 0 };
    const key = sourceKey(address);
    const record = this.current(key);
    if (record === undefined) return { waitMs: 0 };
    const delay = this.delayFor(record.score);
    if (delay === 0) return { waitMs: 0 };
    const now = this.now();
    const answerAt = Math.max(now, record.lineEndsAt) + delay;
    if (answerAt - now > QUEUE_LIMIT * this.maxDelayMs) return { refused: true };
    record.lineEndsAt = answerAt;
    return { waitMs: answerAt - now };
  }

  /** One failure that guessed at a secret (a wrong token, a bad signature) from `address`. */
  failed(address: string): void {
    if (this.maxDelayMs <= 0) return;
    const key = sourceKey(address);
    const record = this.current(key) ?? { score: 0, scoredAt: this.now(), lineEndsAt: 0 };
    record.score += 1;
    // Re-inserted so the map's order is least recently failing first.
    this.sources.delete(key);
    this.sources.set(key, record);
    while (this.sources.size > MAX_SOURCES) {
      const oldest = this.sources.keys().next().value;
      if (oldest === undefined) break;
      this.sources.delete(oldest);
    }
  }

  /** The delay an attempt from `address` would get now, without reserving it (logs, tests). */
  delayNow(address: string): number {
    if (this.maxDelayMs <= 0) return 0;
    const record = this.current(sourceKey(address));
    return record === undefined ? 0 : this.delayFor(record.score);
  }

  private delayFor(score: number): number {
    if (score < FREE_FAILURES) return 0;
    return Math.min(this.maxDelayMs, BASE_DELAY_MS * 2 ** Math.floor(score - FREE_FAILURES));
  }

  /** The source's record with its score decayed to now; forgotten once the score is negligible. */
  private current(key: string): SourceRecord | undefined {
    const record = this.sources.get(key);
    if (record === undefined) return undefined;
    const now = this.now();
    record.score *= 0.5 ** ((now - record.scoredAt) / HALF_LIFE_MS);
    record.scoredAt = now;
    if (record.score < FORGOTTEN && record.lineEndsAt <= now) {
      this.sources.delete(key);
      return undefined;
    }
    return record;
  }
}

/** IPv4 as is (also when mapped into IPv6), IPv6 by its /64 prefix, anything else verbatim. */
export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (isIPv4(address) || !isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted IPv4 part converted). */
function expandIPv6(address: string): string[] {
  let text = address.split('%')[0]!.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...(tail === undefined ? [] : zeros), ...tailGroups].map((g) =>
    parseInt(g, 16).toString(16),
  );
}
