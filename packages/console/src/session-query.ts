/**
 * What the console asks about sessions, behind one small interface, and its implementation over the session index
 * (`@agentgate/transcript`'s `SessionIndex`): filters, search and paging are answered by the index, so a page costs
 * about the same on a store of a hundred sessions as on one of millions.
 */
import type { IndexFilter, SessionIndex, SessionSummary } from '@agentgate/transcript';

export interface SessionFilter {
  readonly identity?: string;
  readonly protocol?: string;
  readonly listener?: string;
  /** Started at or after (ms since the epoch). */
  readonly since?: number;
  /** Started before (ms since the epoch). */
  readonly until?: number;
  readonly hasDenials?: boolean;
  readonly hasApprovals?: boolean;
  readonly activeNow?: boolean;
}

/** Newest first; `before` is the previous page's `next` (a session id: older sessions follow). */
export interface PageRequest {
  readonly before?: string;
  readonly limit: number;
}

export interface SessionPage {
  readonly items: readonly SessionSummary[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  readonly next?: string;
}

/** Per-hour counts for the overview chart. */
export interface ActivityBucket {
  /** Start of the bucket, ms since the epoch. */
  readonly start: number;
  commands: number;
  denials: number;
  approvals: number;
}

export interface SessionQuery {
  list(filter: SessionFilter, page: PageRequest): SessionPage;
  /**
   * Sessions with a command whose recorded text contains every word of `text` (or "quoted phrase"), ignoring case,
   * with the same filters (docs/transcript.md, "Session index").
   */
  search(text: string, filter: SessionFilter, page: PageRequest): SessionPage;
  get(id: string): SessionSummary | undefined;
  /** Commands, denials and approval requests in `buckets` buckets of `bucketMs` ending now. */
  activity(now: number, bucketMs: number, buckets: number): ActivityBucket[];
  /** Commits recorded but not yet searchable (the index catching up), when known. */
  behind?(): number;
}

export class IndexedSessionQuery implements SessionQuery {
  constructor(
    private readonly index: SessionIndex,
    /** running in this gateway (the console's live sessions) */
    private readonly isActive: (id: string) => boolean,
    /** the store's own summary, for a session the index has not reached yet */
    private readonly fromStore: (id: string) => SessionSummary | undefined,
  ) {}

  list(filter: SessionFilter, page: PageRequest): SessionPage {
    return this.index.list(this.indexFilter(filter), page);
  }

  search(text: string, filter: SessionFilter, page: PageRequest): SessionPage {
    return this.index.search(text, this.indexFilter(filter), page);
  }

  get(id: string): SessionSummary | undefined {
    return this.index.get(id) ?? this.fromStore(id);
  }

  activity(now: number, bucketMs: number, buckets: number): ActivityBucket[] {
    const first = Math.floor(now / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
    return this.index.activity(first, bucketMs, buckets);
  }

  behind(): number {
    const { position, head } = this.index.status();
    return Math.max(0, head - position);
  }

  private indexFilter(filter: SessionFilter): IndexFilter {
    return {
      ...(filter.identity !== undefined ? { identity: filter.identity } : {}),
      ...(filter.protocol !== undefined ? { protocol: filter.protocol } : {}),
      ...(filter.listener !== undefined ? { listener: filter.listener } : {}),
      ...(filter.since !== undefined ? { since: filter.since } : {}),
      ...(filter.until !== undefined ? { until: filter.until } : {}),
      ...(filter.hasDenials === true ? { hasDenials: true } : {}),
      ...(filter.hasApprovals === true ? { hasApprovals: true } : {}),
      // Active: not ended, and running in this gateway now.
      ...(filter.activeNow === true ? { open: true, accept: (s) => this.isActive(s.id) } : {}),
    };
  }
}
