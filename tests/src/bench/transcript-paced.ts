/**
 * Benchmark: what recording one statement costs when statements come one after another, as from an agent or one
 * pgbench client: a session appends a statement's two events (command with its decision, result) every millisecond, and
 * the store commits them (failMode closed: space reserve on). Reports CPU per statement (all threads and the main
 * thread, from /proc), write system calls and thread wakeups per statement, with the load average.
 * Run: node tests/dist/bench/transcript-paced.js [seconds] [sessions]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newId, type SessionRecorder } from '@agentgate/core';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';

const seconds = Number(process.argv[2] ?? 8);
const sessionCount = Number(process.argv[3] ?? 1);

interface Counters {
  /** CPU µs, all threads */
  cpu: number;
  mainCpu: number;
  /** write system calls (/proc/self/io syscw) */
  writes: number;
  /** voluntary context switches of all threads: times a thread slept and was woken */
  wakeups: number;
}

function ticks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function counters(): Counters {
  let wakeups = 0;
  let cpu = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      wakeups += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      cpu += ticks(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'));
    } catch {
      // the thread ended
    }
  }
  const io = readFileSync('/proc/self/io', 'utf8');
  return {
    cpu: Math.max(cpu, ticks(readFileSync('/proc/self/stat', 'utf8'))),
    mainCpu: ticks(readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')),
    writes: Number(/syscw:\s+(\d+)/.exec(io)?.[1] ?? 0),
    wakeups,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-bench-'));
  try {
    const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
    const store = await openTranscriptStore({
      path: join(dir, 'store'),
      failMode: 'closed',
      checkpointIntervalMs: 60_000,
      signer,
    });
    const recorders: SessionRecorder[] = [];
    for (let i = 0; i < sessionCount; i++) {
      recorders.push(
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
    const statement = (recorder: SessionRecorder, n: number): void => {
      const text = `SELECT abalance FROM pgbench_accounts WHERE aid = ${n};`;
      const command = recorder.append('command', {
        protocol: 'postgres',
        text,
        statements: [],
        decision: { action: 'allow' },
      });
      recorder.append('result', { event: 'sql', tag: 'SELECT 1', rows: 1, commandSeq: command.seq });
    };
    // Warm-up, then the measured part.
    for (let n = 0; n < 500; n++) {
      for (const r of recorders) statement(r, n);
      await sleep(1);
    }
    await store.flush();
    const before = counters();
    const started = performance.now();
    let statements = 0;
    while (performance.now() - started < seconds * 1000) {
      for (const r of recorders) statement(r, statements++);
      await sleep(1);
    }
    await store.flush();
    const after = counters();
    const wall = (performance.now() - started) / 1000;
    const per = (k: keyof Counters, scale = 1) =>
      Number(((after[k] - before[k]) / statements / scale).toFixed(2));
    for (const r of recorders) r.end({ cause: 'client-left', reason: 'bench' });
    const report = await store.verify();
    await store.close();
    process.stdout.write(
      JSON.stringify({
        sessions: sessionCount,
        statements,
        statementsPerSecond: Math.round(statements / wall),
        cpuUsPerStatement: per('cpu'),
        mainCpuUsPerStatement: per('mainCpu'),
        writeCallsPerStatement: per('writes'),
        wakeupsPerStatement: per('wakeups'),
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
