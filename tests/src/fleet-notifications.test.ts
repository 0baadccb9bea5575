/**
 * The fleet's LISTEN connection against a real PostgreSQL: a NOTIFY from another connection reaches the subscriber,
 * a subscriber is told to resynchronise when LISTEN is in place and again after the server comes back from a stop
 * (notifications sent meanwhile are lost by design), and unsubscribing stops delivery.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { silentLogger } from '@agentgate/core';
import { FleetDatabase, type FleetNotifications } from '@agentgate/fleet';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';

let cluster: TestPostgres;
let db: FleetDatabase;
let notifications: FleetNotifications;

async function notify(channel: string, payload: string): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: cluster.port,
    user: 'postgres',
    password: PASSWORD,
    database: 'postgres',
  });
  await client.connect();
  try {
    await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
  } finally {
    await client.end();
  }
}

async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a notification');
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  cluster = await startPostgres();
  db = await FleetDatabase.open({
    url: `postgres://postgres:${PASSWORD}@127.0.0.1:${cluster.port}/postgres`,
  });
  notifications = db.notifications(silentLogger, { retryMinMs: 50, retryMaxMs: 200, heartbeatMs: 200 });
  notifications.start();
}, 60_000);

afterAll(async () => {
  await notifications?.close();
  await db?.close();
  await cluster?.stop();
});

describe('fleet notifications', () => {
  it('delivers NOTIFY payloads, resynchronises after a server restart, and stops after unsubscribe', async () => {
    const payloads: string[] = [];
    let resyncs = 0;
    const unsubscribe = notifications.subscribe('agentgate test channel', {
      onNotify: (payload) => payloads.push(payload),
      onResync: () => resyncs++,
    });
    await until(() => resyncs === 1);
    expect(notifications.connected).toBe(true);

    await notify('agentgate test channel', 'first');
    await until(() => payloads.length === 1);
    expect(payloads).toEqual(['first']);

    await cluster.kill();
    await until(() => !notifications.connected);
    await cluster.start();
    await until(() => resyncs === 2);
    await notify('agentgate test channel', 'after restart');
    await until(() => payloads.length === 2);
    expect(payloads).toEqual(['first', 'after restart']);

    unsubscribe();
    const other: string[] = [];
    notifications.subscribe('another', { onNotify: (p) => other.push(p), onResync: () => undefined });
    await notify('agentgate test channel', 'unheard');
    await notify('another', 'heard');
    await until(() => other.length === 1);
    expect(payloads).toEqual(['first', 'after restart']);
  }, 60_000);
});
