/**
 * Writing one batch into the fleet database, in one transaction, two ways:
 *
 * - copy: the events by binary COPY straight into `agentgate.events`, then the batch's checkpoints, sessions and
 *   session ends by the merge statement (few rows). A COPY fails as a whole on the first key already there, so it
 *   never inserts anything twice; that failure (`unique_violation`) is reported as a conflict, not an error.
 * - merge: everything by `INSERT … ON CONFLICT DO NOTHING` (ship-rows.ts), for a batch that may have been shipped
 *   before (after a restart, after a failed attempt, or after a COPY conflict).
 */
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { copyEventsData, copyEventsSql } from './copy-events.js';
import { insertBatchSql, insertBatchValues, type ShipRows } from './ship-rows.js';

const uniqueViolation = '23505';

const noEvents: ShipRows['events'] = {
  session: [],
  seq: [],
  ts: [],
  type: [],
  denied: [],
  stored: [],
  ioData: [],
};

/** What a merge inserted: new events, checkpoints, sessions and ends. */
export interface MergeCounts {
  readonly events: number;
  readonly checkpoints: number;
  readonly sessions: number;
  readonly ends: number;
}

export async function mergeBatch(pool: pg.Pool, node: string, rows: ShipRows): Promise<MergeCounts> {
  const result = await pool.query<MergeCounts>(insertBatchSql, insertBatchValues(node, rows));
  return result.rows[0] ?? { events: 0, checkpoints: 0, sessions: 0, ends: 0 };
}

/** The batch by COPY: how many events it inserted (all of them), or 'conflict' when one was already there. */
export async function copyBatch(pool: pg.Pool, node: string, rows: ShipRows): Promise<number | 'conflict'> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client whose server goes away emits 'error' (unhandled, it would end the process); the statement
  // in flight fails with it too, which is where it is dealt with.
  const lost = (err: Error): void => {
    broken = err;
  };
  client.on('error', lost);
  try {
    await client.query('BEGIN');
    const copied = await copyEvents(client, copyEventsData(node, rows.events));
    if (rows.checkpoints.seq.length > 0 || rows.starts.session.length > 0 || rows.ends.session.length > 0)
      await client.query(insertBatchSql, insertBatchValues(node, { ...rows, events: noEvents }));
    await client.query('COMMIT');
    return copied;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      // The connection is gone or unusable (a COPY cut short, a server gone): it is not reused.
      broken = err as Error;
    }
    if (broken === undefined && (err as { code?: unknown }).code === uniqueViolation) return 'conflict';
    broken ??= err as Error;
    throw err;
  } finally {
    client.off('error', lost);
    client.release(broken);
  }
}

/** Everything is written at once (the batch is in memory already); the server's answer settles it. */
function copyEvents(client: pg.PoolClient, data: readonly Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const copy = client.query(copyFrom(copyEventsSql));
    copy.on('error', reject);
    copy.on('finish', () => resolve(copy.rowCount));
    for (const chunk of data) copy.write(chunk);
    copy.end();
  });
}
