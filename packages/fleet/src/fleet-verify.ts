/**
 * `verify --fleet`: every chain and checkpoint in the fleet database, checked by the same code that checks a local
 * store (verify.ts of the transcript package) over the shipped rows, a few hundred sessions at a time.
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

/** Sessions checked per round: their events are held in memory while they are checked. */
const sessionsPerRound = 200;

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
): Promise<VerifyReport> {
  const ids = await db.query<{ session_id: string }>(
    `SELECT session_id FROM agentgate.sessions
     UNION SELECT DISTINCT session_id FROM agentgate.events
     UNION SELECT DISTINCT session_id FROM agentgate.checkpoints
     ORDER BY 1`,
  );
  const all = ids.rows.map((r) => r.session_id);
  const total: VerifyReport = { ok: true, sessions: 0, events: 0, checkpoints: 0, problems: [] };
  for (let i = 0; i < all.length; i += sessionsPerRound) {
    const report = await verifyRound(db, all.slice(i, i + sessionsPerRound), verifySignature);
    total.sessions += report.sessions;
    total.events += report.events;
    total.checkpoints += report.checkpoints;
    total.problems.push(...report.problems);
  }
  total.ok = total.problems.length === 0;
  return total;
}

async function verifyRound(
  db: FleetDatabase,
  ids: readonly string[],
  verifySignature: (jws: string) => Promise<Buffer>,
): Promise<VerifyReport> {
  const [sessions, ends, events, checkpoints] = await Promise.all([
    db.query<{ session_id: string }>(
      'SELECT session_id FROM agentgate.sessions WHERE session_id = ANY($1::text[])',
      [ids],
    ),
    db.query<{ session_id: string; last_seq: number }>(
      'SELECT session_id, last_seq FROM agentgate.session_ends WHERE session_id = ANY($1::text[])',
      [ids],
    ),
    db.query<{ session_id: string; seq: number; stored: string; io_data: Buffer | null }>(
      `SELECT session_id, seq, stored, io_data FROM agentgate.events
        WHERE session_id = ANY($1::text[]) ORDER BY session_id COLLATE "C", seq`,
      [ids],
    ),
    db.query<{ session_id: string; seq: number; record: string }>(
      'SELECT session_id, seq, record FROM agentgate.checkpoints WHERE session_id = ANY($1::text[])',
      [ids],
    ),
  ]);
  const ended = new Map(ends.rows.map((r) => [r.session_id, { lastSeq: r.last_seq }]));
  const ioData = new Map<string, Buffer>();
  const eventRows = events.rows.map((row) => {
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
  problems.push(...report.problems);
  return { ...report, problems };
}
