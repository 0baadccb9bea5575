/**
 * Upstream failure: the server dies mid-query → the client gets a clean 08006 and the gateway keeps serving;
 * the server down at connect time → 08006 at startup; back up → new sessions work.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startPgGateway, startPostgres, type PgGateway, type TestPostgres } from './harness/postgres.js';

let server: TestPostgres;
let gw: PgGateway;

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await server?.stop();
});

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({
    host: gw.host,
    port: gw.port,
    user: 'devin',
    database: 'app',
    password: gw.token('devin'),
  });
  c.on('error', () => undefined); // the FATAL also surfaces as a client 'error' event
  await c.connect();
  return c;
}

describe('postgres listener: upstream loss', () => {
  it('reports 08006 when the upstream dies mid-query, refuses while down, and serves again after restart', async () => {
    const c = await connect();
    const running = c.query('SELECT pg_sleep(30)');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.kill();
    await expect(running).rejects.toMatchObject({ code: '08006' });
    await expect(connect()).rejects.toMatchObject({ code: '08006' });
    await server.start();
    const fresh = await connect();
    expect((await fresh.query('SELECT 7 AS n')).rows[0].n).toBe(7);
    await fresh.end();
    const ends = gw.events.filter((e) => e.type === 'session.end');
    expect(ends.some((e) => String(e.reason).includes('upstream database connection was lost'))).toBe(true);
  }, 60_000);
});
