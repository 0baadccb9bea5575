/**
 * Benchmark: the record path of one decided pgbench `-S` statement as the gateway records it, without the relay:
 * its events (command with its decision, result, with the bodies the PostgreSQL engine records; a separate
 * decision event too when the loaded build is one whose gate wrote it so) through the redactor
 * with the built-in entries, the store (failMode closed: space reserve and commit feed on) and the Prometheus
 * metrics the gate and the relay update per statement. `perTurn` statements are appended per event-loop turn,
 * round-robin over the sessions; CPU per statement (all threads, main thread) from /proc after a warm-up of a fifth
 * as many statements.
 * Run: node tests/dist/bench/transcript-record.js [statements] [perTurn] [sessions]
 * BENCH_ROOT=DIR loads the packages from another checkout's build (an A/B of two builds in one sitting).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { SessionRecorder } from '@agentgate/core';
import { openBenchStore } from './bench-store.js';
import { processCpu } from './process-cpu.js';

/** A build before the decision was folded into the command appends it as an event of its own. */
type LegacyAppend = { append(type: 'decision', body: { commandSeq: number; action: 'allow' }): unknown };

const total = Number(process.argv[2] ?? 60_000);
const perTurn = Number(process.argv[3] ?? 10);
const sessionCount = Number(process.argv[4] ?? 8);
const root = resolve(process.env['BENCH_ROOT'] ?? join(fileURLToPath(import.meta.url), '../../../..'));

type Packages = [
  typeof import('@agentgate/transcript'),
  typeof import('@agentgate/masking'),
  typeof import('@agentgate/metrics'),
  typeof import('@agentgate/core'),
];

async function load(): Promise<Packages> {
  const from = (name: string) => pathToFileURL(join(root, 'packages', name, 'dist/index.js')).href;
  return (await Promise.all([
    import(from('transcript')),
    import(from('masking')),
    import(from('metrics')),
    import(from('core')),
  ])) as Packages;
}

async function main(): Promise<void> {
  const [transcript, masking, metricsPackage, core] = await load();
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-bench-'));
  try {
    const { store, metrics } = await openBenchStore({ transcript, masking, metrics: metricsPackage }, dir);
    const recorders: SessionRecorder[] = [];
    for (let i = 0; i < sessionCount; i++) {
      recorders.push(
        store.openSession({
          id: core.newId(),
          listener: 'pg',
          protocol: 'postgres',
          identity: { name: `agent-${i}`, groups: ['agents'], source: 'oidc' },
          client: { address: '127.0.0.1', port: 40000 + i, local: true, tls: false },
          startedAt: Date.now(),
        }),
      );
    }
    // What the loaded build's gate records: the decision in the command event when that build reads it there,
    // otherwise a decision event of its own after it.
    const folded = 'recordedDecision' in core;
    const legacy = (recorder: SessionRecorder): LegacyAppend => recorder as unknown as LegacyAppend;
    // The bodies as the PostgreSQL engine records them for `pgbench -S -M simple` (a captured transcript).
    const statement = (recorder: SessionRecorder, n: number): void => {
      const text = `SELECT abalance FROM pgbench_accounts WHERE aid = ${1 + ((n * 7919) % 400_000)};`;
      const statements = [
        {
          command: 'SELECT',
          tables: ['pgbench_accounts'],
          functions: [],
          unfilteredWrite: false,
          text: text.slice(0, -1),
          dynamic: false,
        },
      ];
      const detail = { database: 'app', user: 'bench' };
      const command = folded
        ? recorder.append('command', {
            text,
            protocol: 'postgres',
            statements,
            detail,
            decision: { action: 'allow' },
          })
        : recorder.append('command', { text, protocol: 'postgres', statements, detail });
      if (!folded) legacy(recorder).append('decision', { commandSeq: command.seq, action: 'allow' });
      metrics.gate.command('pg', 'postgres', 'allow');
      metrics.protocol.bytes('pg', 'postgres', 'client_to_upstream', 62);
      recorder.append('result', {
        commandSeq: command.seq,
        rowDescription: { names: ['abalance'], typeOids: [23] },
        rows: [[String(n % 5000)]],
        rowsOmitted: 0,
        commandTag: 'SELECT 1',
        rowCount: 1,
        durationMs: 0.061,
      });
      metrics.protocol.bytes('pg', 'postgres', 'upstream_to_client', 67);
      metrics.protocol.commandCompleted('pg', 'postgres', 0.000061);
    };
    const run = async (count: number): Promise<void> => {
      let n = 0;
      while (n < count) {
        for (let k = 0; k < perTurn && n < count; k++) statement(recorders[n % sessionCount]!, n++);
        await nextTurn();
      }
      await store.flush();
    };
    await run(Math.round(total / 5));
    const before = processCpu(process.pid);
    const started = performance.now();
    await run(total);
    const after = processCpu(process.pid);
    const wall = performance.now() - started;
    for (const r of recorders) r.end({ cause: 'client-left', reason: 'bench' });
    const report = await store.verify();
    await store.close();
    process.stdout.write(
      JSON.stringify({
        root,
        statements: total,
        perTurn,
        sessions: sessionCount,
        eventsPerStatement: folded ? 2 : 3,
        cpuUsPerStatement: Number(((after.all - before.all) / total).toFixed(2)),
        mainCpuUsPerStatement: Number(((after.main - before.main) / total).toFixed(2)),
        wallUsPerStatement: Number(((wall * 1000) / total).toFixed(2)),
        loadAverage: Number(loadavg()[0]!.toFixed(2)),
        verified: report.ok,
      }) + '\n',
    );
    if (!report.ok) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
