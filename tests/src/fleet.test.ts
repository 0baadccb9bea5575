/**
 * Two real `agentgate serve` replicas sharing one fleet database (its own database `fleet` on a PostgreSQL cluster
 * of its own, so it can be stopped while the guarded database keeps serving): the schema is migrated and checked,
 * every committed event and checkpoint is shipped, any replica lists every replica's sessions, the fleet readers and
 * `verify --fleet` read events in pages, `verify --fleet` checks what was shipped (and names a session whose row
 * was altered), an outage of the fleet database under pgbench and scp through both replicas, several times the
 * shipper's capped backoff (`shipRetryMax`, short here so the outage need not be long), loses nothing, a
 * kill -9 and restart ships nothing twice and closes the interrupted sessions in the fleet view, and the gateway's
 * role cannot alter shipped rows.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  addFleetKeys,
  FleetDatabase,
  FleetReader,
  fleetKeys,
  knownSchemaVersion,
  migrations,
  verifyFleet,
} from '@agentgate/fleet';
import { exportJsonl, VerificationKeys } from '@agentgate/transcript';
import { runCli } from './harness/cli.js';
import {
  fleetDetail,
  GATEWAY_ROLE_PASSWORD,
  shipped,
  startFleetDatabase,
  type FleetDetail,
  type TestFleetDatabase,
} from './harness/fleet.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

const TOKEN = 'fleet-test-token-51c0';
let upstream: TestPostgres;
let fleetDb: TestFleetDatabase;
let fleetCluster: TestPostgres;
let sshd: TestSshd;
let agentKey: { path: string; publicKey: string };
let dir: string;
const config: Record<'A' | 'B', string> = { A: '', B: '' };
const gateways = new Set<ServedGateway>();

function fleetUrl(user: string, password?: string): string {
  return fleetDb.url(user, password);
}

function replicaConfig(node: 'A' | 'B'): string {
  const home = join(dir, node);
  const fleetSection = fleetDb.configYaml(node, home);
  const file = join(home, 'agentgate.yaml');
  writeFileSync(
    file,
    baseConfigYaml(home, { token: TOKEN, sshPublicKey: agentKey.publicKey }) +
      'listeners:\n' +
      listenerYaml.postgres('db', upstream) +
      listenerYaml.ssh('shell', sshd, home) +
      'rules:\n  - { name: no-drops, listeners: [db], match: { commands: [DROP] }, action: deny }\n' +
      fleetSection +
      // The outage case outlasts the capped backoff many times over without waiting out the default 15 s cap.
      '  shipRetryMax: 1s\n',
  );
  return file;
}

async function serve(node: 'A' | 'B'): Promise<ServedGateway> {
  const gateway = await serveProcess(config[node]);
  gateways.add(gateway);
  return gateway;
}

async function stop(gateway: ServedGateway): Promise<void> {
  await gateway.stop();
  gateways.delete(gateway);
}

function agentClient(gateway: ServedGateway): pg.Client {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port('db'),
    user: 'devin',
    database: 'app',
    password: TOKEN,
  });
  client.on('error', () => undefined);
  return client;
}

/** A session with a few statements, one of them denied; resolves with the statements' count. */
async function shortSession(gateway: ServedGateway, tag: string): Promise<void> {
  const client = agentClient(gateway);
  await client.connect();
  await client.query(`SELECT '${tag}' AS tag`);
  await client.query('SELECT n FROM generate_series(1, 20) AS n');
  await expect(client.query('DROP TABLE IF EXISTS nothing_here')).rejects.toThrow();
  await client.end();
}

async function fleetQuery<R extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<R>(text, values);
  } finally {
    await client.end();
  }
}

const asOwner = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  fleetQuery<R>(fleetUrl('postgres'), text, values);

async function localEventCount(node: 'A' | 'B'): Promise<number> {
  const local = await runCli(['verify', '--config', config[node], '--json']);
  expect(local.code).toBe(0);
  return (JSON.parse(local.stdout) as { events: number }).events;
}

async function fleetEventCount(node: 'A' | 'B'): Promise<number> {
  const result = await asOwner<{ n: number }>(
    'SELECT count(*)::int AS n FROM agentgate.events WHERE node = $1',
    [node],
  );
  return result.rows[0]!.n;
}

/** Statements back to back on `sessions` connections until `stop` is called; every client error is collected. */
function load(gateway: ServedGateway, sessions: number): { stop: () => Promise<number>; errors: Error[] } {
  const errors: Error[] = [];
  let stopping = false;
  let statements = 0;
  const workers = Array.from({ length: sessions }, async () => {
    const client = agentClient(gateway);
    await client.connect();
    while (!stopping) {
      await client.query("SELECT repeat('x', 100) AS filler FROM generate_series(1, 10)");
      statements++;
    }
    await client.end();
  });
  const all = Promise.all(workers.map((w) => w.catch((err: Error) => void errors.push(err))));
  return {
    errors,
    stop: async () => {
      stopping = true;
      await all;
      return statements;
    },
  };
}

/** pgbench through a replica for `seconds` (TPC-B-like, so every transaction writes). */
function pgbench(
  gateway: ServedGateway,
  seconds: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'pgbench',
      ['-n', '-c', '4', '-T', String(seconds), '-h', '127.0.0.1', '-p', String(gateway.port('db'))].concat([
        '-U',
        'devin',
        'app',
      ]),
      { env: { ...process.env, PGPASSWORD: TOKEN } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * scp uploads through a replica's SSH listener, one after another until `stop` is called, each checked byte for
 * byte upstream; every failure is collected.
 */
function transfers(gateway: ServedGateway, name: string): { stop: () => Promise<number>; errors: string[] } {
  const errors: string[] = [];
  let stopping = false;
  let done = 0;
  const source = join(dir, `${name}.bin`);
  const content = randomBytes(4 << 20);
  writeFileSync(source, content);
  const digest = createHash('sha256').update(content).digest('hex');
  const options = sshClientOptions(gateway.port('shell'), agentKey.path);
  options.splice(options.indexOf('-p'), 2, '-P', String(gateway.port('shell')));
  const loop = (async () => {
    while (!stopping) {
      const target = join(sshd.dir, 'remote', `${name}-${done}.bin`);
      const result = await run('scp', [...options, source, `devin@127.0.0.1:${target}`], {
        timeoutMs: 60_000,
      });
      if (result.code !== 0) errors.push(`scp exited ${result.code}: ${result.stderr}`);
      else if (createHash('sha256').update(readFileSync(target)).digest('hex') !== digest)
        errors.push(`${target} differs from what was sent`);
      rmSync(target, { force: true });
      done++;
    }
  })();
  return {
    errors,
    stop: async () => {
      stopping = true;
      await loop;
      return done;
    },
  };
}

beforeAll(async () => {
  [upstream, fleetDb, sshd] = await Promise.all([startPostgres(), startFleetDatabase(), startSshd()]);
  fleetCluster = fleetDb.cluster;
  dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-'));
  agentKey = makeKeyPair(dir, 'agent');
  mkdirSync(join(sshd.dir, 'remote'));
  // pgbench's tables, made upstream directly (DDL through the gateway is not what this suite is about).
  const init = await run(
    'pgbench',
    ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(upstream.port), '-U', 'app', 'app'],
    { env: { ...process.env, PGPASSWORD: PASSWORD }, timeoutMs: 120_000 },
  );
  expect(init.code).toBe(0);
  config.A = replicaConfig('A');
  config.B = replicaConfig('B');
}, 120_000);

afterAll(async () => {
  for (const gateway of gateways) gateway.process.kill('SIGKILL');
  await Promise.all([upstream?.stop(), fleetCluster?.stop(), sshd?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('fleet schema', () => {
  it('a gateway refuses a fleet database without the schema, and one whose schema is newer than it knows', async () => {
    const bare = await runCli(['serve', '--config', config.A]);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toContain('has no agentgate schema: run `agentgate fleet migrate --config FILE`');

    const migrated = await runCli([
      'fleet',
      'migrate',
      '--config',
      config.A,
      '--database-url',
      fleetUrl('postgres'),
      '--grant-writer',
      'gw',
      '--grant-reader',
      'auditor',
      '--json',
    ]);
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({
      from: 0,
      to: knownSchemaVersion,
      applied: migrations.map((m) => ({ version: m.version })),
    });
    const again = await runCli([
      'fleet',
      'migrate',
      '--config',
      config.A,
      '--database-url',
      fleetUrl('postgres'),
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`schema is up to date (version ${knownSchemaVersion})`);

    await asOwner("INSERT INTO agentgate.schema_migrations (version, name) VALUES (99, 'from the future')");
    const newer = await runCli(['serve', '--config', config.A]);
    expect(newer.code).not.toBe(0);
    expect(newer.stderr).toContain(
      `has schema version 99, newer than this agentgate knows (${knownSchemaVersion})`,
    );
    const migrateNewer = await runCli([
      'fleet',
      'migrate',
      '--config',
      config.A,
      '--database-url',
      fleetUrl('postgres'),
    ]);
    expect(migrateNewer.code).toBe(1);
    expect(migrateNewer.stderr).toContain('newer than this agentgate knows');
    await asOwner('DELETE FROM agentgate.schema_migrations WHERE version = 99');
  }, 120_000);

  it('the gateway role may insert and read shipped rows but never change or remove them', async () => {
    const gw = fleetUrl('gw', GATEWAY_ROLE_PASSWORD);
    await fleetQuery(
      gw,
      `INSERT INTO agentgate.checkpoints (session_id, seq, node, record) VALUES ('probe-session', 0, 'probe', '{}')`,
    );
    for (const statement of [
      "UPDATE agentgate.checkpoints SET record = '{\"x\":1}' WHERE session_id = 'probe-session'",
      "DELETE FROM agentgate.checkpoints WHERE session_id = 'probe-session'",
      "UPDATE agentgate.events SET stored = 'x'",
      'DELETE FROM agentgate.events',
      'TRUNCATE agentgate.events',
      'DROP TABLE agentgate.events',
    ])
      await expect(fleetQuery(gw, statement)).rejects.toThrow(/permission denied|must be owner/);
    // The auditor's role reads only.
    const auditor = fleetUrl('auditor', PASSWORD);
    expect((await fleetQuery(auditor, 'SELECT count(*) FROM agentgate.checkpoints')).rowCount).toBe(1);
    await expect(
      fleetQuery(auditor, "INSERT INTO agentgate.signing_keys (node, kid, jwk) VALUES ('x', 'y', '{}')"),
    ).rejects.toThrow(/permission denied/);
    await asOwner("DELETE FROM agentgate.checkpoints WHERE session_id = 'probe-session'");
  }, 60_000);
});

describe('two replicas, one fleet database', () => {
  let a: ServedGateway;
  let b: ServedGateway;

  beforeAll(async () => {
    [a, b] = await Promise.all([serve('A'), serve('B')]);
  }, 120_000);

  it("lists every replica's sessions through either replica; verify --fleet passes", async () => {
    await shortSession(a, 'on-a');
    await shortSession(b, 'on-b');
    await Promise.all([shipped(a), shipped(b)]);

    for (const node of ['A', 'B'] as const) {
      const list = await runCli([
        'sessions',
        'list',
        '--config',
        config[node],
        '--protocol',
        'postgres',
        '--json',
      ]);
      expect(list.stderr).toBe('');
      const sessions = JSON.parse(list.stdout) as {
        id: string;
        node: string;
        commands: number;
        denied: number;
      }[];
      expect(new Set(sessions.map((s) => s.node))).toEqual(new Set(['A', 'B']));
      for (const s of sessions) expect(s).toMatchObject({ commands: 3, denied: 1 });
      const denied = await runCli(['sessions', 'list', '--config', config[node], '--denied', '--json']);
      expect((JSON.parse(denied.stdout) as unknown[]).length).toBe(sessions.length);
    }

    // A session recorded on B, read through A's configuration, exports byte for byte as B's own store has it.
    const onB = (
      JSON.parse((await runCli(['sessions', 'list', '--config', config.B, '--local', '--json'])).stdout) as {
        id: string;
        protocol: string;
      }[]
    ).find((s) => s.protocol === 'postgres')!;
    const fromFleet = await runCli(['export', onB.id, '--config', config.A, '--format', 'jsonl']);
    const fromStore = await runCli(['export', onB.id, '--config', config.B, '--local', '--format', 'jsonl']);
    expect(fromFleet.code).toBe(0);
    expect(fromFleet.stdout).toBe(fromStore.stdout);
    const show = await runCli(['sessions', 'show', onB.id, '--config', config.A]);
    expect(show.stdout).toContain("SELECT 'on-b' AS tag");
    const replay = await runCli(['replay', onB.id, '--config', config.A, '--speed', '0']);
    expect(replay.code).toBe(0);

    const verify = await runCli(['verify', '--fleet', '--config', config.A, '--json']);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
    const report = JSON.parse(verify.stdout) as {
      ok: boolean;
      nodes: string[];
      onlyLocal: unknown[];
      sessions: number;
    };
    expect(report).toMatchObject({ ok: true, onlyLocal: [] });
    expect(report.nodes.sort()).toEqual(['A', 'B']);

    const metrics = await (await fetch(`${a.admin}/metrics`)).text();
    expect(metrics).toMatch(/^agentgate_fleet_ship_lag_events 0$/m);
    expect(metrics).toMatch(/^agentgate_fleet_ship_lag_seconds 0$/m);
  }, 120_000);

  it('names the session whose shipped row had a byte flipped', async () => {
    const victim = (
      await asOwner<{ session_id: string; stored: string }>(
        "SELECT session_id, stored FROM agentgate.events WHERE node = 'B' AND type = 'command' AND stored LIKE '%SELECT%' LIMIT 1",
      )
    ).rows[0]!;
    const flipped = victim.stored.replace('SELECT', 'SELECt');
    expect(flipped).not.toBe(victim.stored);
    await asOwner(
      "UPDATE agentgate.events SET stored = $2 WHERE session_id = $1 AND type = 'command' AND stored = $3",
      [victim.session_id, flipped, victim.stored],
    );
    try {
      const verify = await runCli(['verify', '--fleet', '--config', config.B]);
      expect(verify.code).toBe(1);
      expect(verify.stdout).toMatch(/^BROKEN/);
      expect(verify.stdout).toContain(`${victim.session_id}#`);
      expect(verify.stdout).toContain('hash-mismatch');
    } finally {
      await asOwner('UPDATE agentgate.events SET stored = $2 WHERE session_id = $1 AND stored = $3', [
        victim.session_id,
        victim.stored,
        flipped,
      ]);
    }
    expect((await runCli(['verify', '--fleet', '--config', config.B])).code).toBe(0);
  }, 60_000);

  it('names the session whose rows say another identity or hide a denial, though its chain is intact', async () => {
    // The chain covers only `stored`; lists, filters and counts read the columns the shipper read off the events.
    const victim = (
      await asOwner<{ session_id: string }>(
        "SELECT session_id FROM agentgate.events WHERE node = 'A' AND denied LIMIT 1",
      )
    ).rows[0]!.session_id;
    await asOwner("UPDATE agentgate.sessions SET identity = 'someone-else' WHERE session_id = $1", [victim]);
    const hidden = await asOwner<{ seq: number }>(
      'UPDATE agentgate.events SET denied = false WHERE session_id = $1 AND denied RETURNING seq',
      [victim],
    );
    try {
      const verify = await runCli(['verify', '--fleet', '--config', config.B]);
      expect(verify.code).toBe(1);
      expect(verify.stdout).toMatch(
        new RegExp(`${victim}#0\\b.*column-mismatch.*sessions row \\(identity\\)`),
      );
      expect(verify.stdout).toMatch(
        new RegExp(`${victim}#\\d+\\b.*column-mismatch.*events row \\(denied\\)`),
      );
    } finally {
      await asOwner("UPDATE agentgate.sessions SET identity = 'devin' WHERE session_id = $1", [victim]);
      await asOwner(
        'UPDATE agentgate.events SET denied = true WHERE session_id = $1 AND seq = ANY($2::int[])',
        [victim, hidden.rows.map((r) => r.seq)],
      );
    }
    expect((await runCli(['verify', '--fleet', '--config', config.B])).code).toBe(0);
  }, 60_000);

  it('reads a session and verifies the fleet in pages, across page boundaries', async () => {
    const db = await FleetDatabase.open({ url: fleetUrl('postgres') });
    try {
      const reader = new FleetReader(db);
      const [session] = (await reader.listSessions({ protocol: 'postgres', limit: 1 })).map((s) => s.id);
      const whole = await reader.events(session!);
      expect(whole.length).toBeGreaterThan(7);
      // Pages of 3 end inside the session, and the last one may be short or exactly full.
      for (const size of [3, whole.length, whole.length - 1]) {
        const pages: number[] = [];
        const paged = [];
        for await (const page of reader.eventPages(session!, size)) {
          pages.push(page.length);
          paged.push(...page);
        }
        expect(pages.every((n) => n <= size)).toBe(true);
        expect(pages.length).toBe(Math.ceil(whole.length / size));
        expect(paged.map((e) => e.seq)).toEqual(whole.map((_, i) => i));
        expect([...exportJsonl(paged)]).toEqual([...exportJsonl(whole)]);
      }

      // verify --fleet's rounds and pages: tiny ones check the same sessions, events and checkpoints as the defaults.
      const keys = new VerificationKeys(() => 'which no replica recorded');
      addFleetKeys(keys, await fleetKeys(db));
      const verifySignature = (jws: string) => keys.verifyCompact(jws);
      const byDefault = await verifyFleet(db, verifySignature);
      const small = await verifyFleet(db, verifySignature, { eventsPerRound: 5, pageSize: 4 });
      expect(byDefault).toMatchObject({ ok: true, problems: [] });
      expect(small).toEqual(byDefault);
      expect(byDefault.events).toBeGreaterThan(4 * 3);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('keeps serving and recording through a 10 s outage of the fleet database under pgbench and scp on both replicas, then ships the backlog', async () => {
    const outageMs = 10_000;
    // pgbench outlasts the outage, the catch-up and the second outage below.
    const benchSeconds = outageMs / 1000 + 20;
    const benchA = pgbench(a, benchSeconds);
    const benchB = pgbench(b, benchSeconds);
    const copyA = transfers(a, 'on-a');
    const copyB = transfers(b, 'on-b');
    let results: Awaited<ReturnType<typeof pgbench>>[];
    let copies: number[];
    try {
      await new Promise((r) => setTimeout(r, 2000));
      await fleetCluster.kill();
      // Down under load: both replicas stay ready and record locally; the lag grows.
      const deadline = Date.now() + outageMs;
      let seen: FleetDetail | undefined;
      while (Date.now() < deadline) {
        const { status, fleet } = await fleetDetail(a);
        expect(status).toBe(200);
        expect((await fleetDetail(b)).status).toBe(200);
        seen = fleet;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(seen).toMatchObject({ connected: false });
      expect(seen!.lagEvents).toBeGreaterThan(0);
      expect(seen!.lagSeconds).toBeGreaterThan((outageMs / 1000) * (2 / 3));
      expect(a.logged('fleet: shipping to the fleet database failed')).toBe(true);
      await fleetCluster.start();
      // Down again as soon as A ships again (the backlog, and pgbench still running), so a batch is likely cut
      // off mid-COPY: the replicas go on, and ship it again.
      const catchingUp = Date.now() + 60_000;
      for (;;) {
        const { fleet } = await fleetDetail(a);
        if (fleet.connected) break;
        expect(Date.now()).toBeLessThan(catchingUp);
        await new Promise((r) => setTimeout(r, 50));
      }
      await fleetCluster.kill();
      await new Promise((r) => setTimeout(r, 2000));
      for (const replica of [a, b]) expect(replica.process.exitCode ?? replica.process.signalCode).toBeNull();
      await fleetCluster.start();
      results = await Promise.all([benchA, benchB]);
    } finally {
      // The transfers stop whatever happened (they would go on failing after a replica died).
      copies = await Promise.all([copyA.stop(), copyB.stop()]);
    }
    const [copiesA, copiesB] = copies as [number, number];
    for (const result of results) {
      expect(result.stderr).not.toMatch(/error|abort/i);
      expect(result.code).toBe(0);
      expect(
        Number(/number of transactions actually processed: (\d+)/.exec(result.stdout)?.[1]),
      ).toBeGreaterThan(0);
    }
    expect(copyA.errors).toEqual([]);
    expect(copyB.errors).toEqual([]);
    expect(copiesA).toBeGreaterThan(0);
    expect(copiesB).toBeGreaterThan(0);

    await Promise.all([shipped(a, 180_000), shipped(b, 180_000)]);
    expect(await fleetEventCount('A')).toBe(await localEventCount('A'));
    expect(await fleetEventCount('B')).toBe(await localEventCount('B'));
    // The query columns of copied rows say what the stored event says (time to the millisecond, type, denial).
    const mismatched = await asOwner<{ n: number; denied: number }>(
      `SELECT count(*) FILTER (WHERE
                abs(extract(epoch FROM ts) * 1000 - (regexp_match(stored, '"ts":([0-9.]+)'))[1]::float8) > 0.001
             OR type <> (regexp_match(stored, '"type":"([^"]+)"'))[1]
             OR denied <> ((type = 'command' AND stored LIKE '%"decision":{"action":"deny"%')
                           OR (type = 'decision' AND stored LIKE '%"action":"deny"%')))::int AS n,
              count(*) FILTER (WHERE denied)::int AS denied
         FROM agentgate.events`,
    );
    expect(mismatched.rows[0]).toMatchObject({ n: 0 });
    expect(mismatched.rows[0]!.denied).toBeGreaterThan(0);
    // Every session either replica recorded is in the fleet, and verify covers each of them.
    const local = new Set<string>();
    for (const node of ['A', 'B'] as const)
      for (const s of JSON.parse(
        (await runCli(['sessions', 'list', '--config', config[node], '--local', '--json'])).stdout,
      ) as { id: string; protocol: string }[])
        local.add(s.id);
    const inFleet = await asOwner<{ session_id: string }>('SELECT session_id FROM agentgate.sessions');
    expect(new Set(inFleet.rows.map((r) => r.session_id))).toEqual(local);
    const ssh = await asOwner<{ n: number }>(
      "SELECT count(*)::int AS n FROM agentgate.sessions WHERE protocol = 'ssh'",
    );
    expect(ssh.rows[0]!.n).toBeGreaterThanOrEqual(copiesA + copiesB);
    const verify = await runCli(['verify', '--fleet', '--config', config.A, '--json']);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, sessions: local.size, onlyLocal: [] });
  }, 300_000);

  it('kill -9 under load, then restart: the store recovers and the shipper resumes without shipping anything twice', async () => {
    const loadA = load(a, 4);
    await new Promise((r) => setTimeout(r, 2000));
    a.process.kill('SIGKILL');
    gateways.delete(a);
    await loadA.stop();
    // A statement the database was running when its client died finishes (or rolls back) on its own.
    await new Promise((r) => setTimeout(r, 1000));
    const before = await fleetEventCount('A');
    // As if the crash hit between the database's acknowledgement and the position file's update, many times over:
    // the restarted shipper reads the whole store again.
    const positionFile = join(dir, 'A', 'transcripts', 'fleet-position.json');
    const saved = JSON.parse(readFileSync(positionFile, 'utf8')) as { position: number };
    expect(saved.position).toBeGreaterThan(0);
    writeFileSync(positionFile, JSON.stringify({ ...saved, position: 0 }) + '\n');

    a = await serve('A');
    const detail = await shipped(a, 120_000);
    const local = await localEventCount('A');
    expect(await fleetEventCount('A')).toBe(local);
    // Only what the fleet lacked was inserted: everything re-read up to the crash conflicted and was left alone.
    expect(detail.shippedEvents).toBe(local - before);
    const verify = await runCli(['verify', '--fleet', '--config', config.A]);
    expect(verify.stdout).toMatch(/^OK: /);
    expect(verify.stdout).toContain('only local: none');
    // The sessions the crash interrupted were ended by the restarted store's recovery, and those ends shipped: the
    // fleet view closes them as the local one does, with the same time and reason.
    const listed = async (...extra: string[]) =>
      JSON.parse((await runCli(['sessions', 'list', '--config', config.A, ...extra, '--json'])).stdout) as {
        id: string;
        endedAt: number | null;
        endReason?: string;
      }[];
    const interrupted = (await listed('--local')).filter((s) => s.endReason === 'gateway restarted');
    expect(interrupted.length).toBeGreaterThanOrEqual(4);
    const fleetView = new Map((await listed()).map((s) => [s.id, s]));
    for (const s of interrupted)
      expect(fleetView.get(s.id)).toMatchObject({ endedAt: s.endedAt, endReason: 'gateway restarted' });
    const open = await asOwner<{ n: number }>(
      `SELECT count(*)::int AS n FROM agentgate.sessions s
        WHERE s.node = 'A' AND NOT EXISTS (SELECT 1 FROM agentgate.session_ends x WHERE x.session_id = s.session_id)`,
    );
    expect(open.rows[0]!.n).toBe(0);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...gateways].map((g) => stop(g)));
  });
});
