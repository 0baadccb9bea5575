/**
 * Benchmark: what one commit costs the process, by how it is written. lmdb-js is opened with the transcript store's
 * options (string values, no compression, no event-turn batching, overlappingSync as lmdb-js defaults it), and each
 * commit writes `puts` values plus one feed record, conditioned on the previous feed record as the store's writer
 * does (docs/transcript.md, other processes opening the store); commits are `gapMs` apart, as the commit window
 * spaces them. Modes:
 * - `batch`: the store's way, one asynchronous lmdb-js batch (`ifVersion`): encoded here, written and flushed on a
 *   thread-pool thread;
 * - `sync`: one `transactionSync` on the main thread with the feed condition checked inside it, flags as lmdb-js's
 *   own `putSync` uses with overlappingSync (LMDB then flushes inside the commit, on the committing thread);
 * - `append`: as `batch`, each put with lmdb-js's `append` option (LMDB's `MDB_APPEND`: the key goes after the
 *   tree's last one without a search, and a full last page is split there rather than in the middle);
 * - `nooverlap`: as `batch`, lmdb-js opened with `overlappingSync: false` (LMDB flushes before it releases the write
 *   lock, and lmdb-js sends no "visible" update from the writer thread in between);
 * - `idle`: no commit, only the timer between commits (what the loop's own wakes cost).
 * Per commit: main-thread and all-thread CPU (`/proc/self/task/*` `schedstat`), the synchronous call's wall time,
 * the latency to the commit's settling (p50, p90), the bytes the process wrote (`/proc/self/io` `wchar`: LMDB's
 * pages and meta page) and the pages the file grew by. Each run is a process of its own; modes alternate, the order
 * swapped every run. Run: node tests/dist/bench/commit-cost.js [puts=20] [commits=300] [valueBytes=600] [gapMs=5]
 * with `BENCH_MODES=batch,sync,idle` and `BENCH_RUNS=3`. Values over 16 KiB go to a binary db, as io bytes do.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { IF_EXISTS, open, type Database } from 'lmdb';
import { ownAllThreadsNs, ownMainThreadNs } from './process-cpu.js';

const puts = Number(process.argv[2] ?? 20);
const commits = Number(process.argv[3] ?? 300);
const valueBytes = Number(process.argv[4] ?? 600);
const gapMs = Number(process.argv[5] ?? 5);
const warmup = 30;

interface Run {
  mode: string;
  mainUs: number;
  allUs: number;
  callUs: number;
  p50Us: number;
  p90Us: number;
  writtenKiB: number;
  grownPages: number;
  loadAverage: number;
}

/** Bytes this process has passed to write system calls (`/proc/self/io` `wchar`). */
function writtenBytes(): number {
  return Number(/wchar:\s+(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);
}

/** lmdb-js's transactionSync flags for a commit whose flush runs after the write lock is released (write.js). */
const overlappingSyncCommit = 0x10002;

async function measure(mode: string): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-commit-cost-'));
  const env = open<string, string>({
    path: join(dir, 'store'),
    encoding: 'string',
    maxDbs: 8,
    compression: false,
    eventTurnBatching: false,
    ...(mode === 'nooverlap' ? { overlappingSync: false } : {}),
  });
  try {
    const options = { encoding: 'string' as const, compression: false };
    const events = env.openDB<string, string>('events', options) as unknown as Database<Buffer, string>;
    const io = env.openDB<Buffer, string>('iodata', { encoding: 'binary', compression: false });
    const feed = env.openDB<string, string>('feed', options);
    const feedKey = (n: number): string => String(n).padStart(16, '0');
    let position = 1;
    let seq = 0;
    await feed.put(feedKey(position), '{}');
    const value = Buffer.alloc(valueBytes, 0x61);
    const db = valueBytes > 16 << 10 ? io : events;
    const putOptions = mode === 'append' ? { append: true } : undefined;
    const write = (): void => {
      for (let i = 0; i < puts; i++)
        void db.put(`bench-session/${String(++seq).padStart(12, '0')}`, value, putOptions as never);
      void feed.put(feedKey(position + 1), '{"ts":0,"events":[],"checkpoints":[]}', putOptions as never);
    };
    const lastPage = (): number => (env.getStats() as { lastPageNumber: number }).lastPageNumber;
    let callNs = 0;
    const latencies: number[] = [];
    const commit = async (): Promise<void> => {
      const start = performance.now();
      if (mode === 'batch' || mode === 'append' || mode === 'nooverlap') {
        const written = feed.ifVersion(feedKey(position), IF_EXISTS, write);
        callNs += (performance.now() - start) * 1e6;
        if ((await written) === false) throw new Error('the feed condition failed');
        position++;
      } else if (mode === 'sync') {
        const applied = env.transactionSync(() => {
          if (!feed.doesExist(feedKey(position))) return false;
          write();
          return true;
        }, overlappingSyncCommit as never) as unknown as boolean;
        callNs += (performance.now() - start) * 1e6;
        if (!applied) throw new Error('the feed condition failed');
        position++;
      }
      latencies.push((performance.now() - start) * 1000);
    };
    for (let i = 0; i < warmup; i++) {
      await commit();
      await sleep(gapMs);
    }
    callNs = 0;
    latencies.length = 0;
    const main0 = ownMainThreadNs();
    const all0 = ownAllThreadsNs();
    const written0 = writtenBytes();
    const pages0 = lastPage();
    for (let i = 0; i < commits; i++) {
      await commit();
      await sleep(gapMs);
    }
    const per = (ns: number): number => Number((ns / 1000 / commits).toFixed(1));
    latencies.sort((a, b) => a - b);
    return {
      mode,
      mainUs: per(ownMainThreadNs() - main0),
      allUs: per(ownAllThreadsNs() - all0),
      callUs: per(callNs),
      p50Us: Math.round(latencies[latencies.length >> 1]!),
      p90Us: Math.round(latencies[Math.floor(latencies.length * 0.9)]!),
      writtenKiB: Number(((writtenBytes() - written0) / 1024 / commits).toFixed(1)),
      grownPages: Number(((lastPage() - pages0) / commits).toFixed(2)),
      loadAverage: Number(loadavg()[0]!.toFixed(2)),
    };
  } finally {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const modes = (process.env['BENCH_MODES'] ?? 'batch,sync,idle').split(',');
  const runs = Number(process.env['BENCH_RUNS'] ?? 3);
  const results = new Map<string, Run[]>(modes.map((mode) => [mode, []]));
  for (let run = 0; run < runs; run++) {
    for (const mode of run % 2 === 0 ? modes : [...modes].reverse()) {
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
        env: { ...process.env, BENCH_COMMIT_COST_MODE: mode },
        encoding: 'utf8',
      });
      if (child.status !== 0) throw new Error(`${mode}: ${child.stderr}`);
      const result = JSON.parse(child.stdout) as Run;
      results.get(mode)!.push(result);
      process.stdout.write(JSON.stringify({ puts, valueBytes, ...result }) + '\n');
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const [mode, list] of results) {
    process.stdout.write(
      `${mode}: medians per commit, main thread ${median(list.map((r) => r.mainUs))} µs, all threads ` +
        `${median(list.map((r) => r.allUs))} µs, synchronous call ${median(list.map((r) => r.callUs))} µs, ` +
        `latency p50 ${median(list.map((r) => r.p50Us))} µs, written ${median(list.map((r) => r.writtenKiB))} KiB, ` +
        `file grown ${median(list.map((r) => r.grownPages))} pages\n`,
    );
  }
}

const childMode = process.env['BENCH_COMMIT_COST_MODE'];
if (childMode !== undefined) {
  measure(childMode).then(
    (run) => process.stdout.write(JSON.stringify(run)),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
} else main();
