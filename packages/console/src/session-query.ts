/**
 * What the console asks about sessions, behind one small interface, and its implementation over the session index
 * (`@agentgate/transcript`'s `SessionIndex`): filters, search and paging are answered by the index, so a page costs
 * about the same on a store of a hundred sessions as on one of millions. With a fleet, fleet-session-query.ts
 * answers the same interface from the fleet database and this replica's index together.
 */
import type { TranscriptEvent } from '@agentgate/core';
import type { CheckpointRecord, IndexFilter, SessionIndex, SessionSummary } from '@agentgate/transcript';

/** A session as the console shows it. */
export interface ConsoleSession extends SessionSummary {
  /** The replica that recorded it (with a fleet). */
  readonly node?: string;
  /** Read from the fleet database (another replica's session, or one this replica no longer holds). */
  readonly fromFleet?: boolean;
  /**
   * With a fleet, for this replica's own sessions: the last event the fleet database holds (-1: none yet), when it
   * is behind this replica's store.
   */
  readonly shippedThrough?: number;
}

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

/** Newest first; `before` is the previous page's `next` (opaque: older sessions follow). */
export interface PageRequest {
  readonly before?: string;
  readonly limit: number;
}

export interface SessionPage {
  readonly items: readonly ConsoleSession[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  readonly next?: string;
  /** Said above the list: what it may be missing (the fleet database unreachable). */
  readonly notice?: string;
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
  list(filter: SessionFilter, page: PageRequest): Promise<SessionPage>;
  /**
   * Sessions with a command whose recorded text contains every word of `text` (or "quoted phrase"), ignoring case,
   * with the same filters (docs/transcript.md, "Session index").
   */
  search(text: string, filter: SessionFilter, page: PageRequest): Promise<SessionPage>;
  get(id: string): Promise<ConsoleSession | undefined>;
  /** Commands, denials and approval requests in `buckets` buckets of `bucketMs` ending now. */
  activity(now: number, bucketMs: number, buckets: number): Promise<ActivityBucket[]>;
  /** Commits recorded but not yet searchable (the index catching up), when known. */
  behind?(): number;
}

/** One session's record: where the session page, its exports and its chain check read it. */
export interface SessionRecords {
  /** Its events in seq order (those after `afterSeq` when given), io bytes attached as base64 `data`. */
  events(session: ConsoleSession, afterSeq?: number): Promise<Iterable<TranscriptEvent>>;
  checkpoints(session: ConsoleSession): Promise<Iterable<CheckpointRecord>>;
  /** Verifies one of its checkpoints' JWS; returns the payload. */
  verifySignature(jws: string, session: ConsoleSession): Promise<Buffer>;
  /** Whose key this is, for the page (with a fleet: the replica that recorded it). */
  keyHolder?(kid: string): string | undefined;
}

/** This replica's store as the source of every session's record (a gateway without a fleet). */
export function storeRecords(
  store: {
    events(sessionId: string): Iterable<TranscriptEvent>;
    checkpoints(sessionId: string): Iterable<CheckpointRecord>;
  },
  verifySignature: (jws: string) => Promise<Buffer>,
): SessionRecords {
  return {
    events: (session, afterSeq) => Promise.resolve(eventsAfter(() => store.events(session.id), afterSeq)),
    checkpoints: (session) => Promise.resolve(store.checkpoints(session.id)),
    verifySignature: (jws) => verifySignature(jws),
  };
}

/** Read afresh each time it is iterated (the session page reads a session twice), skipping up to `afterSeq`. */
function eventsAfter(
  read: () => Iterable<TranscriptEvent>,
  afterSeq: number | undefined,
): Iterable<TranscriptEvent> {
  return {
    *[Symbol.iterator]() {
      for (const event of read()) if (afterSeq === undefined || event.seq > afterSeq) yield event;
    },
  };
}

export class IndexedSessionQuery implements SessionQuery {
  constructor(
    private readonly index: SessionIndex,
    /** running in this gateway (the console's live sessions) */
    private readonly isActive: (id: string) => boolean,
    /** the store's own summary, for a session the index has not reached yet */
    private readonly fromStore: (id: string) => SessionSummary | undefined,
  ) {}

  list(filter: SessionFilter, page: PageRequest): Promise<SessionPage> {
    return Promise.resolve(this.listNow(filter, page));
  }

  search(text: string, filter: SessionFilter, page: PageRequest): Promise<SessionPage> {
    return Promise.resolve(this.searchNow(text, filter, page));
  }

  get(id: string): Promise<ConsoleSession | undefined> {
    return Promise.resolve(this.getNow(id));
  }

  activity(now: number, bucketMs: number, buckets: number): Promise<ActivityBucket[]> {
    return Promise.resolve(this.activityNow(now, bucketMs, buckets));
  }

  listNow(filter: SessionFilter, page: PageRequest): SessionPage {
    return this.index.list(this.indexFilter(filter), page);
  }

  searchNow(text: string, filter: SessionFilter, page: PageRequest): SessionPage {
    return this.index.search(text, this.indexFilter(filter), page);
  }

  getNow(id: string): ConsoleSession | undefined {
    return this.index.get(id) ?? this.fromStore(id);
  }

  activityNow(now: number, bucketMs: number, buckets: number): ActivityBucket[] {
    return this.index.activity(firstBucket(now, bucketMs, buckets), bucketMs, buckets);
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

/** The start of the first of `buckets` buckets of `bucketMs`, the last holding `now`. */
export function firstBucket(now: number, bucketMs: number, buckets: number): number {
  return Math.floor(now / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
}
