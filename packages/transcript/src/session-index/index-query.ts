/**
 * Answering the sessions page from the index: newest first, filtered, a page at a time from a cursor.
 *
 * A page walks one ordered list of ords downwards from the cursor (or the end of the time range): the shortest
 * posting list among the filters given (`counts` tells which), else every row, else, for a search, the sessions
 * whose trigrams can hold the search's terms. Each candidate's row is checked against every filter and, for a
 * search, its texts against the terms (text-search.ts), until the page is full. A page that takes longer than its
 * budget ends early with a cursor where it stopped, so a query that matches little in a large store answers in
 * bounded time and the next page goes on from there.
 */
import type { SessionSummary } from '../store-reader.js';
import {
  ordAt,
  trigramPrefixRange,
  trigramRange,
  type IndexDatabases,
  type SessionRow,
} from './index-databases.js';
import { contains, decodePostings, intersect, lastBelow, postingCount, sortUnique } from './posting-lists.js';
import { searchTerms, termLength, termTrigrams, textMatches } from './text-search.js';

export interface IndexFilter {
  readonly identity?: string;
  readonly protocol?: string;
  readonly listener?: string;
  /** started at or after (ms since the epoch) */
  readonly since?: number;
  /** started before (ms since the epoch) */
  readonly until?: number;
  /** true: only sessions with a denied decision or an approval rejected or expired */
  readonly hasDenials?: boolean;
  /** true: only sessions with an approval request */
  readonly hasApprovals?: boolean;
  /** true: only sessions not ended (as far as the index knows) */
  readonly open?: boolean;
  /** a further test of each session (the console: running in this process) */
  readonly accept?: (session: IndexedSession) => boolean;
}

export interface IndexPageRequest {
  /** the previous page's `next`: sessions older than this one */
  readonly before?: string;
  readonly limit: number;
  /** stop looking after this long and return what was found, with a cursor (default 250 ms) */
  readonly budgetMs?: number;
}

export interface IndexedSession extends SessionSummary {
  /** approval requests */
  readonly approvals: number;
}

export interface IndexPage {
  readonly items: readonly IndexedSession[];
  /** absent on the last page */
  readonly next?: string;
}

/** Above this many sessions in its posting lists, a search term is checked on the texts only. */
const maxTermCandidates = 2_000_000;
/** Intersecting more trigrams stops paying once the candidates are this few: the texts are checked anyway. */
const fewCandidates = 512;
/** Posting chunks of one trigram above which a query asks for them to be merged. */
const manyChunks = 32;
const defaultBudgetMs = 250;

export class IndexQuery {
  constructor(
    private readonly dbs: IndexDatabases,
    /** told of trigrams whose posting lists are in many pieces */
    private readonly fragmented: (trigram: string) => void,
  ) {}

  get(id: string): IndexedSession | undefined {
    const ord = this.dbs.ids.get(id);
    const row = ord === undefined ? undefined : this.dbs.rows.get(ord);
    return row === undefined ? undefined : summaryOf(row);
  }

  list(filter: IndexFilter, page: IndexPageRequest): IndexPage {
    return this.walk(this.driver(filter, page), filter, page, undefined);
  }

  search(text: string, filter: IndexFilter, page: IndexPageRequest): IndexPage {
    const terms = searchTerms(text);
    if (terms.length === 0) return this.list(filter, page);
    const { low, high } = this.bounds(filter, page);
    const candidates = this.textCandidates(terms);
    if (candidates === undefined) return this.walk(this.driver(filter, page), filter, page, terms);
    const inRange = candidates.slice(lastBelow(candidates, low) + 1, lastBelow(candidates, high) + 1);
    const posting = this.shortestPosting(filter);
    // Walk whichever is shorter; the other is checked per candidate.
    if (posting !== undefined && posting.count < inRange.length) {
      const ords = this.postingOrds(posting.key, low, high);
      return this.walk(filterOrds(ords, inRange), filter, page, terms);
    }
    return this.walk(descending(inRange), filter, page, terms);
  }

  /** The ords a page walks for `filter`, newest first. */
  private driver(filter: IndexFilter, page: IndexPageRequest): Iterable<number> {
    const { low, high } = this.bounds(filter, page);
    if (high <= low) return [];
    const posting = this.shortestPosting(filter);
    if (posting !== undefined) return this.postingOrds(posting.key, low, high);
    return this.dbs.rows.getKeys({ start: high, end: low - 1, reverse: true, exclusiveStart: true });
  }

  private postingOrds(key: readonly [string, string], low: number, high: number): Iterable<number> {
    const [dimension, value] = key;
    const keys = this.dbs.postings.getKeys({
      start: [dimension, value, high],
      end: [dimension, value, low - 1],
      reverse: true,
      exclusiveStart: true,
    });
    return keys.map((k) => k[2]);
  }

  /** [low, high): ords of the time range, below the cursor. */
  private bounds(filter: IndexFilter, page: IndexPageRequest): { low: number; high: number } {
    const low = filter.since === undefined ? 0 : ordAt(filter.since);
    let high = filter.until === undefined ? Number.MAX_SAFE_INTEGER : ordAt(filter.until);
    if (page.before !== undefined) high = Math.min(high, this.cursorOrd(page.before));
    return { low, high };
  }

  /** The ord of a cursor's session; for one the index does not know, its id's start time (ids begin with it). */
  private cursorOrd(id: string): number {
    const ord = this.dbs.ids.get(id);
    if (ord !== undefined) return ord;
    const ms = idTime(id);
    return ms === undefined ? Number.MAX_SAFE_INTEGER : ordAt(ms);
  }

  private shortestPosting(filter: IndexFilter): { key: [string, string]; count: number } | undefined {
    const keys: [string, string][] = [];
    if (filter.identity !== undefined) keys.push(['identity', filter.identity]);
    if (filter.protocol !== undefined) keys.push(['protocol', filter.protocol]);
    if (filter.listener !== undefined) keys.push(['listener', filter.listener]);
    if (filter.hasDenials === true) keys.push(['denied', '']);
    if (filter.hasApprovals === true) keys.push(['approvals', '']);
    if (filter.open === true) keys.push(['open', '']);
    let best: { key: [string, string]; count: number } | undefined;
    for (const key of keys) {
      const count = this.dbs.counts.get(key) ?? 0;
      if (best === undefined || count < best.count) best = { key, count };
    }
    return best;
  }

  /**
   * Sessions whose trigrams can hold every term, ascending; undefined when the terms narrow nothing (then every
   * session is a candidate).
   */
  private textCandidates(terms: readonly string[]): number[] | undefined {
    const lists: { read: () => number[] | undefined; size: number }[] = [];
    for (const term of terms) {
      if (termLength(term) < 3) {
        const range = trigramPrefixRange(term);
        let size = 0;
        for (const { value } of this.dbs.trigrams.getRange(range)) size += postingCount(value);
        if (size === 0) return [];
        if (size <= maxTermCandidates) lists.push({ size, read: () => this.readPostings(range) });
        continue;
      }
      for (const trigram of termTrigrams(term)) {
        const range = trigramRange(trigram);
        let size = 0;
        let chunks = 0;
        for (const { value } of this.dbs.trigrams.getRange(range)) {
          size += postingCount(value);
          chunks++;
        }
        if (chunks > manyChunks) this.fragmented(trigram);
        // A trigram no session has: no session matches.
        if (size === 0) return [];
        if (size <= maxTermCandidates) lists.push({ size, read: () => this.readPostings(range) });
      }
    }
    if (lists.length === 0) return undefined;
    lists.sort((a, b) => a.size - b.size);
    let candidates: number[] | undefined;
    for (const list of lists) {
      if (
        candidates !== undefined &&
        (candidates.length <= fewCandidates || list.size > 64 * candidates.length)
      )
        break;
      const ords = list.read() ?? [];
      candidates = candidates === undefined ? ords : intersect(candidates, ords);
    }
    return candidates;
  }

  private readPostings(range: { start: Buffer; end: Buffer }): number[] {
    const ords: number[] = [];
    for (const { value } of this.dbs.trigrams.getRange(range)) decodePostings(value, ords);
    return sortUnique(ords);
  }

  private walk(
    ords: Iterable<number>,
    filter: IndexFilter,
    page: IndexPageRequest,
    terms: readonly string[] | undefined,
  ): IndexPage {
    const items: IndexedSession[] = [];
    const deadline = performance.now() + (page.budgetMs ?? defaultBudgetMs);
    let examined = 0;
    let lastOrd: number | undefined;
    for (const ord of ords) {
      if (++examined % 64 === 0 && performance.now() > deadline && lastOrd !== undefined) {
        const next = this.dbs.rows.get(lastOrd)?.id;
        return next === undefined ? { items } : { items, next };
      }
      lastOrd = ord;
      const row = this.dbs.rows.get(ord);
      if (row === undefined || !rowMatches(row, filter)) continue;
      const summary = summaryOf(row);
      if (filter.accept !== undefined && !filter.accept(summary)) continue;
      if (terms !== undefined && !this.textsMatch(ord, terms)) continue;
      if (items.length === page.limit) return { items, next: items[items.length - 1]!.id };
      items.push(summary);
    }
    return { items };
  }

  private textsMatch(ord: number, terms: readonly string[]): boolean {
    for (const { value } of this.dbs.texts.getRange({ start: [ord], end: [ord + 1] })) {
      // One command must hold every term: each line is one command's text.
      if (!textMatches(value, terms)) continue;
      for (const line of value.split('\n')) if (textMatches(line, terms)) return true;
    }
    return false;
  }
}

function rowMatches(row: SessionRow, filter: IndexFilter): boolean {
  if (filter.identity !== undefined && row.identity !== filter.identity) return false;
  if (filter.protocol !== undefined && row.protocol !== filter.protocol) return false;
  if (filter.listener !== undefined && row.listener !== filter.listener) return false;
  if (filter.since !== undefined && row.startedAt < filter.since) return false;
  if (filter.until !== undefined && row.startedAt >= filter.until) return false;
  if (filter.hasDenials === true && row.denied === 0) return false;
  if (filter.hasApprovals === true && row.approvals === 0) return false;
  if (filter.open === true && row.endedAt !== null) return false;
  return true;
}

function summaryOf(row: SessionRow): IndexedSession {
  const summary: IndexedSession = {
    id: row.id,
    listener: row.listener,
    protocol: row.protocol,
    identity: row.identity,
    groups: row.groups,
    client: row.client,
    startedAt: row.startedAt,
    endedAt: row.endedAt,
    commands: row.commands,
    denied: row.denied,
    approvals: row.approvals,
  };
  if (row.endReason !== undefined) summary.endReason = row.endReason;
  return summary;
}

function* descending(sorted: readonly number[]): Iterable<number> {
  for (let i = sorted.length - 1; i >= 0; i--) yield sorted[i]!;
}

function* filterOrds(ords: Iterable<number>, allowed: readonly number[]): Iterable<number> {
  for (const ord of ords) if (contains(allowed, ord)) yield ord;
}

const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The start time a session id begins with (10 Crockford base32 characters of milliseconds), if it does. */
function idTime(id: string): number | undefined {
  if (id.length < 10) return undefined;
  let ms = 0;
  for (let i = 0; i < 10; i++) {
    const digit = crockford.indexOf(id[i]!);
    if (digit < 0) return undefined;
    ms = ms * 32 + digit;
  }
  return ms;
}
