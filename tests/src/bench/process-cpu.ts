/**
 * What the benchmarks read about a process: CPU time from /proc, a V8 profile of their own on request, and system
 * calls counted by `strace -c`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** /proc counts CPU in clock ticks of 10 ms. */
export const tickUs = 10_000;

/** A /proc stat file's user + system ticks (system only with `systemOnly`). */
export function statTicks(file: string, systemOnly = false): number {
  // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
  const text = readFileSync(file, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (systemOnly ? 0 : Number(fields[11])) + Number(fields[12]);
}

/** CPU µs of a process so far: all its threads, and its main thread. */
export interface ProcessCpu {
  all: number;
  main: number;
}

export function processCpu(pid: number): ProcessCpu {
  let all = 0;
  // Summed over /proc/PID/task/*: the same as /proc/PID/stat while every thread lives.
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      all += statTicks(`/proc/${pid}/task/${tid}/stat`);
    } catch {
      // thread ended between readdir and read
    }
  }
  // Exited threads' time counts in /proc/PID/stat only.
  all = Math.max(all, statTicks(`/proc/${pid}/stat`));
  return { all: all * tickUs, main: statTicks(`/proc/${pid}/task/${pid}/stat`) * tickUs };
}

/** CPU ns of one of this process's threads from its `schedstat`: finer than the stat files' 10 ms ticks. */
function ownThreadNs(task: string): number {
  try {
    return Number(readFileSync(`/proc/self/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0; // the thread ended between the listing and the read
  }
}

/** CPU ns of this process's main thread so far (the in-process A/Bs' per-batch figure). */
export const ownMainThreadNs = (): number => ownThreadNs(String(process.pid));

/** CPU ns of all this process's live threads so far. */
export const ownAllThreadsNs = (): number =>
  readdirSync('/proc/self/task').reduce((sum, task) => sum + ownThreadNs(task), 0);

/** A /proc stat file's minor page faults (the 10th field after the command name). */
export function statMinorFaults(file: string): number {
  const text = readFileSync(file, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[7]);
}

/** With BENCH_PROFILE=DIR: start the V8 profiler; the returned function writes DIR/NAME.cpuprofile. */
export async function startProfile(): Promise<((name: string) => Promise<void>) | undefined> {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async (name) => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}

/**
 * `strace -c` of the threads `tids` (each by id, without -f, which would also follow children spawned next); the
 * returned function stops it and reports the calls per operation (those at 0.01 or more), e.g. `write 2.00, read 2.13`.
 */
export async function straceThreads(
  tids: readonly string[],
): Promise<(operations: number) => Promise<string>> {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'agentgate-strace-')), 'counts');
  const child = spawn('strace', ['-c', ...tids.flatMap((tid) => ['-p', tid]), '-o', file], {
    stdio: 'ignore',
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  return async (operations) => {
    // strace may have gone already (it could not attach): then there is nothing to wait for.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
    const counts: string[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
      if (m && Number(m[1]) / operations >= 0.01)
        counts.push(`${m[2]} ${(Number(m[1]) / operations).toFixed(2)}`);
    }
    rmSync(path.dirname(file), { recursive: true, force: true });
    return counts.length > 0 ? counts.join(', ') : 'none counted (strace could not attach?)';
  };
}
