/**
 * The console of a fleet replica (docs/configuration.md, "fleet"): every replica's sessions from the fleet
 * database, and this replica's own ones from its own store.
 *
 * - Lists and searches are answered by the fleet database, merged with this replica's sessions the fleet does not
 *   hold yet (recorded here, not shipped: the shipper is behind or the database is away), read from the local
 *   session index with the same filters. Those are marked "not shipped yet"; once shipped, they are the same row.
 * - A session this replica recorded is shown from its own store, which holds every event, shipped or not; a session
 *   of another replica (or one pruned here) from the fleet database, its checkpoints checked with the signing keys
 *   the replicas recorded there.
 * - When the fleet database is unreachable, lists fall back to this replica's sessions with a notice; pages of
 *   other replicas' sessions say the database is unreachable.
 */
import type { Logger, TranscriptEvent } from '@agentgate/core';
import type { CheckpointRecord, SessionSummary } from '@agentgate/transcript';
import {
  firstBucket,
  type ActivityBucket,
  type ConsoleSession,
  type IndexedSessionQuery,
  type PageRequest,
  type SessionFilter,
  type SessionPage,
  type SessionQuery,
  type SessionRecords,
} from './session-query.js';

/** A session as the fleet database has it: with the replica that recorded it. */
export type FleetSession = SessionSummary & { readonly node: string };

interface FleetCursor {
  readonly startedAt: number;
  readonly id: string;
}

/** What the console reads from the fleet database (`@agentgate/fleet`'s FleetConsoleQueries). */
export interface FleetSessions {
  list(
    filter: {
      identity?: string;
      protocol?: string;
      listener?: string;
      since?: number;
      until?: number;
      hasDenials?: boolean;
      hasApprovals?: boolean;
      open?: boolean;
      text?: string;
    },
    page: { before?: FleetCursor; limit: number },
  ): Promise<{ readonly items: readonly FleetSession[]; readonly next?: FleetCursor }>;
  get(id: string): Promise<FleetSession | undefined>;
  /** Which of these ids the fleet holds. */
  held(ids: readonly string[]): Promise<Set<string>>;
  lastSeq(id: string): Promise<number>;
  events(id: string, afterSeq?: number): Promise<TranscriptEvent[]>;
  checkpoints(id: string): Promise<CheckpointRecord[]>;
  activity(from: number, bucketMs: number, buckets: number): Promise<ActivityBucket[]>;
  verifySignature(jws: string): Promise<Buffer>;
  keyNode(kid: string): string | undefined;
}

/** The error of a page that needs the fleet database while it cannot be reached. */
export class FleetUnavailable extends Error {}

export class FleetSessionQuery implements SessionQuery, SessionRecords {
  constructor(
    private readonly options: {
      /** this replica's name in the fleet */
      readonly node: string;
      readonly fleet: FleetSessions;
      /** this replica's session index */
      readonly local: IndexedSessionQuery;
      /** this replica's store */
      readonly localRecords: SessionRecords;
      readonly log: Logger;
    },
  ) {}

  get node(): string {
    return this.options.node;
  }

  list(filter: SessionFilter, page: PageRequest): Promise<SessionPage> {
    return this.page(undefined, filter, page);
  }

  search(text: string, filter: SessionFilter, page: PageRequest): Promise<SessionPage> {
    return this.page(text, filter, page);
  }

  async get(id: string): Promise<ConsoleSession | undefined> {
    const { fleet, local, node } = this.options;
    const mine = local.getNow(id);
    if (mine !== undefined) {
      // Which of its events the fleet holds, for the page; unknown while the fleet database is away.
      const shipped = await fleet.lastSeq(id).catch(() => undefined);
      return { ...mine, node, ...(shipped === undefined ? {} : { shippedThrough: shipped }) };
    }
    const held = await this.fleetCall('read this session', () => fleet.get(id));
    return held === undefined ? undefined : { ...held, fromFleet: true };
  }

  async activity(now: number, bucketMs: number, buckets: number): Promise<ActivityBucket[]> {
    try {
      return await this.options.fleet.activity(firstBucket(now, bucketMs, buckets), bucketMs, buckets);
    } catch (err) {
      this.warn('the overview counts this replica only', err);
      return this.options.local.activityNow(now, bucketMs, buckets);
    }
  }

  behind(): number {
    return this.options.local.behind();
  }

  // ---- records ---------------------------------------------------------------------------------------------

  events(session: ConsoleSession, afterSeq?: number): Promise<Iterable<TranscriptEvent>> {
    if (session.fromFleet !== true) return this.options.localRecords.events(session, afterSeq);
    return this.fleetCall('read this session', () => this.options.fleet.events(session.id, afterSeq));
  }

  checkpoints(session: ConsoleSession): Promise<Iterable<CheckpointRecord>> {
    if (session.fromFleet !== true) return this.options.localRecords.checkpoints(session);
    return this.fleetCall('read this session', () => this.options.fleet.checkpoints(session.id));
  }

  verifySignature(jws: string, session: ConsoleSession): Promise<Buffer> {
    if (session.fromFleet !== true) return this.options.localRecords.verifySignature(jws, session);
    return this.options.fleet.verifySignature(jws);
  }

  keyHolder(kid: string): string | undefined {
    const node = this.options.fleet.keyNode(kid);
    return node === undefined ? undefined : `replica ${node}, as recorded in the fleet database`;
  }

  // ---- lists -----------------------------------------------------------------------------------------------

  private async page(
    text: string | undefined,
    filter: SessionFilter,
    page: PageRequest,
  ): Promise<SessionPage> {
    const { fleet, local, node } = this.options;
    const before = page.before === undefined ? undefined : parseCursor(page.before);
    const localPage =
      text === undefined
        ? local.listNow(filter, localRequest(page, before))
        : local.searchNow(text, filter, localRequest(page, before));
    const localItems = localPage.items.filter((s) => before === undefined || isBelow(s, before));
    let fleetPage: Awaited<ReturnType<FleetSessions['list']>>;
    let held: Set<string>;
    try {
      fleetPage = await fleet.list(
        {
          ...withoutActive(filter),
          ...(filter.activeNow === true ? { open: true } : {}),
          ...(text === undefined ? {} : { text }),
        },
        { ...(before === undefined ? {} : { before }), limit: page.limit },
      );
      held = await fleet.held(localItems.map((s) => s.id));
    } catch (err) {
      this.warn('only this replica’s sessions are listed', err);
      const last = localPage.next === undefined ? undefined : localItems.at(-1);
      return {
        items: localItems.map((s) => ({ ...s, node })),
        ...(last === undefined ? {} : { next: formatCursor(last) }),
        notice: `The fleet database cannot be reached (${(err as Error).message}): only this replica's (${node}) sessions are listed.`,
      };
    }
    // This replica's sessions come from its index either way: it is ahead of what was shipped.
    const mine = new Map(localItems.map((s) => [s.id, s]));
    const merged: ConsoleSession[] = [];
    for (const s of fleetPage.items) {
      const here = s.node === node ? (mine.get(s.id) ?? local.getNow(s.id)) : undefined;
      merged.push(here === undefined ? { ...s, fromFleet: true } : { ...here, node });
    }
    const bound = fleetPage.next;
    for (const s of localItems)
      if (!held.has(s.id) && (bound === undefined || !isBelow(s, bound)))
        merged.push({ ...s, node, shippedThrough: -1 });
    merged.sort(newestFirst);
    const items = merged.slice(0, page.limit);
    let next: FleetCursor | undefined;
    if (merged.length > page.limit) next = items.at(-1);
    else if (bound !== undefined) next = bound;
    else if (localPage.next !== undefined) next = items.at(-1);
    return { items, ...(next === undefined ? {} : { next: formatCursor(next) }) };
  }

  private async fleetCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.warn(`could not ${what}`, err);
      throw new FleetUnavailable(
        `The fleet database cannot be reached (${(err as Error).message}), so this console cannot ${what} now.`,
      );
    }
  }

  private warn(consequence: string, err: unknown): void {
    this.options.log.warn(`console: the fleet database could not be read; ${consequence}`, {
      error: String(err),
    });
  }
}

/** The local index's page for a fleet cursor: from the cursor's session (or its time), with one extra to merge. */
function localRequest(page: PageRequest, before: FleetCursor | undefined): PageRequest {
  return { limit: page.limit, ...(before === undefined ? {} : { before: before.id }) };
}

function withoutActive(filter: SessionFilter): Omit<SessionFilter, 'activeNow'> {
  const { activeNow: _active, ...rest } = filter;
  return rest;
}

/** Newest first: by start time, then by id (as the fleet database orders them). */
function newestFirst(a: FleetCursor, b: FleetCursor): number {
  if (a.startedAt !== b.startedAt) return b.startedAt - a.startedAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Is `s` after `cursor` in the newest-first order (older, or as old with a smaller id)? */
function isBelow(s: FleetCursor, cursor: FleetCursor): boolean {
  return newestFirst(cursor, s) < 0;
}

/** A page cursor in a link: `START.ID` (start time in ms, then the session id). */
function formatCursor(c: FleetCursor): string {
  return `${c.startedAt}.${c.id}`;
}

function parseCursor(text: string): FleetCursor | undefined {
  const m = /^(\d{1,15})\.([0-9A-Za-z_-]{1,64})$/.exec(text);
  return m === null ? undefined : { startedAt: Number(m[1]), id: m[2]! };
}
