/**
 * What the benchmarks read about a process: CPU time from /proc, a V8 profile of their own on request, and system
 * calls counted by `strace -c`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
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

/** The whole machine's CPU µs so far, from /proc/stat: busy (user, nice, system, irq, softirq), idle (and iowait), steal. */
export interface MachineCpu {
  busy: number;
  idle: number;
  steal: number;
}

export function machineCpu(): MachineCpu {
  const fields = readFileSync('/proc/stat', 'utf8')
    .split('\n', 1)[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [number, ...number[]];
  return {
    busy: (user + nice! + system! + irq! + softirq!) * tickUs,
    idle: (idle! + iowait!) * tickUs,
    steal: steal! * tickUs,
  };
}

/**
 * CPU µs used so far by a process and everything it starts (a PostgreSQL postmaster, its backends), exited
 * processes included: a cgroup v1 `cpuacct` group of its own when the machine lets this process make one, else
 * the process tree read from /proc, which can miss a backend that exits between two readings (its time is in no
 * live process's stat file until its parent reaps it).
 */
export interface CpuGroup {
  readonly kind: 'cgroup' | 'process tree';
  usageUs(): number;
  close(): void;
}

const cpuacctRoot = '/sys/fs/cgroup/cpuacct';

export function cpuGroup(name: string, rootPid: number): CpuGroup {
  const dir = path.join(cpuacctRoot, `agentgate-bench-${name}-${process.pid}`);
  try {
    mkdirSync(dir);
    for (const pid of [rootPid, ...childrenOf(rootPid)])
      writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  } catch {
    try {
      rmdirSync(dir); // made, but a process could not be moved into it
    } catch {
      // not made: no cgroup v1 cpuacct here, or no permission
    }
    return { kind: 'process tree', usageUs: () => processTreeCpu(rootPid), close: () => undefined };
  }
  return {
    kind: 'cgroup',
    usageUs: () => Number(readFileSync(path.join(dir, 'cpuacct.usage'), 'utf8')) / 1000,
    close() {
      // Called once the processes have stopped; a cgroup can be removed only when empty, so anything still
      // running goes back to the root group (a process that ends meanwhile cannot be moved: ignored).
      for (const pid of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
        try {
          writeFileSync(path.join(cpuacctRoot, 'cgroup.procs'), pid);
        } catch {
          // gone
        }
      try {
        rmdirSync(dir);
      } catch (err) {
        process.stderr.write(`could not remove ${dir}: ${String(err)}\n`);
      }
    },
  };
}

const statFields = (pid: number | string): string[] => {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
};

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The 4th field is the parent's pid (the 2nd after the command name).
      if (Number(statFields(entry)[1]) === pid) children.push(Number(entry));
    } catch {
      // the process ended between the listing and the read
    }
  }
  return children;
}

/** CPU µs of a process, its reaped children (cutime, cstime) and its live children. */
function processTreeCpu(pid: number): number {
  const own = statFields(pid);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const child of childrenOf(pid)) {
    try {
      const fields = statFields(child);
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // ended meanwhile
    }
  }
  return ticks * tickUs;
}
