/**
 * Where `sessions list/show`, `replay` and `export` read sessions from: the local store, or — when the
 * configuration has a `fleet` section — the fleet database, which holds every replica's sessions. Both answer
 * through one interface, so the commands format either the same way.
 */
import type { Command } from 'commander';
import { loadFleetLocation } from '@agentgate/config';
import type { TranscriptEvent } from '@agentgate/core';
import { FleetDatabase, FleetReader } from '@agentgate/fleet';
import type { SessionFilter, SessionSummary, StoreForReading } from '@agentgate/transcript';
import { CliError, iso } from './cli-util.js';
import { storeOptions, withReadableStore, type StoreOptions } from './store-access.js';

export interface SessionSource {
  /** `store PATH` or `fleet DATABASE`, for messages */
  readonly where: string;
  listSessions(filter: SessionFilter): Promise<SessionSummary[]>;
  getSession(id: string): Promise<SessionSummary | undefined>;
  /** A session's events in seq order, io bytes attached as base64 `data`; may be iterated more than once. */
  events(id: string): Promise<Iterable<TranscriptEvent>>;
  /** The same events a page at a time, for readers that go through a session once (memory holds one page). */
  eventPages(id: string): AsyncIterable<readonly TranscriptEvent[]>;
  /** The error for a session it does not hold. */
  noSession(id: string): CliError;
}

export interface SessionSourceOptions extends StoreOptions {
  /** read the local store even when the configuration has a fleet section */
  local?: boolean;
}

/** The options of the commands that read sessions: the store's, and `--local`. */
export function sessionSourceOptions(command: Command): Command {
  return storeOptions(command).option(
    '--local',
    "with --config of a fleet replica: read this replica's local store instead of the fleet database",
  );
}

export async function withSessionSource<T>(
  opts: SessionSourceOptions,
  fn: (source: SessionSource) => Promise<T>,
): Promise<T> {
  if (opts.config !== undefined && opts.store === undefined && !opts.local) {
    const location = await loadFleetLocation(opts.config);
    if (location.fleet !== undefined) {
      const db = await FleetDatabase.open(location.fleet.postgres, { applicationName: 'agentgate cli' });
      try {
        return await fn(fleetSource(db));
      } finally {
        await db.close();
      }
    }
  }
  return withReadableStore(opts, (store) => fn(localSource(store)));
}

/** A synchronous stream (the local store's) in pages, so both sources are read the same way. */
async function* pagesOf<T>(items: Iterable<T>, size = 1000): AsyncGenerator<T[]> {
  let page: T[] = [];
  for (const item of items) {
    page.push(item);
    if (page.length === size) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

function localSource(store: StoreForReading): SessionSource {
  return {
    where: `store ${store.path}`,
    listSessions: (filter) => Promise.resolve(store.listSessions(filter)),
    getSession: (id) => Promise.resolve(store.getSession(id)),
    // Read afresh each time it is iterated (export reads a session twice), streaming from the store.
    events: (id) => Promise.resolve({ [Symbol.iterator]: () => store.events(id)[Symbol.iterator]() }),
    eventPages: (id) => pagesOf(store.events(id)),
    noSession(id) {
      const at = store.prunedAt(id);
      return new CliError(
        at === undefined
          ? `no session ${id}`
          : `no session ${id}: a prune record lists it as pruned on ${iso(at)} (agentgate verify checks that record)`,
      );
    },
  };
}

function fleetSource(db: FleetDatabase): SessionSource {
  const reader = new FleetReader(db);
  return {
    where: `fleet database ${db.description}`,
    listSessions: (filter) => reader.listSessions(filter),
    getSession: (id) => reader.getSession(id),
    events: (id) => reader.events(id),
    eventPages: (id) => reader.eventPages(id),
    noSession: (id) =>
      new CliError(
        `no session ${id} in the fleet database ${db.description} (a replica may not have shipped it yet: ` +
          "agentgate verify --fleet lists what is only local; --local reads this replica's store)",
      ),
  };
}
