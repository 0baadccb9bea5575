/**
 * What the console asks of the store about sessions, behind one small interface so an indexed implementation can
 * replace this one. `StoreSessionQuery` answers from the store's readers as they are today: it walks the session
 * list newest first and, for the filters that need a session's events (has approvals, text search), reads them
 * once per ended session and caches what it learnt (ended sessions never change).
 */
import type { TranscriptEvent } from '@agentgate/core';
import type { SessionSummary } from '@agentgate/transcript';

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

/** Newest first; `before` is the id the previous page ended with (session ids sort by start time). */
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
  /** Sessions with a command whose text contains `text` (case-insensitive), with the same filters. */
  search(text: string, filter: SessionFilter, page: PageRequest): SessionPage;
  get(id: string): SessionSummary | undefined;
  /** Commands, denials and approval requests in `buckets` buckets of `bucketMs` ending now. */
  activity(now: number, bucketMs: number, buckets: number): ActivityBucket[];
}

/** The store readers this implementation needs (a subset of `TranscriptStore`). */
export interface SessionReader {
  listSessions(): SessionSummary[];
  getSession(id: string): SessionSummary | undefined;
  events(sessionId: string): Iterable<TranscriptEvent>;
}

interface SessionFacts {
  readonly approvals: number;
  /** Command texts, lower-cased, one per line. */
  readonly commandText: string;
  /** [ts, kind] of the events the overview counts. */
  readonly counted: readonly (readonly [number, 'command' | 'denial' | 'approval'])[];
}

const FACTS_CACHE_SIZE = 5_000;

export class StoreSessionQuery implements SessionQuery {
  private readonly facts = new Map<string, SessionFacts>();

  constructor(
    private readonly store: SessionReader,
    private readonly isActive: (id: string) => boolean,
    private readonly isDenial: (decision: Record<string, unknown>) => boolean,
  ) {}

  list(filter: SessionFilter, page: PageRequest): SessionPage {
    return this.scan(filter, page, () => true);
  }

  search(text: string, filter: SessionFilter, page: PageRequest): SessionPage {
    const needle = text.toLowerCase();
    return this.scan(filter, page, (s) => this.factsOf(s).commandText.includes(needle));
  }

  get(id: string): SessionSummary | undefined {
    return this.store.getSession(id);
  }

  activity(now: number, bucketMs: number, buckets: number): ActivityBucket[] {
    const first = Math.floor(now / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
    const out: ActivityBucket[] = Array.from({ length: buckets }, (_, i) => ({
      start: first + i * bucketMs,
      commands: 0,
      denials: 0,
      approvals: 0,
    }));
    for (const summary of this.store.listSessions()) {
      if (summary.endedAt !== null && summary.endedAt < first) continue;
      for (const [ts, kind] of this.factsOf(summary).counted) {
        const index = Math.floor((ts - first) / bucketMs);
        const bucket = out[index];
        if (bucket === undefined) continue;
        if (kind === 'command') bucket.commands++;
        else if (kind === 'denial') bucket.denials++;
        else bucket.approvals++;
      }
    }
    return out;
  }

  private scan(
    filter: SessionFilter,
    page: PageRequest,
    matches: (summary: SessionSummary) => boolean,
  ): SessionPage {
    const all = this.store.listSessions();
    const items: SessionSummary[] = [];
    for (let i = all.length - 1; i >= 0; i--) {
      const summary = all[i]!;
      if (page.before !== undefined && summary.id >= page.before) continue;
      if (!this.fits(summary, filter) || !matches(summary)) continue;
      if (items.length === page.limit) return { items, next: items[items.length - 1]!.id };
      items.push(summary);
    }
    return { items };
  }

  private fits(s: SessionSummary, f: SessionFilter): boolean {
    if (f.identity !== undefined && s.identity !== f.identity) return false;
    if (f.protocol !== undefined && s.protocol !== f.protocol) return false;
    if (f.listener !== undefined && s.listener !== f.listener) return false;
    if (f.since !== undefined && s.startedAt < f.since) return false;
    if (f.until !== undefined && s.startedAt >= f.until) return false;
    if (f.hasDenials === true && s.denied === 0) return false;
    if (f.activeNow === true && !(s.endedAt === null && this.isActive(s.id))) return false;
    if (f.hasApprovals === true && this.factsOf(s).approvals === 0) return false;
    return true;
  }

  private factsOf(summary: SessionSummary): SessionFacts {
    const cached = this.facts.get(summary.id);
    if (cached !== undefined) return cached;
    let approvals = 0;
    const texts: string[] = [];
    const counted: [number, 'command' | 'denial' | 'approval'][] = [];
    for (const event of this.store.events(summary.id)) {
      if (event.type === 'command') {
        texts.push(String(event['text'] ?? '').toLowerCase());
        counted.push([event.ts, 'command']);
      } else if (event.type === 'decision' && this.isDenial(event)) counted.push([event.ts, 'denial']);
      else if (event.type === 'approval.requested') {
        approvals++;
        counted.push([event.ts, 'approval']);
      } else if (
        event.type === 'approval.decided' &&
        (event['outcome'] === 'rejected' || event['outcome'] === 'expired')
      )
        counted.push([event.ts, 'denial']); // a held command that was refused is a denial too
    }
    const facts: SessionFacts = { approvals, commandText: texts.join('\n'), counted };
    // Only ended sessions are final; an open one is read again next time.
    if (summary.endedAt !== null) {
      if (this.facts.size >= FACTS_CACHE_SIZE) {
        const oldest = this.facts.keys().next();
        if (oldest.done !== true) this.facts.delete(oldest.value);
      }
      this.facts.set(summary.id, facts);
    }
    return facts;
  }
}
