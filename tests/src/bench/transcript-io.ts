/**
 * Benchmark: the transcript store's io path. Feeds 256 MiB (BENCH_IO_MIB) in 32 KiB chunks to one recorder's
 * `io()` (an ssh / docker relay's shape), flushes, then verifies the store.
 * Run: npx tsc -b tests && node tests/dist/bench/transcript-io.js [mib] [chunkKiB]
 * The store redacts with the built-in `redact` entries, as the gateway does by default; BENCH_IO_REDACT=0 without.
 * Goal: ≥ 400 MiB/s of main-thread capacity (`mibPerMainThreadCpuSecond`: bytes over the main thread's own CPU
 * time, read from /proc/self/task/<pid>/stat, so neither the lmdb writer thread nor time lost to other processes on
 * a loaded machine counts).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { newId } from '@agentgate/core';
import { createRedactor } from '@agentgate/masking';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';

const totalMib = Number(process.argv[2] ?? process.env['BENCH_IO_MIB'] ?? 256);
const chunkBytes = Number(process.argv[3] ?? 32) * 1024;
/** Chunks fed per event turn: a busy relay delivers several socket reads per turn. */
const chunksPerTurn = 32;
const redact = process.env['BENCH_IO_REDACT'] !== '0';

/** CPU seconds (user + system) of the main thread: Linux only (proc(5), fields 14 and 15, in clock ticks). */
function mainThreadCpuSeconds(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15; USER_HZ is 100 on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-bench-io-'));
  let gcCount = 0;
  let gcMs = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcCount++;
      gcMs += entry.duration;
    }
  });
  try {
    const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
    const store = await openTranscriptStore({
      path: join(dir, 'store'),
      failMode: 'closed',
      checkpointIntervalMs: 1000,
      signer,
      ...(redact ? { redactor: createRedactor({ defaults: true, disable: [], entries: [] }) } : {}),
    });
    // Distinct chunks (not one reused buffer), like socket reads.
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(chunkBytes, 0x41 + (i % 26)));
    const totalBytes = totalMib * 1024 * 1024;
    const recorder = store.openSession({
      id: newId(),
      listener: 'bench',
      protocol: 'ssh',
      identity: { name: 'io', groups: [], source: 'token' },
      client: { address: '127.0.0.1', local: true, tls: false },
      startedAt: Date.now(),
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const mainCpuStarted = mainThreadCpuSeconds();
    const cpuStarted = process.cpuUsage();
    const started = performance.now();
    let n = 0;
    for (let sent = 0; sent < totalBytes;) {
      for (let i = 0; i < chunksPerTurn && sent < totalBytes; i++, n++) {
        const chunk = chunks[n % chunks.length]!;
        recorder.io('out', chunk, '0');
        sent += chunk.length;
      }
      await nextTurn();
    }
    recorder.end({ cause: 'client-left', reason: 'bench' });
    await store.flush();
    const seconds = (performance.now() - started) / 1000;
    const mainSeconds = mainThreadCpuSeconds() - mainCpuStarted;
    const cpu = process.cpuUsage(cpuStarted);
    gcObserver.disconnect();
    const verifyStarted = performance.now();
    const report = await store.verify();
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    let ioEvents = 0;
    let recordedBytes = 0;
    for (const event of store.events(recorder.sessionId)) {
      if (event.type !== 'io') continue;
      ioEvents++;
      recordedBytes += Buffer.from(String(event['data']), 'base64').length;
    }
    await store.close();
    const result = {
      mib: totalMib,
      redact,
      chunkKiB: chunkBytes / 1024,
      seconds: Number(seconds.toFixed(3)),
      mibPerSecond: Math.round(totalMib / seconds),
      mainThreadCpuSeconds: Number(mainSeconds.toFixed(2)),
      mibPerMainThreadCpuSecond: Math.round(totalMib / mainSeconds),
      cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(3)),
      gcCount,
      gcMs: Math.round(gcMs),
      ioEvents,
      recordedMib: recordedBytes / 1024 / 1024,
      loadAverage: Number(loadavg()[0]!.toFixed(2)),
      verify: { ok: report.ok, events: report.events, seconds: Number(verifySeconds.toFixed(3)) },
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    if (!report.ok || recordedBytes !== totalBytes) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
