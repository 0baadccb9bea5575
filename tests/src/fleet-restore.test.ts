/**
 * A fleet database restored from a backup older than what a replica's shipper acknowledged: real PostgreSQL for the
 * fleet and the guarded database, a real `agentgate serve` replica and node-postgres agents. The replica's position
 * says those commits are shipped, so without a check they would never be shipped again; `verify --fleet` with the
 * replica's store names the sessions the fleet lost, the shipper finds the last event it acknowledged missing and
 * ships its store again, and `verify --fleet` then sees every session.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli } from './harness/cli.js';
import { fleetQuery, shipped, startFleetDatabase, type TestFleetDatabase } from './harness/fleet.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';

const TOKEN = 'fleet-restore-token-9e31';
let upstream: TestPostgres;
let fleetDb: TestFleetDatabase;
let dir: string;
let configFile: string;
let gateway: ServedGateway | undefined;

const asOwner = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  fleetQuery<R>(fleetDb.url('postgres'), text, values);

async function session(tag: string): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway!.port('db'),
    user: 'devin',
    database: 'app',
    password: TOKEN,
  });
  await client.connect();
  await client.query(`SELECT '${tag}' AS tag`);
  await client.end();
}

const fleetEvents = async (): Promise<number> =>
  (await asOwner<{ n: number }>('SELECT count(*)::int AS n FROM agentgate.events')).rows[0]!.n;

beforeAll(async () => {
  [upstream, fleetDb] = await Promise.all([startPostgres(), startFleetDatabase()]);
  dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-restore-'));
  configFile = join(dir, 'agentgate.yaml');
  writeFileSync(
    configFile,
    baseConfigYaml(dir, { token: TOKEN }) +
      'listeners:\n' +
      listenerYaml.postgres('db', upstream) +
      fleetDb.configYaml('A', dir),
  );
  await fleetDb.migrate(configFile);
}, 120_000);

afterAll(async () => {
  gateway?.process.kill('SIGKILL');
  await Promise.all([upstream?.stop(), fleetDb?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a fleet database restored from an older backup', () => {
  it('gets the commits it lost shipped again when the replica starts', async () => {
    gateway = await serveProcess(configFile);
    for (const tag of ['one', 'two', 'three']) await session(tag);
    await shipped(gateway);
    const before = await fleetEvents();
    await gateway.stop();

    // What a restore from a backup taken after the first session looks like: the later rows are gone.
    const later = (
      await asOwner<{ session_id: string }>(
        'SELECT session_id FROM agentgate.sessions ORDER BY started_at OFFSET 1',
      )
    ).rows.map((r) => r.session_id);
    expect(later).toHaveLength(2);
    for (const table of ['events', 'checkpoints', 'session_ends', 'sessions'])
      await asOwner(`DELETE FROM agentgate.${table} WHERE session_id = ANY($1::text[])`, [later]);
    expect(await fleetEvents()).toBeLessThan(before);
    // Only the replica's store can tell: the chains left in the fleet are whole.
    const noticed = await runCli(['verify', '--fleet', '--config', configFile, '--json']);
    expect(noticed.code).toBe(1);
    const problems = (JSON.parse(noticed.stdout) as { problems: { session: string; kind: string }[] })
      .problems;
    expect(problems.map((p) => [p.session, p.kind]).sort()).toEqual(
      later.map((id) => [id, 'missing']).sort(),
    );

    gateway = await serveProcess(configFile);
    await shipped(gateway);
    expect(await fleetEvents()).toBe(before);
    expect(gateway.logged('the fleet database lacks an event it acknowledged')).toBe(true);
    const verify = await runCli(['verify', '--fleet', '--config', configFile, '--json']);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, sessions: 3, onlyLocal: [] });
    await gateway.stop();
  }, 120_000);
});
