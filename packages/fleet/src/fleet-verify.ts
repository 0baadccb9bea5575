/**
 * `verify --fleet`: every chain and checkpoint in the fleet database, checked by the same code that checks a local
 * store (verify.ts of the transcript package) over the shipped rows, in rounds of whole sessions holding at most
 * `eventsPerRound` events together (a longer session is a round of its own), each session's events read in pages.
 */
import {
  eventKey,
  verifyStore,
  type KeySource,
  type VerificationKeys,
  type VerifyProblem,
  type VerifyReport,
} from '@agentgate/transcript';
import type { FleetDatabase } from './fleet-database.js';
import { columnProblems, type EndColumns, type EventColumns, type SessionColumns } from './fleet-columns.js';

export interface FleetVerifyLimits {
  /** events held in memory by one round, unless one session alone has more (default 100,000) */
  readonly eventsPerRound: number;
  /** events per query when a round reads its sessions' events (default 5000) */
  readonly pageSize: number;
}

const defaultLimits: FleetVerifyLimits = { eventsPerRound: 100_000, pageSize: 5000 };
/** Sessions whose sizes are looked up at once. */
const sessionsPerLookup = 1000;

export interface FleetKey {
  readonly node: string;
  readonly kid: string;
  readonly jwk: Record<string, unknown>;
}

/** Every replica's public signing keys as recorded in the fleet database. */
export async function fleetKeys(db: FleetDatabase): Promise<FleetKey[]> {
  const result = await db.query<FleetKey>(
    'SELECT node, kid, jwk FROM agentgate.signing_keys ORDER BY recorded_at, node, kid',
  );
  return result.rows;
}

/** Add the fleet's recorded keys to `keys`; returns how many were usable. */
export function addFleetKeys(
  keys: VerificationKeys,
  recorded: readonly FleetKey[],
  source: KeySource = 'fleet',
): number {
  return recorded.filter((k) => keys.add(k.jwk, source)).length;
}

export async function verifyFleet(
  db: FleetDatabase,
  verifySignature: (jws: string) => Promise<Buffer>,
  limits: FleetVerifyLimits = defaultLimits,
): Promise<VerifyReport> {
  const ids = await db.query<{ session_id: string }>(
    `SELECT session_id FROM agentgate.sessions
     UNION SELECT DISTINCT session_id FROM agentgate.events
     UNION SELECT DISTINCT session_id FROM agentgate.checkpoints
     ORDER BY 1`,
  );
  const all = ids.rows.map((r) => r.session_id);
  const total: VerifyReport = { ok: true, sessions: 0, events: 0, checkpoints: 0, problems: [] };
  for await (const round of rounds(db, all, limits.eventsPerRound)) {
    const report = await verifyRound(db, round, limits.pageSize, verifySignature);
    total.sessions += report.sessions;
    total.events += report.events;
    total.checkpoints += report.checkpoints;
    total.problems.push(...report.problems);
  }
  total.ok = total.problems.length === 0;
  return total;
}

/** The sessions in rounds of at most `eventsPerRound` shipped events (by each session's last shipped seq). */
async function* rounds(
  db: FleetDatabase,
  ids: readonly string[],
  eventsPerRound: number,
): AsyncGenerator<string[]> {
  let round: string[] = [];
  let events = 0;
  for (let i = 0; i < ids.length; i += sessionsPerLookup) {
    const chunk = ids.slice(i, i + sessionsPerLookup);
    const last = await db.query<{ session_id: string; last: number }>(
      'SELECT session_id, max(seq) AS last FROM agentgate.events WHERE session_id = ANY($1::text[]) GROUP BY 1',
      [chunk],
    );
    const size = new Map(last.rows.map((r) => [r.session_id, r.last + 1]));
    for (const id of chunk) {
      const n = size.get(id) ?? 0;
      if (round.length > 0 && events + n > eventsPerRound) {
        yield round;
        round = [];
        events = 0;
      }
      round.push(id);
      events += n;
    }
  }
  if (round.length > 0) yield round;
}

type EventRow = EventColumns & { io_data: Buffer | null };

/**
 * The round's events grouped by session, each session's in seq order, a page at a time: keyset paging on the
 * primary key (the row comparison and the order both follow its index).
 */
async function roundEvents(db: FleetDatabase, ids: readonly string[], pageSize: number): Promise<EventRow[]> {
  const rows: EventRow[] = [];
  let after: EventRow | undefined;
  for (;;) {
    const page = await db.query<EventRow>(
      `SELECT session_id, seq, stored, io_data, type, denied, (extract(epoch FROM ts) * 1000)::float8 AS ts_ms
         FROM agentgate.events
        WHERE session_id = ANY($1::text[]) AND (session_id, seq) > ($2::text, $3::int)
        ORDER BY session_id, seq LIMIT $4`,
      [ids, after?.session_id ?? '', after?.seq ?? -1, pageSize],
    );
    for (const row of page.rows) rows.push(row);
    after = page.rows.at(-1);
    if (after === undefined || page.rows.length < pageSize) return rows;
  }
}

async function verifyRound(
  db: FleetDatabase,
  ids: readonly string[],
  pageSize: number,
  verifySignature: (jws: string) => Promise<Buffer>,
): Promise<VerifyReport> {
  const [sessions, ends, events, checkpoints] = await Promise.all([
    db.query<SessionColumns>(
      `SELECT session_id, listener, protocol, identity, groups, client,
              (extract(epoch FROM started_at) * 1000)::float8 AS started_ms
         FROM agentgate.sessions WHERE session_id = ANY($1::text[])`,
      [ids],
    ),
    db.query<EndColumns>(
      `SELECT session_id, last_seq, reason, (extract(epoch FROM ended_at) * 1000)::float8 AS ended_ms
         FROM agentgate.session_ends WHERE session_id = ANY($1::text[])`,
      [ids],
    ),
    roundEvents(db, ids, pageSize),
    db.query<{ session_id: string; seq: number; record: string }>(
      'SELECT session_id, seq, record FROM agentgate.checkpoints WHERE session_id = ANY($1::text[])',
      [ids],
    ),
  ]);
  const ended = new Map(ends.rows.map((r) => [r.session_id, { lastSeq: r.last_seq }]));
  const ioData = new Map<string, Buffer>();
  const eventRows = events.map((row) => {
    const key = eventKey(row.session_id, row.seq);
    if (row.io_data !== null) ioData.set(key, row.io_data);
    return { key, value: row.stored };
  });
  const problems: VerifyProblem[] = [];
  const report = await verifyStore({
    events: eventRows,
    sessionIds: sessions.rows.map((r) => r.session_id),
    ended: (id) => ended.get(id),
    checkpoints: checkpoints.rows.map((r) => ({ key: eventKey(r.session_id, r.seq), value: r.record })),
    ioData: (key) => ioData.get(key),
    ioDataKeys: ioData.keys(),
    verifySignature,
  });
  problems.push(...report.problems, ...columnProblems(events, sessions.rows, ends.rows));
  return { ...report, ok: problems.length === 0, problems };
}
