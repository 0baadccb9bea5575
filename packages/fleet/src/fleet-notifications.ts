/**
 * LISTEN/NOTIFY on one dedicated connection to the fleet database, shared by everything in the process that must
 * learn at once of another replica's change (a decided approval, a revoked SSH key). A notification is a hint,
 * never the record: notifications sent while this connection is down are lost, so every subscriber is told to
 * resynchronise (read its rows again) after each (re)connect, and should also poll slowly as a fallback.
 */
import pg from 'pg';
import type { Logger } from '@agentgate/core';

export interface NotificationSubscriber {
  /** a NOTIFY on the channel, with its payload ('' when none) */
  readonly onNotify: (payload: string) => void;
  /** LISTEN is in place (again): notifications may have been missed, read the current state */
  readonly onResync: () => void;
}

export interface FleetNotificationsOptions {
  /** first and longest wait before reconnecting, ms (default 250 and 10000) */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** how often the idle connection is checked with a round trip, ms (default 10000) */
  readonly heartbeatMs?: number;
  /**
   * This replica's `fleet.node`: claimed on this connection with a session advisory lock, so that a second process
   * running under the same name can tell that the name is in use (the lock ends with the connection or process).
   */
  readonly claimNode?: string;
}

/** The advisory-lock class of node claims (the key within it is the node name's hashtext). */
export const nodeClaimClass = 0x61676e64; // "agnd"

export class FleetNotifications {
  private client: pg.Client | undefined;
  private readonly channels = new Map<string, Set<NotificationSubscriber>>();
  private closed = false;
  private retryMs: number;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly heartbeatMs: number;
  /** the connection on which this process holds its node's claim, while it does */
  private claimedOn: pg.Client | undefined;

  constructor(
    private readonly clientConfig: pg.ClientConfig,
    private readonly log: Logger,
    private readonly options: FleetNotificationsOptions = {},
  ) {
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.heartbeatMs = options.heartbeatMs ?? 10_000;
    this.retryMs = this.retryMinMs;
  }

  /** The LISTEN connection is up: notifications arrive as they are sent. */
  get connected(): boolean {
    return this.client !== undefined;
  }

  /**
   * Whether this process holds its node's claim (taken at every connect, tried again here while another connection
   * holds it). False when the claim is held elsewhere: another process runs under this `fleet.node`, or an earlier
   * run's connection is not closed yet; undefined while this connection is down (nothing can be told then).
   */
  async claimNode(): Promise<boolean | undefined> {
    const client = this.client;
    return client === undefined ? undefined : this.claimOn(client);
  }

  /** Connect in the background (and keep reconnecting until close). */
  start(): void {
    void this.connect();
  }

  /**
   * Listen on a channel. The subscriber's onResync runs once LISTEN is in place (at once when connected) and after
   * every reconnect. Returns the unsubscribe function.
   */
  subscribe(channel: string, subscriber: NotificationSubscriber): () => void {
    let subscribers = this.channels.get(channel);
    const first = subscribers === undefined;
    if (subscribers === undefined) {
      subscribers = new Set();
      this.channels.set(channel, subscribers);
    }
    subscribers.add(subscriber);
    const client = this.client;
    if (client !== undefined) {
      if (first)
        client.query(`LISTEN ${client.escapeIdentifier(channel)}`).then(
          () => subscriber.onResync(),
          (err: Error) => this.lost(client, err),
        );
      else subscriber.onResync();
    }
    return () => {
      subscribers.delete(subscriber);
      if (subscribers.size > 0 || this.channels.get(channel) !== subscribers) return;
      this.channels.delete(channel);
      const current = this.client;
      current?.query(`UNLISTEN ${current.escapeIdentifier(channel)}`).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ ...this.clientConfig, keepAlive: true });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (message) => {
      for (const subscriber of this.channels.get(message.channel) ?? []) {
        try {
          subscriber.onNotify(message.payload ?? '');
        } catch (err) {
          this.log.error('fleet: a notification handler failed', {
            channel: message.channel,
            error: (err as Error).message,
          });
        }
      }
    });
    try {
      await client.connect();
      for (const channel of this.channels.keys())
        await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      // Held from the first moment, so a process started later under the same name finds it taken.
      await this.claimOn(client);
    } catch (err) {
      client.removeAllListeners('end');
      client.end().catch(() => undefined);
      this.scheduleReconnect(err as Error);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = this.retryMinMs;
    this.heartbeatTimer = setInterval(() => {
      client.query('SELECT 1').catch((err: Error) => this.lost(client, err));
    }, this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.log.debug('fleet: listening for notifications', { channels: [...this.channels.keys()] });
    for (const subscribers of this.channels.values())
      for (const subscriber of subscribers) subscriber.onResync();
  }

  private async claimOn(client: pg.Client): Promise<boolean> {
    const node = this.options.claimNode;
    if (node === undefined) return false;
    if (this.claimedOn === client) return true;
    const result = await client.query<{ held: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS held',
      [nodeClaimClass, node],
    );
    if (result.rows[0]?.held === true) this.claimedOn = client;
    return this.claimedOn === client;
  }

  /** The LISTEN connection failed: drop it and reconnect after a growing wait. */
  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.heartbeatTimer);
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.scheduleReconnect(err);
  }

  private scheduleReconnect(err: Error): void {
    if (this.closed) return;
    this.log.warn('fleet: the notification connection to the fleet database is down; reconnecting', {
      error: err.message,
      retryMs: this.retryMs,
    });
    this.reconnectTimer = setTimeout(() => void this.connect(), this.retryMs);
    this.reconnectTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, this.retryMaxMs);
  }
}
