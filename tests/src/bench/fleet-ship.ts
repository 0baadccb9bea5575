/**
 * Benchmark: the fleet shipper, LMDB commit feed -> PostgreSQL (throwaway clusters of the test harness), in one run:
 * - ceiling: what the fleet database inserts at all, server-side, rows of the same size and key (start and end);
 * - paths: the same recorded events inserted batch by batch through each insert path (multi-row `unnest` with
 *   ON CONFLICT, COPY text, COPY binary, COPY binary into a staging table then ON CONFLICT), one batch in flight;
 * - catch-up: a recorded backlog shipped from scratch by a `Shipper` (as after an outage);
 * - live in process: sessions append flat out in the shipper's process, its lag sampled every 100 ms;
 * - served: a real `agentgate serve` with a fleet section, pgbench through it; live shipping (append and shipped
 *   rates, lag p50/max from /readyz), then the fleet cluster stopped for `outageSeconds` under that load, and the
 *   catch-up once it is back (events/s while pgbench goes on).
 * Every figure carries the machine's load average when it was taken (other work shares these 2 cores).
 * Run: npx tsc -b tests && node tests/dist/bench/fleet-ship.js [backlogEvents] [liveSeconds] [outageSeconds]
 * (BENCH_BATCH and BENCH_PIPELINE set the in-process shipper's events per batch and batches in flight;
 * BENCH_SERVED=0 skips the served gateway.)
 * Goal (docs/performance.md, "Fleet shipping"): >= 50,000 events/s into PostgreSQL, lag under 1 s while live.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { newId, silentLogger, type SessionRecorder } from '@agentgate/core';
import {
  copyEventsData,
  copyEventsSql,
  FleetDatabase,
  insertBatchSql,
  insertBatchValues,
  positionFileFor,
  Shipper,
  shipRows,
  type ShipRows,
  type ShipStatus,
} from '@agentgate/fleet';
import { loadOrCreateSigningKey, openTranscriptStore, type TranscriptStore } from '@agentgate/transcript';
import { PASSWORD, startPostgres, type TestPostgres } from '../harness/postgres.js';
import { baseConfigYaml, listenerYaml, serveProcess } from '../harness/serve.js';

const backlogEvents = Number(process.argv[2] ?? 300_000);
const liveSeconds = Number(process.argv[3] ?? 20);
const outageSeconds = Number(process.argv[4] ?? 60);
const sessionCount = 50;
const eventsPerTurn = 500;
const pathEvents = 100_000;
const pathRounds = 3;
const TOKEN = 'fleet-bench-token';

const load = (): number => Number(loadavg()[0]!.toFixed(2));
const round3 = (n: number): number => Number(n.toFixed(3));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

function openRecorders(store: TranscriptStore): SessionRecorder[] {
  return Array.from({ length: sessionCount }, (_, i) =>
    store.openSession({
      id: newId(),
      listener: 'bench',
      protocol: 'postgres',
      identity: { name: `agent-${i}`, groups: ['agents'], source: 'token' },
      client: { address: '127.0.0.1', port: 40000 + i, local: true, tls: false },
      startedAt: Date.now(),
    }),
  );
}

/** A command and its result, alternately, round-robin over the sessions: `count` events in turns of 500. */
async function append(recorders: SessionRecorder[], count: number, until = Infinity): Promise<number> {
  let appended = 0;
  while (appended < count && performance.now() < until) {
    for (let j = 0; j < eventsPerTurn && appended < count; j++, appended++) {
      const recorder = recorders[appended % recorders.length]!;
      if (appended % 2 === 0)
        recorder.append('command', {
          protocol: 'postgres',
          text: `SELECT * FROM t WHERE id = ${appended}`,
          statements: [],
          detail: { n: appended },
        });
      else recorder.append('result', { event: 'sql', tag: 'SELECT 1', rows: 1, commandSeq: appended - 1 });
    }
    await nextTurn();
  }
  return appended;
}

async function caughtUp(shipper: Shipper): Promise<ShipStatus> {
  for (;;) {
    const status = shipper.status();
    if (status.position === status.head && status.connected) return status;
    await sleep(5);
  }
}

/** Rows of the same size and key generated server-side (no client, no parsing): the ceiling of any shipper. */
async function ceiling(db: FleetDatabase): Promise<{ rowsPerSecond: number; load: number }> {
  await db.query('DROP TABLE IF EXISTS baseline');
  await db.query(
    `CREATE TABLE baseline (session_id text, seq int, stored text, PRIMARY KEY (session_id, seq))`,
  );
  const started = performance.now();
  await db.query(
    `INSERT INTO baseline SELECT 's' || (i % 50), i / 50, repeat('x', 330) FROM generate_series(1, 200000) AS i`,
  );
  const seconds = (performance.now() - started) / 1000;
  await db.query('DROP TABLE baseline');
  return { rowsPerSecond: Math.round(200_000 / seconds), load: load() };
}

// ---- the insert paths compared ---------------------------------------------------------------------------------

/** The text COPY format of the same rows: tab-separated, backslash escapes, bytea as \x hex. */
function copyText(node: string, e: ShipRows['events']): Buffer[] {
  const escape = (s: string): string =>
    s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
  const lines: string[] = [];
  for (let i = 0; i < e.seq.length; i++) {
    const data = e.ioData[i];
    lines.push(
      [
        escape(e.session[i]!),
        String(e.seq[i]),
        escape(node),
        new Date(e.ts[i]!).toISOString(),
        escape(e.type[i]!),
        e.denied[i] ? 't' : 'f',
        escape(e.stored[i]!),
        data === null || data === undefined ? '\\N' : '\\\\x' + data.toString('hex'),
      ].join('\t') + '\n',
    );
  }
  return [Buffer.from(lines.join(''))];
}

function copy(client: pg.PoolClient, sql: string, data: readonly Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(sql));
    stream.on('error', reject);
    stream.on('finish', () => resolve());
    for (const chunk of data) stream.write(chunk);
    stream.end();
  });
}

type InsertPath = (client: pg.PoolClient, rows: ShipRows) => Promise<void>;

const columns = '(session_id, seq, node, ts, type, denied, stored, io_data)';
const insertPaths: Record<string, InsertPath> = {
  'unnest, ON CONFLICT (before)': async (client, rows) => {
    await client.query(insertBatchSql, insertBatchValues('bench', rows));
  },
  'COPY text': async (client, rows) => {
    await client.query('BEGIN');
    await copy(client, `COPY agentgate.events ${columns} FROM STDIN`, copyText('bench', rows.events));
    await client.query('COMMIT');
  },
  'COPY binary (kept)': async (client, rows) => {
    await client.query('BEGIN');
    await copy(client, copyEventsSql, copyEventsData('bench', rows.events));
    await client.query('COMMIT');
  },
  'COPY binary into a staging table, then ON CONFLICT': async (client, rows) => {
    await client.query('BEGIN');
    await client.query(
      `CREATE TEMP TABLE IF NOT EXISTS staged_events (LIKE agentgate.events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`,
    );
    await copy(
      client,
      copyEventsSql.replace('agentgate.events', 'staged_events'),
      copyEventsData('bench', rows.events),
    );
    await client.query(
      `INSERT INTO agentgate.events SELECT * FROM staged_events ON CONFLICT (session_id, seq) DO NOTHING`,
    );
    await client.query('COMMIT');
  },
};

/** Each path inserts the same first `pathEvents` recorded events into an emptied table, batch by batch. */
async function comparePaths(db: FleetDatabase, store: TranscriptStore): Promise<Record<string, unknown>> {
  const batches: ShipRows[] = [];
  let events = 0;
  for (let position = 0; events < pathEvents;) {
    const batch = store.feed.read(position, { limit: 5000, ioData: true });
    if (batch.position === position) break;
    batches.push(shipRows(batch));
    events += batch.events.length;
    position = batch.position;
  }
  // Rounds interleave the paths, so a change of the machine's load hits each of them alike.
  const results: Record<string, { eventsPerSecond: number[]; load: number[] }> = {};
  const client = await db.pool.connect();
  try {
    for (let round = 0; round < pathRounds; round++)
      for (const [name, insert] of Object.entries(insertPaths)) {
        await client.query(
          'TRUNCATE agentgate.events, agentgate.sessions, agentgate.session_ends, agentgate.checkpoints',
        );
        await client.query('CHECKPOINT');
        const started = performance.now();
        for (const rows of batches) await insert(client, rows);
        const seconds = (performance.now() - started) / 1000;
        const counted = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM agentgate.events');
        if (counted.rows[0]!.n !== events)
          throw new Error(`${name} inserted ${counted.rows[0]!.n} of ${events}`);
        const result = (results[name] ??= { eventsPerSecond: [], load: [] });
        result.eventsPerSecond.push(Math.round(events / seconds));
        result.load.push(load());
      }
    await client.query(
      'TRUNCATE agentgate.events, agentgate.sessions, agentgate.session_ends, agentgate.checkpoints',
    );
  } finally {
    client.release();
  }
  return { events, batchEvents: 5000, ...results };
}

// ---- the shipper in this process -------------------------------------------------------------------------------

async function inProcess(fleet: TestPostgres, dir: string): Promise<Record<string, unknown>> {
  const db = await FleetDatabase.open({ url: `postgres://postgres@127.0.0.1:${fleet.port}/fleet` });
  try {
    await db.migrate();
    const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
    const storePath = join(dir, 'store');
    const store = await openTranscriptStore({
      path: storePath,
      failMode: 'closed',
      checkpointIntervalMs: 1000,
      signer,
    });
    const ceilingBefore = await ceiling(db);

    // The backlog is recorded first; the paths are compared on it, then a Shipper ships it from position 0.
    const backlog = openRecorders(store);
    await append(backlog, backlogEvents);
    for (const r of backlog) r.end({ cause: 'client-left', reason: 'bench' });
    await store.flush();
    const paths = await comparePaths(db, store);

    const shipper = new Shipper({
      db,
      source: store.feed,
      node: 'bench',
      positionFile: positionFileFor(storePath),
      publicKeys: () => signer.publicJwks().keys,
      log: silentLogger,
      ...(process.env['BENCH_BATCH'] ? { batchEvents: Number(process.env['BENCH_BATCH']) } : {}),
      ...(process.env['BENCH_PIPELINE'] ? { pipeline: Number(process.env['BENCH_PIPELINE']) } : {}),
    });
    const loadBefore = load();
    const catchUpStarted = performance.now();
    const cpuStarted = process.cpuUsage();
    await shipper.start();
    const afterCatchUp = await caughtUp(shipper);
    const catchUpSeconds = (performance.now() - catchUpStarted) / 1000;
    const catchUpCpu = process.cpuUsage(cpuStarted);
    const catchUp = {
      events: afterCatchUp.shippedEvents,
      seconds: round3(catchUpSeconds),
      eventsPerSecond: Math.round(afterCatchUp.shippedEvents / catchUpSeconds),
      shipperCpuSeconds: round3((catchUpCpu.user + catchUpCpu.system) / 1e6),
      load: [loadBefore, load()],
    };

    // Live: sessions append flat out while the same shipper keeps up; the lag is sampled every 100 ms.
    const live = openRecorders(store);
    const lagSamples: number[] = [];
    const lagEventSamples: number[] = [];
    const sampler = setInterval(() => {
      const status = shipper.status();
      lagSamples.push(status.lagSeconds);
      lagEventSamples.push(status.lagEvents);
    }, 100);
    const liveStarted = performance.now();
    const shippedBefore = shipper.status().shippedEvents;
    const appended = await append(live, Infinity, liveStarted + Math.min(liveSeconds, 10) * 1000);
    for (const r of live) r.end({ cause: 'client-left', reason: 'bench' });
    await store.flush();
    const appendSeconds = (performance.now() - liveStarted) / 1000;
    const afterLive = await caughtUp(shipper);
    const total = (performance.now() - liveStarted) / 1000;
    clearInterval(sampler);
    await shipper.stop();
    const counted = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM agentgate.events');
    const expected = afterLive.shippedEvents;
    if (counted.rows[0]!.n !== expected)
      throw new Error(`the fleet holds ${counted.rows[0]!.n} of ${expected} events`);
    await store.close();
    return {
      ceilingBefore,
      paths,
      catchUp,
      liveInProcess: {
        appendEventsPerSecond: Math.round(appended / appendSeconds),
        shippedEventsPerSecond: Math.round((afterLive.shippedEvents - shippedBefore) / total),
        lagSecondsP50: round3(percentile(lagSamples, 0.5)),
        lagSecondsMax: round3(Math.max(0, ...lagSamples)),
        lagEventsMax: Math.max(0, ...lagEventSamples),
        load: load(),
      },
    };
  } finally {
    await db.close();
  }
}

// ---- a served gateway under pgbench ----------------------------------------------------------------------------

interface Sample {
  readonly t: number;
  readonly connected: boolean;
  readonly shipped: number;
  readonly lagEvents: number;
  readonly lagSeconds: number;
}

async function served(
  upstream: TestPostgres,
  fleet: TestPostgres,
  dir: string,
): Promise<Record<string, unknown>> {
  const home = join(dir, 'served');
  const configFile = join(home, 'agentgate.yaml');
  await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true });
  await writeFile(
    configFile,
    baseConfigYaml(home, { token: TOKEN }) +
      'listeners:\n' +
      listenerYaml.postgres('db', upstream) +
      `fleet:\n  node: served\n  postgres: "postgres://postgres@127.0.0.1:${fleet.port}/fleet"\n`,
  );
  const init = await runProgram(
    'pgbench',
    ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(upstream.port), '-U', 'app', 'app'],
    PASSWORD,
  );
  if (init.code !== 0) throw new Error(`pgbench -i: ${init.stderr}`);
  const gateway = await serveProcess(configFile);
  let exited: string | undefined;
  gateway.process.once('exit', (code, signal) => {
    exited = `the gateway exited (${code ?? signal}): ${JSON.stringify(gateway.logs.slice(-5))} ${gateway.otherLines.slice(-20).join('\n')}`;
  });
  const samples: Sample[] = [];
  const started = performance.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const res = await fetch(`${gateway.admin}/readyz`);
        const { fleet: f } = (
          (await res.json()) as {
            detail: {
              fleet: { connected: boolean; shippedEvents: number; lagEvents: number; lagSeconds: number };
            };
          }
        ).detail;
        samples.push({
          t: (performance.now() - started) / 1000,
          connected: f.connected,
          shipped: f.shippedEvents,
          lagEvents: f.lagEvents,
          lagSeconds: f.lagSeconds,
        });
      } catch {
        // the admin listener is busy: the next sample counts
      }
      await sleep(250);
    }
  })();
  try {
    const warm = 3;
    const benchSeconds = warm + liveSeconds + outageSeconds + 30;
    const bench = runProgram(
      'pgbench',
      [
        '-n',
        '-c',
        '8',
        '-T',
        String(benchSeconds),
        '-h',
        '127.0.0.1',
        '-p',
        String(gateway.port('db')),
        '-U',
        'devin',
        'app',
      ],
      TOKEN,
    );
    await sleep(warm * 1000);
    const liveFrom = samples.length;
    const liveLoad = [load()];
    await sleep(liveSeconds * 1000);
    const liveSamples = samples.slice(liveFrom);
    liveLoad.push(load());

    await fleet.kill();
    const outageStarted = performance.now();
    const outageLoad = [load()];
    await sleep(outageSeconds * 1000);
    await fleet.start();
    const back = (performance.now() - started) / 1000;
    outageLoad.push(load());
    // Caught up: the lag is back under a second (pgbench still runs, so the lag never stays at zero).
    let atBack: Sample | undefined;
    let caught: Sample | undefined;
    const deadline = performance.now() + 600_000;
    while (caught === undefined) {
      if (exited !== undefined) throw new Error(exited);
      if (performance.now() > deadline)
        throw new Error(`no catch-up in 600 s; last samples ${JSON.stringify(samples.slice(-3))}`);
      await sleep(100);
      for (const s of samples) {
        if (s.t < back) continue;
        atBack ??= s;
        if (s.connected && s.lagSeconds < 1) {
          caught = s;
          break;
        }
      }
    }
    const benchResult = await bench;
    if (benchResult.code !== 0) throw new Error(`pgbench: ${benchResult.stderr}`);
    const tps = /tps = ([\d.]+)/.exec(benchResult.stdout)?.[1];
    const outageSamples = samples.filter((s) => s.t >= (outageStarted - started) / 1000 && s.t < back);
    const backlog = Math.max(0, ...outageSamples.map((s) => s.lagEvents));
    const first = liveSamples[0]!;
    const last = liveSamples.at(-1)!;
    const span = last.t - first.t;
    return {
      pgbench: { clients: 8, tps: tps === undefined ? null : Number(tps) },
      live: {
        seconds: round3(span),
        appendEventsPerSecond: Math.round(
          (last.shipped + last.lagEvents - first.shipped - first.lagEvents) / span,
        ),
        shippedEventsPerSecond: Math.round((last.shipped - first.shipped) / span),
        lagSecondsP50: round3(
          percentile(
            liveSamples.map((s) => s.lagSeconds),
            0.5,
          ),
        ),
        lagSecondsMax: round3(Math.max(0, ...liveSamples.map((s) => s.lagSeconds))),
        lagEventsMax: Math.max(0, ...liveSamples.map((s) => s.lagEvents)),
        load: liveLoad,
      },
      outage: {
        seconds: outageSeconds,
        // the gateway's append rate with nothing shipped: next to live's, what shipping costs the gateway
        appendEventsPerSecond: appendRate(outageSamples),
        backlogEvents: backlog,
        catchUpSeconds: caught === undefined || atBack === undefined ? null : round3(caught.t - back),
        catchUpEventsPerSecond:
          caught === undefined || atBack === undefined
            ? null
            : Math.round((caught.shipped - atBack.shipped) / Math.max(0.001, caught.t - back)),
        load: [...outageLoad, load()],
      },
    };
  } finally {
    sampling = false;
    await sampler;
    await gateway.stop();
  }
}

function appendRate(samples: readonly Sample[]): number | null {
  const first = samples[0];
  const last = samples.at(-1);
  if (first === undefined || last === undefined || last.t <= first.t) return null;
  return Math.round((last.shipped + last.lagEvents - first.shipped - first.lagEvents) / (last.t - first.t));
}

function runProgram(
  program: string,
  args: readonly string[],
  password: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env: { ...process.env, PGPASSWORD: password } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-fleet-bench-'));
  const [upstream, fleet] = await Promise.all([startPostgres(), startPostgres()]);
  try {
    await fleet.psql(['-d', 'postgres'], { input: 'CREATE DATABASE fleet;' });
    const result: Record<string, unknown> = {
      cores: cpus().length,
      loadAtStart: loadavg().map((l) => round3(l)),
    };
    Object.assign(result, await inProcess(fleet, dir));
    if (process.env['BENCH_SERVED'] !== '0') result['served'] = await served(upstream, fleet, dir);
    const db = await FleetDatabase.open({ url: `postgres://postgres@127.0.0.1:${fleet.port}/fleet` });
    result['ceilingAfter'] = await ceiling(db);
    await db.close();
    process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  } finally {
    await Promise.all([upstream.stop(), fleet.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
