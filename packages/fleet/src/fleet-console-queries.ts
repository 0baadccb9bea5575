/**
 * What a replica's web console asks the fleet database: every replica's sessions newest first, filtered and paged
 * from a cursor, text search over recorded commands, one session's events (or those after a seq, for following a
 * session another replica runs), its checkpoints, the hourly activity, and the replicas the fleet knows.
 *
 * A page walks the sessions that pass the cheap filters (identity, protocol, listener, time, open) newest first, a
 * window at a time, and checks the costly ones (denials, approvals, text) on each window; a page that takes longer
 * than its budget ends early with a cursor where it stopped, as the local session index does, so a search that
 * matches little in a large fleet answers in bounded time and the next page goes on from there.
 */
import type { TranscriptEvent } from '@agentgate/core';
import {
  attachIoData,
  decodeEvent,
  hasExternalIoData,
  jwsKeyId,
  searchTerms,
  VerificationKeys,
  type CheckpointRecord,
} from '@agentgate/transcript';
import type { FleetDatabase } from './fleet-database.js';
import { FleetReader, summaryOf, type FleetSessionRow, type FleetSessionSummary } from './fleet-reader.js';
import { addFleetKeys, fleetKeys } from './fleet-verify.js';

export interface FleetConsoleFilter {
  readonly identity?: string;
  readonly protocol?: string;
  readonly listener?: string;
  /** started at or after (ms since the epoch) */
  readonly since?: number;
  /** started before (ms since the epoch) */
  readonly until?: number;
  /** only sessions with a denied decision or an approval rejected or expired */
  readonly hasDenials?: boolean;
  /** only sessions with an approval request */
  readonly hasApprovals?: boolean;
  /** only sessions whose end the fleet has not received */
  readonly open?: boolean;
  /** only sessions with a command whose recorded text holds every term (text-search.ts of the transcript) */
  readonly text?: string;
}

/** Where a page starts: below this session in the order (newest first: start time, then id). */
export interface FleetCursor {
  readonly startedAt: number;
  readonly id: string;
}

export interface FleetConsolePage {
  readonly items: readonly FleetSessionSummary[];
  /** absent on the last page */
  readonly next?: FleetCursor;
}

export interface FleetActivityBucket {
  readonly start: number;
  commands: number;
  denials: number;
  approvals: number;
}

export interface FleetNode {
  readonly node: string;
  readonly sessions: number;
  /** sessions whose end the fleet has not received */
  readonly open: number;
  /** when its newest shipped session started (ms), if any */
  readonly newestSessionAt?: number;
}

/** Sessions checked per round trip when a costly filter is given. */
const windowSize = 200;
const defaultBudgetMs = 1000;
/** A kid no replica recorded is looked up again after this long (a replica that just joined). */
const keysRetryMs = 5000;

interface WindowRow {
  session_id: string;
  started_ms: number;
  matches: boolean;
}

export class FleetConsoleQueries {
  private readonly reader: FleetReader;
  private keys: VerificationKeys | undefined;
  private keysAt = 0;
  private keyNodes = new Map<string, string>();

  constructor(private readonly db: FleetDatabase) {
    this.reader = new FleetReader(db);
  }

  get(id: string): Promise<FleetSessionSummary | undefined> {
    return this.reader.getSession(id);
  }

  /** Newest first from `before`; at most `limit`, fewer (with a cursor) when the budget runs out. */
  async list(
    filter: FleetConsoleFilter,
    page: { readonly before?: FleetCursor; readonly limit: number; readonly budgetMs?: number },
  ): Promise<FleetConsolePage> {
    const terms = filter.text === undefined ? [] : searchTerms(filter.text);
    const costly = filter.hasDenials === true || filter.hasApprovals === true || terms.length > 0;
    const deadline = Date.now() + (page.budgetMs ?? defaultBudgetMs);
    const found: string[] = [];
    let cursor = page.before;
    let more: FleetCursor | undefined;
    for (;;) {
      const size = costly ? windowSize : page.limit - found.length + 1;
      const rows = await this.window(filter, terms, cursor, size);
      let full = false;
      for (const row of rows) {
        const key = { startedAt: Math.round(row.started_ms), id: row.session_id };
        if (!row.matches) {
          cursor = key;
          continue;
        }
        if (found.length === page.limit) {
          full = true;
          break;
        }
        found.push(row.session_id);
        cursor = key;
      }
      if (full) {
        more = cursor;
        break;
      }
      if (rows.length < size) break;
      if (Date.now() > deadline) {
        more = cursor;
        break;
      }
    }
    const items = await this.summaries(found);
    return more === undefined ? { items } : { items, next: more };
  }

  /** The last seq the fleet holds of a session (-1: none). */
  async lastSeq(id: string): Promise<number> {
    const result = await this.db.query<{ last: number | null }>(
      'SELECT max(seq) AS last FROM agentgate.events WHERE session_id = $1',
      [id],
    );
    return result.rows[0]?.last ?? -1;
  }

  /**
   * Verifies a checkpoint JWS with the public keys the replicas recorded in the fleet database (re-read when a
   * kid is not among them, at most every few seconds); returns the payload.
   */
  async verifySignature(jws: string): Promise<Buffer> {
    const kid = jwsKeyId(jws);
    if (
      this.keys === undefined ||
      (kid !== undefined && !this.keyNodes.has(kid) && Date.now() - this.keysAt > keysRetryMs)
    )
      await this.loadKeys();
    return this.keys!.verifyCompact(jws);
  }

  /** The replica that recorded a signing key (after a verifySignature that needed it). */
  keyNode(kid: string): string | undefined {
    return this.keyNodes.get(kid);
  }

  private async loadKeys(): Promise<void> {
    const recorded = await fleetKeys(this.db);
    const keys = new VerificationKeys(() => 'which no replica recorded in the fleet database');
    addFleetKeys(keys, recorded);
    this.keys = keys;
    this.keysAt = Date.now();
    this.keyNodes = new Map(recorded.map((k) => [k.kid, k.node]));
  }

  /** The ids of these sessions that the fleet holds. */
  async held(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const result = await this.db.query<{ session_id: string }>(
      'SELECT session_id FROM agentgate.sessions WHERE session_id = ANY($1::text[])',
      [ids],
    );
    return new Set(result.rows.map((r) => r.session_id));
  }

  /** A session's shipped events in seq order (after `afterSeq` when given), io bytes attached as base64 `data`. */
  async events(id: string, afterSeq = -1): Promise<TranscriptEvent[]> {
    const result = await this.db.query<{ stored: string; io_data: Buffer | null }>(
      'SELECT stored, io_data FROM agentgate.events WHERE session_id = $1 AND seq > $2 ORDER BY seq',
      [id, afterSeq],
    );
    return result.rows.map((row) => {
      const event = decodeEvent(row.stored);
      if (row.io_data !== null && hasExternalIoData(event)) attachIoData(event, row.io_data);
      return event;
    });
  }

  async checkpoints(id: string): Promise<CheckpointRecord[]> {
    const result = await this.db.query<{ record: string }>(
      'SELECT record FROM agentgate.checkpoints WHERE session_id = $1 ORDER BY seq',
      [id],
    );
    const out: CheckpointRecord[] = [];
    for (const row of result.rows) {
      try {
        out.push(JSON.parse(row.record) as CheckpointRecord);
      } catch {
        // A row that is not JSON is not a checkpoint: the chain check reports the seq it leaves uncovered.
      }
    }
    return out;
  }

  /**
   * Commands, denials and approval requests per bucket, from `from` on. Only sessions that can have events in
   * the range are read: started in it, ended in it, or not ended.
   */
  async activity(from: number, bucketMs: number, buckets: number): Promise<FleetActivityBucket[]> {
    const result = await this.db.query<{
      bucket: number;
      commands: number;
      denials: number;
      approvals: number;
    }>(
      `SELECT floor((extract(epoch FROM e.ts) * 1000 - $1::float8) / $2::float8)::int AS bucket,
              count(*) FILTER (WHERE e.type = 'command')::int AS commands,
              count(*) FILTER (WHERE e.denied)::int AS denials,
              count(*) FILTER (WHERE e.type = 'approval.requested')::int AS approvals
         FROM agentgate.sessions s
         LEFT JOIN agentgate.session_ends x USING (session_id)
         JOIN agentgate.events e ON e.session_id = s.session_id
        WHERE (s.started_at >= to_timestamp($1::float8 / 1000.0) OR x.ended_at IS NULL
               OR x.ended_at >= to_timestamp($1::float8 / 1000.0))
          AND e.ts >= to_timestamp($1::float8 / 1000.0)
          AND (e.type IN ('command', 'approval.requested') OR e.denied)
        GROUP BY 1`,
      [from, bucketMs],
    );
    const out: FleetActivityBucket[] = Array.from({ length: buckets }, (_, i) => ({
      start: from + i * bucketMs,
      commands: 0,
      denials: 0,
      approvals: 0,
    }));
    for (const row of result.rows) {
      const bucket = out[row.bucket];
      if (bucket === undefined) continue;
      bucket.commands += row.commands;
      bucket.denials += row.denials;
      bucket.approvals += row.approvals;
    }
    return out;
  }

  /** Every replica that recorded a session or a signing key, with its session counts. */
  async nodes(): Promise<FleetNode[]> {
    const result = await this.db.query<{
      node: string;
      sessions: number;
      open: number;
      last_ms: number | null;
    }>(
      `SELECT n.node,
              (SELECT count(*) FROM agentgate.sessions s WHERE s.node = n.node)::int AS sessions,
              (SELECT count(*) FROM agentgate.sessions s LEFT JOIN agentgate.session_ends x USING (session_id)
                WHERE s.node = n.node AND x.session_id IS NULL)::int AS open,
              (SELECT extract(epoch FROM max(s.started_at)) * 1000 FROM agentgate.sessions s
                WHERE s.node = n.node)::float8 AS last_ms
         FROM (SELECT node FROM agentgate.signing_keys UNION SELECT DISTINCT node FROM agentgate.sessions) n
        ORDER BY n.node`,
    );
    return result.rows.map((r) => ({
      node: r.node,
      sessions: r.sessions,
      open: r.open,
      ...(r.last_ms === null ? {} : { newestSessionAt: Math.round(r.last_ms) }),
    }));
  }

  /** Up to `size` sessions below `cursor` passing the cheap filters, each with whether it passes the costly ones. */
  private async window(
    filter: FleetConsoleFilter,
    terms: readonly string[],
    cursor: FleetCursor | undefined,
    size: number,
  ): Promise<WindowRow[]> {
    const result = await this.db.query<WindowRow>(
      `SELECT s.session_id, (extract(epoch FROM s.started_at) * 1000)::float8 AS started_ms,
              (NOT $7::bool OR EXISTS (SELECT 1 FROM agentgate.events e WHERE e.session_id = s.session_id AND e.denied))
          AND (NOT $8::bool OR EXISTS (SELECT 1 FROM agentgate.events e
                                        WHERE e.session_id = s.session_id AND e.type = 'approval.requested'))
          AND (cardinality($9::text[]) = 0 OR EXISTS (
                SELECT 1 FROM agentgate.events e
                 CROSS JOIN LATERAL (SELECT ${normalizedCommandText} AS t) c
                 WHERE e.session_id = s.session_id AND e.type = 'command'
                   AND NOT EXISTS (SELECT 1 FROM unnest($9::text[]) AS term WHERE strpos(c.t, term) = 0)))
              AS matches
         FROM agentgate.sessions s
        WHERE ($1::text IS NULL OR s.identity = $1)
          AND ($2::text IS NULL OR s.protocol = $2)
          AND ($3::text IS NULL OR s.listener = $3)
          AND ($4::float8 IS NULL OR s.started_at >= to_timestamp($4 / 1000.0))
          AND ($5::float8 IS NULL OR s.started_at < to_timestamp($5 / 1000.0))
          AND (NOT $6::bool OR NOT EXISTS (SELECT 1 FROM agentgate.session_ends x WHERE x.session_id = s.session_id))
          AND ($10::float8 IS NULL
               OR (s.started_at, s.session_id COLLATE "C") < (to_timestamp($10 / 1000.0), $11::text COLLATE "C"))
        ORDER BY s.started_at DESC, s.session_id COLLATE "C" DESC
        LIMIT $12`,
      [
        filter.identity ?? null,
        filter.protocol ?? null,
        filter.listener ?? null,
        filter.since ?? null,
        filter.until ?? null,
        filter.open === true,
        filter.hasDenials === true,
        filter.hasApprovals === true,
        terms,
        cursor?.startedAt ?? null,
        cursor?.id ?? null,
        size,
      ],
    );
    return result.rows;
  }

  /** Summaries of these sessions, in the order given. */
  private async summaries(ids: readonly string[]): Promise<FleetSessionSummary[]> {
    if (ids.length === 0) return [];
    const result = await this.db.query<FleetSessionRow>(
      `SELECT s.session_id, s.node, s.listener, s.protocol, s.identity, s.groups, s.client,
              (extract(epoch FROM s.started_at) * 1000)::float8 AS started_ms,
              (extract(epoch FROM x.ended_at) * 1000)::float8 AS ended_ms, x.reason,
              (SELECT count(*) FROM agentgate.events e
                WHERE e.session_id = s.session_id AND e.type = 'command')::int AS commands,
              (SELECT count(*) FROM agentgate.events e WHERE e.session_id = s.session_id AND e.denied)::int AS denied
         FROM agentgate.sessions s LEFT JOIN agentgate.session_ends x USING (session_id)
        WHERE s.session_id = ANY($1::text[])`,
      [ids],
    );
    const byId = new Map(result.rows.map((row) => [row.session_id, summaryOf(row)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }
}

/**
 * A command event's searchable text, normalised as the local index does (text-search.ts): its recorded text (or
 * text), lower-cased, runs of whitespace and control characters made one space, trimmed. jsonb refuses the escape
 * `\u0000`: an event whose stored JSON holds it is searched in its raw JSON, lower-cased, rather than failing the
 * whole query.
 */
const normalizedCommandText = `CASE WHEN strpos(e.stored, '\\u0000') > 0 THEN lower(e.stored) ELSE
  btrim(regexp_replace(lower(coalesce(e.stored::jsonb ->> 'recordedText', e.stored::jsonb ->> 'text', '')),
    '[[:space:]\\x01-\\x1f\\x7f-\\x9f]+', ' ', 'g')) END`;
