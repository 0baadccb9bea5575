/**
 * A batch of the commit feed as rows of the fleet tables, and the one statement that inserts them. Each row keeps the
 * event exactly as the replica stored it; the other columns are read off it for queries. Rows already there (a batch
 * shipped again after a crash) are left alone: `(session_id, seq)` is the key and conflicts do nothing.
 */
import type { FeedBatch, FeedEvent } from '@agentgate/transcript';
import { isDeniedApproval, isDeniedDecision, upgradeLegacyProtocol } from '@agentgate/transcript';

export interface ShipRows {
  readonly events: {
    session: string[];
    seq: number[];
    ts: number[];
    type: string[];
    denied: boolean[];
    stored: string[];
    ioData: (Buffer | null)[];
  };
  readonly checkpoints: { session: string[]; seq: number[]; record: string[] };
  readonly starts: {
    session: string[];
    listener: string[];
    protocol: string[];
    identity: string[];
    groups: string[];
    client: string[];
    startedAt: number[];
  };
  readonly ends: { session: string[]; endedAt: number[]; lastSeq: number[]; reason: (string | null)[] };
}

function isDenied(event: FeedEvent): boolean {
  // A denial's stored JSON holds "deny": other commands are not parsed for it.
  if (event.type === 'command' || event.type === 'decision')
    return event.stored.includes('"deny"') && isDeniedDecision(event.event);
  if (event.type === 'approval.decided') return isDeniedApproval(event.event);
  return false;
}

export function shipRows(batch: Pick<FeedBatch, 'events' | 'checkpoints'>): ShipRows {
  const rows: ShipRows = {
    events: { session: [], seq: [], ts: [], type: [], denied: [], stored: [], ioData: [] },
    checkpoints: { session: [], seq: [], record: [] },
    starts: { session: [], listener: [], protocol: [], identity: [], groups: [], client: [], startedAt: [] },
    ends: { session: [], endedAt: [], lastSeq: [], reason: [] },
  };
  const e = rows.events;
  for (const event of batch.events) {
    e.session.push(event.session);
    e.seq.push(event.seq);
    e.ts.push(event.ts);
    e.type.push(event.type);
    e.denied.push(isDenied(event));
    e.stored.push(event.stored);
    e.ioData.push(event.data ?? null);
    if (event.type === 'session.start') {
      const body = event.event as Record<string, unknown>;
      const client =
        body['client'] !== null && typeof body['client'] === 'object'
          ? (body['client'] as Record<string, unknown>)
          : {};
      const listener = String(body['listener'] ?? '');
      const s = rows.starts;
      s.session.push(event.session);
      s.listener.push(listener);
      s.protocol.push(upgradeLegacyProtocol({ protocol: String(body['protocol'] ?? ''), listener, client }));
      s.identity.push(String(body['identity'] ?? ''));
      s.groups.push(JSON.stringify(Array.isArray(body['groups']) ? body['groups'] : []));
      s.client.push(JSON.stringify(client));
      s.startedAt.push(typeof body['startedAt'] === 'number' ? body['startedAt'] : event.ts);
    } else if (event.type === 'session.end') {
      const reason = (event.event as Record<string, unknown>)['reason'];
      rows.ends.session.push(event.session);
      rows.ends.endedAt.push(event.ts);
      rows.ends.lastSeq.push(event.seq);
      rows.ends.reason.push(typeof reason === 'string' ? reason : null);
    }
  }
  for (const checkpoint of batch.checkpoints) {
    const { position: _position, ...record } = checkpoint;
    rows.checkpoints.session.push(checkpoint.session);
    rows.checkpoints.seq.push(checkpoint.seq);
    rows.checkpoints.record.push(JSON.stringify(record));
  }
  return rows;
}

/**
 * One statement for the whole batch (one round trip, one transaction): arrays unnested into each table. Returns
 * one row: how many events and checkpoints were new.
 */
export const insertBatchSql = `
WITH new_events AS (
  INSERT INTO agentgate.events (session_id, seq, node, ts, type, denied, stored, io_data)
  SELECT u.session_id, u.seq, $1, to_timestamp(u.ts / 1000.0), u.type, u.denied, u.stored, u.io_data
    FROM unnest($2::text[], $3::int[], $4::float8[], $5::text[], $6::bool[], $7::text[], $8::bytea[])
      AS u(session_id, seq, ts, type, denied, stored, io_data)
  ON CONFLICT (session_id, seq) DO NOTHING
  RETURNING 1
), new_checkpoints AS (
  INSERT INTO agentgate.checkpoints (session_id, seq, node, record)
  SELECT u.session_id, u.seq, $1, u.record FROM unnest($9::text[], $10::int[], $11::text[]) AS u(session_id, seq, record)
  ON CONFLICT (session_id, seq) DO NOTHING
  RETURNING 1
), new_sessions AS (
  INSERT INTO agentgate.sessions (session_id, node, listener, protocol, identity, groups, client, started_at)
  SELECT u.session_id, $1, u.listener, u.protocol, u.identity, u.groups::jsonb, u.client::jsonb,
         to_timestamp(u.started_at / 1000.0)
    FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::float8[])
      AS u(session_id, listener, protocol, identity, groups, client, started_at)
  ON CONFLICT (session_id) DO NOTHING
  RETURNING 1
), new_ends AS (
  INSERT INTO agentgate.session_ends (session_id, ended_at, last_seq, reason)
  SELECT u.session_id, to_timestamp(u.ended_at / 1000.0), u.last_seq, u.reason
    FROM unnest($19::text[], $20::float8[], $21::int[], $22::text[]) AS u(session_id, ended_at, last_seq, reason)
  ON CONFLICT (session_id) DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM new_events)::int AS events,
       (SELECT count(*) FROM new_checkpoints)::int AS checkpoints,
       (SELECT count(*) FROM new_sessions)::int AS sessions,
       (SELECT count(*) FROM new_ends)::int AS ends`;

export function insertBatchValues(node: string, rows: ShipRows): unknown[] {
  const { events: e, checkpoints: c, starts: s, ends: x } = rows;
  return [
    node,
    e.session,
    e.seq,
    e.ts,
    e.type,
    e.denied,
    e.stored,
    e.ioData,
    c.session,
    c.seq,
    c.record,
    s.session,
    s.listener,
    s.protocol,
    s.identity,
    s.groups,
    s.client,
    s.startedAt,
    x.session,
    x.endedAt,
    x.lastSeq,
    x.reason,
  ];
}

/**
 * Events of the batch already in the fleet with other content: a re-ship inserts nothing, but a row that differs
 * from what this replica stored is reported (verify names the session too).
 */
export const differingEventsSql = `
SELECT u.session_id, u.seq
  FROM unnest($1::text[], $2::int[], $3::text[]) AS u(session_id, seq, stored)
  JOIN agentgate.events e ON e.session_id = u.session_id AND e.seq = u.seq
 WHERE e.stored <> u.stored
 LIMIT 10`;
