/**
 * Benchmark: the fleet shipper, LMDB commit feed -> PostgreSQL (a throwaway cluster of the test harness).
 * - catch-up: a backlog of recorded events (as after an outage of the fleet database) shipped from scratch;
 * - live: the shipper running in the same process while sessions append as fast as they can, with its lag sampled.
 * Run: npx tsc -b tests && node tests/dist/bench/fleet-ship.js [backlogEvents] [liveSeconds] [sessions]
 * Goal (docs/performance.md, "Fleet shipping"): >= 50,000 events/s into PostgreSQL, lag under 1 s while live.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { newId, silentLogger, type SessionRecorder } from '@agentgate/core';
import { FleetDatabase, positionFileFor, Shipper, type ShipStatus } from '@agentgate/fleet';
import { loadOrCreateSigningKey, openTranscriptStore, type TranscriptStore } from '@agentgate/transcript';
import { startPostgres } from '../harness/postgres.js';

const backlogEvents = Number(process.argv[2] ?? 300_000);
const liveSeconds = Number(process.argv[3] ?? 10);
const sessionCount = Number(process.argv[4] ?? 50);
const eventsPerTurn = 500;

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
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-fleet-bench-'));
  const postgres = await startPostgres();
  try {
    await postgres.psql(['-d', 'postgres'], { input: 'CREATE DATABASE fleet;' });
    const db = await FleetDatabase.open({ url: `postgres://postgres@127.0.0.1:${postgres.port}/fleet` });
    await db.migrate();
    const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
    const storePath = join(dir, 'store');
    const store = await openTranscriptStore({
      path: storePath,
      failMode: 'closed',
      checkpointIntervalMs: 1000,
      signer,
    });
    const shipperFor = (): Shipper =>
      new Shipper({
        db,
        source: store.feed,
        node: 'bench',
        positionFile: positionFileFor(storePath),
        publicKeys: () => signer.publicJwks().keys,
        log: silentLogger,
      });

    // Catch-up: the backlog is recorded first, then shipped from position 0.
    const backlog = openRecorders(store);
    await append(backlog, backlogEvents);
    for (const r of backlog) r.end({ cause: 'client-left', reason: 'bench' });
    await store.flush();
    const catchUp = shipperFor();
    const catchUpStarted = performance.now();
    const cpuStarted = process.cpuUsage();
    await catchUp.start();
    const afterCatchUp = await caughtUp(catchUp);
    const catchUpSeconds = (performance.now() - catchUpStarted) / 1000;
    const catchUpCpu = process.cpuUsage(cpuStarted);

    // Live: sessions append flat out while the same shipper keeps up; the lag is sampled every 100 ms.
    const live = openRecorders(store);
    const lagSamples: number[] = [];
    const lagEventSamples: number[] = [];
    const sampler = setInterval(() => {
      const status = catchUp.status();
      lagSamples.push(status.lagSeconds);
      lagEventSamples.push(status.lagEvents);
    }, 100);
    const liveStarted = performance.now();
    const shippedBefore = catchUp.status().shippedEvents;
    const appendedLive = await append(live, Infinity, liveStarted + liveSeconds * 1000);
    for (const r of live) r.end({ cause: 'client-left', reason: 'bench' });
    await store.flush();
    const appendSeconds = (performance.now() - liveStarted) / 1000;
    const afterLive = await caughtUp(catchUp);
    const liveSecondsTotal = (performance.now() - liveStarted) / 1000;
    clearInterval(sampler);
    await catchUp.stop();

    const counted = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM agentgate.events');
    // What this database inserts at all on this machine, now: rows of the same size and key generated server-side
    // (no client, no parsing), the ceiling any shipper can reach.
    await db.query(
      `CREATE TABLE baseline (session_id text, seq int, stored text, PRIMARY KEY (session_id, seq))`,
    );
    const baselineStarted = performance.now();
    await db.query(
      `INSERT INTO baseline SELECT 's' || (i % 50), i / 50, repeat('x', 330) FROM generate_series(1, 100000) AS i`,
    );
    const baselineSeconds = (performance.now() - baselineStarted) / 1000;
    const sorted = [...lagSamples].sort((x, y) => x - y);
    const result = {
      catchUp: {
        events: afterCatchUp.shippedEvents,
        seconds: Number(catchUpSeconds.toFixed(3)),
        eventsPerSecond: Math.round(afterCatchUp.shippedEvents / catchUpSeconds),
        shipperCpuSeconds: Number(((catchUpCpu.user + catchUpCpu.system) / 1e6).toFixed(3)),
      },
      live: {
        appended: appendedLive,
        appendEventsPerSecond: Math.round(appendedLive / appendSeconds),
        shipped: afterLive.shippedEvents - shippedBefore,
        shippedEventsPerSecond: Math.round((afterLive.shippedEvents - shippedBefore) / liveSecondsTotal),
        lagSecondsP50: Number((sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(3)),
        lagSecondsMax: Number((sorted.at(-1) ?? 0).toFixed(3)),
        lagEventsMax: Math.max(0, ...lagEventSamples),
        drainSecondsAfterAppendsStopped: Number((liveSecondsTotal - appendSeconds).toFixed(3)),
      },
      rowsInPostgres: counted.rows[0]!.n,
      serverSideInsertRowsPerSecond: Math.round(100_000 / baselineSeconds),
      loadAverage: Number(loadavg()[0]!.toFixed(2)),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    await store.close();
    await db.close();
  } finally {
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
