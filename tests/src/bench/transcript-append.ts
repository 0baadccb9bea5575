/**
 * Benchmark: sustained appends/s of small chained events into the LMDB transcript store, flush included.
 * Run: npx tsc -b tests && node tests/dist/bench/transcript-append.js [events] [sessions]
 * Goal (issue 2): ≥ 50,000 events/s on a 2-core machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { newId, type SessionRecorder } from '@agentgate/core';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';

const totalEvents = Number(process.argv[2] ?? 200_000);
const sessionCount = Number(process.argv[3] ?? 50);
/** Events appended per event turn before yielding (lmdb commits what one turn queued as one transaction). */
const eventsPerTurn = 500;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-bench-'));
  try {
    const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
    const store = await openTranscriptStore({
      path: join(dir, 'store'),
      failMode: 'closed',
      checkpointIntervalMs: 1000,
      signer,
    });
    const recorders: SessionRecorder[] = [];
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
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
    let appended = sessionCount;
    while (appended < totalEvents - sessionCount) {
      for (let j = 0; j < eventsPerTurn && appended < totalEvents - sessionCount; j++, appended++) {
        const recorder = recorders[appended % sessionCount]!;
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
    for (const recorder of recorders) recorder.end({ cause: 'client-left', reason: 'bench' });
    appended += sessionCount;
    await store.flush();
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStarted);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const rate = appended / seconds;
    const io = await measureIo(store);
    const verifyStarted = performance.now();
    const report = await store.verify();
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    await store.close();
    const result = {
      events: appended,
      sessions: sessionCount,
      seconds: Number(seconds.toFixed(3)),
      eventsPerSecond: Math.round(rate),
      // CPU time of all threads (main + lmdb writer): a figure that other load on the machine disturbs less.
      cpuSeconds: Number(cpuSeconds.toFixed(3)),
      eventsPerCpuSecond: Math.round(appended / cpuSeconds),
      loadAverage: Number(loadavg()[0]!.toFixed(2)),
      io,
      verify: {
        ok: report.ok,
        events: report.events,
        checkpoints: report.checkpoints,
        seconds: Number(verifySeconds.toFixed(3)),
      },
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    if (!report.ok) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Stream bytes through one recorder in 16 KiB chunks (an ssh relay's pace), coalesced into 64 KiB io events. */
async function measureIo(
  store: Awaited<ReturnType<typeof openTranscriptStore>>,
): Promise<Record<string, number>> {
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  const totalBytes = Number(process.env['BENCH_IO_MIB'] ?? 256) * 1024 * 1024;
  const recorder = store.openSession({
    id: newId(),
    listener: 'bench',
    protocol: 'ssh',
    identity: { name: 'io', groups: [], source: 'token' },
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: Date.now(),
  });
  const started = performance.now();
  for (let sent = 0; sent < totalBytes;) {
    for (let i = 0; i < 64 && sent < totalBytes; i++, sent += chunk.length) recorder.io('out', chunk, '0');
    await nextTurn();
  }
  recorder.end({ cause: 'client-left', reason: 'bench' });
  await store.flush();
  const seconds = (performance.now() - started) / 1000;
  return {
    mib: totalBytes / 1024 / 1024,
    seconds: Number(seconds.toFixed(3)),
    mibPerSecond: Math.round(totalBytes / 1024 / 1024 / seconds),
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
