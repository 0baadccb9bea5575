/**
 * The shipper: copies every commit of the local store (events, checkpoints) to the fleet database, in commit order,
 * off the hot path. It reads the commit feed after its acknowledged position, writes a batch in one transaction
 * (ship-batch.ts), and only then moves the position; when the database is unreachable it waits with a growing backoff and tries the
 * same commits again, while the gateway goes on serving and recording locally. The lag it reports is what is
 * committed locally and not yet acknowledged by the database.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@agentgate/core';
import type { CommitFeed, FeedBatch } from '@agentgate/transcript';
import type { FleetDatabase } from './fleet-database.js';
import { readShipPosition, writeShipPosition } from './ship-position.js';
import { copyBatch, mergeBatch } from './ship-batch.js';
import { differingEventsSql, shipRows, type ShipRows } from './ship-rows.js';

/** What the shipper reads: the store's commit feed (or anything that reads commits the same way). */
export type ShipSource = Pick<CommitFeed, 'storeId' | 'head' | 'read' | 'span' | 'waitForCommit'>;

export interface ShipperOptions {
  readonly db: FleetDatabase;
  readonly source: ShipSource;
  readonly node: string;
  /** the acknowledged position's file (positionFileFor) */
  readonly positionFile: string;
  /** this replica's public signing keys (current and earlier), recorded in the fleet for verifiers */
  readonly publicKeys: () => readonly Record<string, unknown>[];
  readonly log: Logger;
  /** events per batch at most (a commit is never split; default 5000) */
  readonly batchEvents?: number;
  /** batches in flight at once, each on its own connection (default 2) */
  readonly pipeline?: number;
  /** without a backlog, how long commits gather into one batch, ms (default 100) */
  readonly lingerMs?: number;
  /** first and longest wait after a failed attempt, ms (default 250 and 15000) */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

export interface ShipStatus {
  /** the last attempt reached the database */
  readonly connected: boolean;
  /** the acknowledged commit-feed position, and the local head */
  readonly position: number;
  readonly head: number;
  /** events committed locally and not yet acknowledged by the fleet database */
  readonly lagEvents: number;
  /** age of the oldest of them, seconds (0 when there is none) */
  readonly lagSeconds: number;
  /** events this process shipped (inserted) since it started */
  readonly shippedEvents: number;
  /** why the last attempt failed, while it is failing */
  readonly lastError?: string;
}

export class Shipper {
  private position = 0;
  private connected = false;
  private lastError: string | undefined;
  private shippedEvents = 0;
  private keysRecorded = false;
  private schemaChecked = false;
  /**
   * Batches are merged (`ON CONFLICT DO NOTHING`) while they may have been shipped before: from the start and after
   * a failed attempt, until one batch turns out to be wholly new; from then on they are copied.
   */
  private copying = false;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  /** events in (position, counted.upTo], kept incrementally so status() reads only new feed records */
  private counted = { upTo: 0, events: 0 };
  private readonly batchEvents: number;
  private readonly pipeline: number;
  private readonly lingerMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly options: ShipperOptions) {
    this.batchEvents = options.batchEvents ?? 5000;
    this.pipeline = options.pipeline ?? 2;
    this.lingerMs = options.lingerMs ?? 100;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 15_000;
  }

  /** Read the acknowledged position and start shipping in the background. */
  async start(): Promise<void> {
    const { source, positionFile, log } = this.options;
    const saved = await readShipPosition(positionFile);
    const storeId = source.storeId;
    if (saved !== undefined && saved.storeId === storeId)
      this.position = Math.min(saved.position, source.head());
    else if (saved !== undefined)
      log.warn('fleet: the store was replaced since the last shipment; shipping it from its first commit', {
        positionFile,
      });
    this.counted = { upTo: this.position, events: 0 };
    this.running = this.loop().catch((err: unknown) => {
      if (!this.abort.signal.aborted) log.error('fleet: the shipper stopped', { error: String(err) });
    });
  }

  status(): ShipStatus {
    const { source } = this.options;
    const head = source.head();
    let lagEvents = 0;
    let lagSeconds = 0;
    if (head > this.position) {
      if (this.counted.upTo < this.position) this.counted = { upTo: this.position, events: 0 };
      if (head > this.counted.upTo) {
        this.counted.events += source.span(this.counted.upTo, head).events;
        this.counted.upTo = head;
      }
      lagEvents = this.counted.events;
      const oldest = source.span(this.position, this.position + 1).firstTs;
      if (oldest !== undefined) lagSeconds = Math.max(0, (Date.now() - oldest) / 1000);
    }
    return {
      connected: this.connected,
      position: this.position,
      head,
      lagEvents,
      lagSeconds,
      shippedEvents: this.shippedEvents,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  /**
   * Stop: with `drainMs`, first go on shipping until the backlog is shipped or that time passed (a gateway
   * stopping ships what its last sessions recorded); then finish the batch in flight and return.
   */
  async stop(drainMs = 0): Promise<void> {
    if (drainMs > 0) {
      const deadline = Date.now() + drainMs;
      while (Date.now() < deadline && this.connected && this.position < this.options.source.head())
        await sleep(20);
    }
    this.abort.abort(new Error('the shipper stopped'));
    await this.running;
  }

  private async loop(): Promise<void> {
    const { source } = this.options;
    const signal = this.abort.signal;
    let failures = 0;
    while (!signal.aborted) {
      const inFlight: { batch: FeedBatch; insert: Promise<void> }[] = [];
      try {
        // Nothing is shipped into a schema this build does not know (the database may have been away at start).
        if (!this.schemaChecked) {
          await this.options.db.checkSchema();
          this.schemaChecked = true;
        }
        if (!this.keysRecorded) await this.recordKeys();
        if (!this.copying) await this.checkAcknowledged();
        let readPosition = this.position;
        // Whether the last batch read was full: a backlog is shipping, so batches follow each other at once.
        let backlog = true;
        while (!signal.aborted) {
          // Up to `pipeline` batches in flight on their own connections (one when there is no backlog);
          // acknowledged strictly in commit order.
          while (inFlight.length < this.pipeline && (inFlight.length === 0 || backlog)) {
            const batch = source.read(readPosition, { limit: this.batchEvents, ioData: true });
            if (batch.position === readPosition) break;
            backlog = batch.events.length >= this.batchEvents;
            const insert = this.insert(batch);
            // Handled here so a failure while an earlier batch is awaited is not an unhandled rejection.
            insert.catch(() => undefined);
            inFlight.push({ batch, insert });
            readPosition = batch.position;
          }
          const oldest = inFlight[0];
          if (oldest === undefined) {
            this.markConnected();
            await source.waitForCommit(this.position, signal);
            await this.linger(signal);
            continue;
          }
          await oldest.insert;
          inFlight.shift();
          await this.acknowledge(oldest.batch);
          failures = 0;
          if (inFlight.length === 0 && !backlog) await this.linger(signal);
        }
      } catch (err) {
        // Batches still in flight may or may not commit: the next attempt ships them again from the position.
        await Promise.allSettled(inFlight.map((f) => f.insert));
        this.copying = false;
        if (signal.aborted) return;
        failures++;
        this.markFailed(err);
        const wait = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(failures - 1, 10));
        await sleep(wait * (0.5 + Math.random() / 2), undefined, { signal }).catch(() => undefined);
      }
      await Promise.allSettled(inFlight.map((f) => f.insert));
    }
  }

  /**
   * Without a backlog, wait a moment before reading: what commits meanwhile ships as one batch. A transaction per
   * group commit would cost the gateway's event loop more than the events themselves.
   */
  private async linger(signal: AbortSignal): Promise<void> {
    if (this.lingerMs > 0) await sleep(this.lingerMs, undefined, { signal }).catch(() => undefined);
  }

  /**
   * Before shipping on after a start or a failure: the fleet database must still hold the last event the position
   * says it acknowledged. It does not when it was restored from a backup older than that, and the commits since
   * would never be shipped again: then the whole store is shipped again (merged, so rows already there stay).
   */
  private async checkAcknowledged(): Promise<void> {
    const last = this.lastAcknowledgedEvent();
    if (last === undefined) return;
    const held = await this.options.db.query(
      'SELECT 1 FROM agentgate.events WHERE session_id = $1 AND seq = $2',
      [last.session, last.seq],
    );
    if ((held.rowCount ?? 0) > 0) return;
    this.options.log.warn(
      'fleet: the fleet database lacks an event it acknowledged (restored from an older backup?); shipping the store again from its first commit',
      {
        database: this.options.db.description,
        session: last.session,
        seq: last.seq,
        position: this.position,
      },
    );
    this.position = 0;
    this.counted = { upTo: 0, events: 0 };
  }

  /** The newest event of the last few acknowledged commits (commits of checkpoints alone hold none). */
  private lastAcknowledgedEvent(): { session: string; seq: number } | undefined {
    for (let at = this.position; at > Math.max(0, this.position - 16); at--) {
      const events = this.options.source.read(at - 1, { limit: 1 }).events.filter((e) => e.position === at);
      const last = events.at(-1);
      if (last !== undefined) return { session: last.session, seq: last.seq };
    }
    return undefined;
  }

  /** Insert a batch's rows (nothing for rows already there). */
  private async insert(batch: FeedBatch): Promise<void> {
    if (batch.events.length === 0 && batch.checkpoints.length === 0) return;
    const { db, node } = this.options;
    const rows = shipRows(batch);
    if (this.copying) {
      const copied = await copyBatch(db.pool, node, rows);
      if (copied !== 'conflict') {
        this.shippedEvents += copied;
        return;
      }
      this.copying = false;
    }
    const inserted = (await mergeBatch(db.pool, node, rows)).events;
    this.shippedEvents += inserted;
    if (inserted < batch.events.length) await this.reportDiffering(rows.events);
    else this.copying = true;
  }

  /** The database committed the batch: move the acknowledged position past it. */
  private async acknowledge(batch: FeedBatch): Promise<void> {
    this.markConnected();
    const from = this.position;
    this.position = batch.position;
    if (this.counted.upTo >= batch.position)
      this.counted.events = Math.max(
        0,
        this.counted.events - this.options.source.span(from, batch.position).events,
      );
    await writeShipPosition(this.options.positionFile, {
      storeId: this.options.source.storeId,
      position: this.position,
      node: this.options.node,
    });
  }

  /** Some events were already in the fleet (shipped before a crash): they must be the same events. */
  private async reportDiffering(events: ShipRows['events']): Promise<void> {
    const differing = await this.options.db.query<{ session_id: string; seq: number }>(differingEventsSql, [
      events.session,
      events.seq,
      events.stored,
    ]);
    for (const row of differing.rows)
      this.options.log.error('fleet: the fleet database holds a different event under this key', {
        session: row.session_id,
        seq: row.seq,
      });
  }

  private async recordKeys(): Promise<void> {
    const keys = this.options.publicKeys().filter((k) => typeof k['kid'] === 'string' && !('d' in k));
    if (keys.length > 0)
      await this.options.db.query(
        `INSERT INTO agentgate.signing_keys (node, kid, jwk)
         SELECT $1, u.kid, u.jwk::jsonb FROM unnest($2::text[], $3::text[]) AS u(kid, jwk)
         ON CONFLICT (node, kid) DO NOTHING`,
        [this.options.node, keys.map((k) => String(k['kid'])), keys.map((k) => JSON.stringify(k))],
      );
    this.keysRecorded = true;
  }

  private markConnected(): void {
    if (!this.connected && this.lastError !== undefined)
      this.options.log.info('fleet: the fleet database is reachable again; shipping the backlog', {
        database: this.options.db.description,
      });
    this.connected = true;
    this.lastError = undefined;
  }

  private markFailed(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    // One line per outage (and per change of reason), not one per retry.
    if (this.connected || this.lastError !== message)
      this.options.log.warn('fleet: shipping to the fleet database failed; recording locally and retrying', {
        database: this.options.db.description,
        error: message,
      });
    this.connected = false;
    this.lastError = message;
  }
}
