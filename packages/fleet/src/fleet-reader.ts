/**
 * Reading every replica's sessions from the fleet database, in the shapes the local store's readers return, so the
 * CLI formats both the same way (`sessions list/show`, `replay`, `export`).
 */
import type { TranscriptEvent } from '@agentgate/core';
import {
  attachIoData,
  decodeEvent,
  hasExternalIoData,
  type SessionFilter,
  type SessionSummary,
} from '@agentgate/transcript';
import type { FleetDatabase } from './fleet-database.js';

/** A session as the fleet knows it: the local summary, and the replica that recorded it. */
export interface FleetSessionSummary extends SessionSummary {
  readonly node: string;
}

/** A session's row with its end and counts, as the fleet's session queries select it. */
export interface FleetSessionRow {
  session_id: string;
  node: string;
  listener: string;
  protocol: string;
  identity: string;
  groups: string[];
  client: Record<string, unknown>;
  started_ms: number;
  ended_ms: number | null;
  reason: string | null;
  commands: number;
  denied: number;
}

const summaryColumns = `
  s.session_id, s.node, s.listener, s.protocol, s.identity, s.groups, s.client,
  (extract(epoch FROM s.started_at) * 1000)::float8 AS started_ms,
  (extract(epoch FROM x.ended_at) * 1000)::float8 AS ended_ms,
  x.reason,
  (SELECT count(*) FROM agentgate.events e WHERE e.session_id = s.session_id AND e.type = 'command')::int AS commands,
  (SELECT count(*) FROM agentgate.events e WHERE e.session_id = s.session_id AND e.denied)::int AS denied`;

export function summaryOf(row: FleetSessionRow): FleetSessionSummary {
  return {
    id: row.session_id,
    node: row.node,
    listener: row.listener,
    protocol: row.protocol,
    identity: row.identity,
    groups: row.groups,
    client: row.client,
    startedAt: Math.round(row.started_ms),
    endedAt: row.ended_ms === null ? null : Math.round(row.ended_ms),
    commands: row.commands,
    denied: row.denied,
    ...(row.reason === null ? {} : { endReason: row.reason }),
  };
}

/** Events per page: io events carry up to 64 KiB each, so a page stays within tens of MiB. */
const defaultPageSize = 500;

export class FleetReader {
  constructor(private readonly db: FleetDatabase) {}

  /** Sessions of every replica matching the filter, oldest first (with `limit`, the most recent ones). */
  async listSessions(filter: SessionFilter = {}): Promise<FleetSessionSummary[]> {
    const limited = filter.limit !== undefined;
    const result = await this.db.query<FleetSessionRow>(
      `SELECT ${summaryColumns}
         FROM agentgate.sessions s LEFT JOIN agentgate.session_ends x USING (session_id)
        WHERE ($1::text IS NULL OR s.protocol = $1)
          AND ($2::text IS NULL OR s.identity = $2)
          AND ($3::text IS NULL OR s.listener = $3)
          AND ($4::float8 IS NULL OR s.started_at >= to_timestamp($4 / 1000.0))
          AND ($5::float8 IS NULL OR s.started_at < to_timestamp($5 / 1000.0))
          AND (NOT $6::bool OR EXISTS (SELECT 1 FROM agentgate.events e WHERE e.session_id = s.session_id AND e.denied))
        ORDER BY s.started_at ${limited ? 'DESC' : 'ASC'}, s.session_id ${limited ? 'DESC' : 'ASC'}
        ${limited ? 'LIMIT $7' : ''}`,
      [
        filter.protocol ?? null,
        filter.identity ?? null,
        filter.listener ?? null,
        filter.since ?? null,
        filter.until ?? null,
        filter.denied === true,
        ...(limited ? [filter.limit] : []),
      ],
    );
    const list = result.rows.map(summaryOf);
    return limited ? list.reverse() : list;
  }

  async getSession(id: string): Promise<FleetSessionSummary | undefined> {
    const result = await this.db.query<FleetSessionRow>(
      `SELECT ${summaryColumns}
         FROM agentgate.sessions s LEFT JOIN agentgate.session_ends x USING (session_id)
        WHERE s.session_id = $1`,
      [id],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : summaryOf(row);
  }

  /**
   * A session's shipped events in seq order, a page at a time (keyset paging on `(session_id, seq)`, so each page
   * is one index range scan and memory holds one page), io bytes attached as base64 `data` as the local readers do.
   */
  async *eventPages(id: string, pageSize = defaultPageSize): AsyncGenerator<TranscriptEvent[]> {
    let after = -1;
    for (;;) {
      const page = await this.db.query<{ seq: number; stored: string; io_data: Buffer | null }>(
        `SELECT seq, stored, io_data FROM agentgate.events
          WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
        [id, after, pageSize],
      );
      const last = page.rows.at(-1);
      if (last === undefined) return;
      yield page.rows.map((row) => {
        const event = decodeEvent(row.stored);
        if (row.io_data !== null && hasExternalIoData(event)) attachIoData(event, row.io_data);
        return event;
      });
      if (page.rows.length < pageSize) return;
      after = last.seq;
    }
  }

  /** A session's shipped events in seq order, all at once (for readers that need the whole session). */
  async events(id: string): Promise<TranscriptEvent[]> {
    const all: TranscriptEvent[] = [];
    for await (const page of this.eventPages(id)) for (const event of page) all.push(event);
    return all;
  }

  /** The last shipped seq of each of these sessions (absent: none shipped). */
  async lastSeqs(ids: readonly string[]): Promise<Map<string, number>> {
    const result = await this.db.query<{ session_id: string; last: number }>(
      `SELECT session_id, max(seq) AS last FROM agentgate.events WHERE session_id = ANY($1::text[]) GROUP BY 1`,
      [ids],
    );
    return new Map(result.rows.map((r) => [r.session_id, r.last]));
  }
}
