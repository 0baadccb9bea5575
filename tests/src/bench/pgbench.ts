/**
 * Benchmark, run with `node tests/dist/bench/pgbench.js [seconds] [repetitions]`: pgbench -S (one SELECT per
 * transaction) at 1 and 8 clients, `-M simple` and `-M prepared`, against PostgreSQL directly, pgbouncer (session
 * mode), a bare Node.js TCP pipe in this process (no parsing, no decision: the Node runtime's own floor for a proxy
 * hop) and agentgate (the whole gateway in this process as `agentgate serve` builds it: two deny rules,
 * failMode closed (the default), recording into a real LMDB store, Prometheus metrics), interleaved in one run so all see the
 * same machine load. Per statement it reports the latency added over direct and the proxy's CPU (all threads, from
 * /proc; for agentgate also its main thread), with the load average beside every number, and where the whole
 * machine's CPU went (PostgreSQL, pgbench, the proxy, the rest; idle and steal): with two cores and no idle time,
 * tps is two cores divided by that sum.
 * Knobs: BENCH_CLIENTS=1,8  BENCH_MODES=simple,prepared  BENCH_TARGETS=direct,pgbouncer,nodepipe,agentgate (e.g. only
 * agentgate while profiling), BENCH_PROFILE=DIR (a V8 CPU profile of this process, main thread, for each agentgate
 * run only), BENCH_PERF=DIR (`perf record -g` of this process, all threads and the kernel, for each agentgate run; run
 * node with --perf-basic-prof to name JS frames), BENCH_STRACE=1 (system calls per statement of agentgate and the Node pipe, all threads, from
 * `strace -c`; strace slows the run, so its other numbers do not count), BENCH_THREADS=1 (CPU per statement of each thread),
 * BENCH_WARMUP=SECONDS (agentgate is warmed up with each client count and mode first, this long each; default
 * min(seconds, 5)), BENCH_WARMUP_SESSIONS=N (that warm-up as N pgbench runs, each with its own connections; default 3).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pgBenchGatewayYaml } from './bench-store.js';
import { startLauncher, type Launcher } from './launcher.js';
import { startTestGateway } from '../harness/gateway.js';
import {
  machineCpu,
  processCpu,
  cpuGroup,
  startProfile,
  type MachineCpu,
  statMinorFaults,
  statTicks,
  straceThreads,
  tickUs,
} from './process-cpu.js';
import { freePort, PASSWORD, startPostgres } from '../harness/postgres.js';

const run = promisify(execFile);
let launcher: Launcher | undefined;
const seconds = Number(process.argv[2] ?? 10);
const repetitions = Number(process.argv[3] ?? 3);
const list = (name: string, fallback: string): string[] => (process.env[name] ?? fallback).split(',');
const clientCounts = list('BENCH_CLIENTS', '1,8').map(Number);
const modes = list('BENCH_MODES', 'simple,prepared');
const targets = list('BENCH_TARGETS', 'direct,pgbouncer,nodepipe,agentgate');
const warmupSeconds = Number(process.env.BENCH_WARMUP ?? Math.min(seconds, 5));
const warmupSessions = Number(process.env.BENCH_WARMUP_SESSIONS ?? 3);

/**
 * Output straight to the file descriptor: console.log goes through Node's Writable stream code, the code the
 * relays' sockets write through, and a stdout stream between two runs makes V8 throw away that code's
 * optimisation for sockets, which the next run would then pay for while it is re-optimised.
 */
const say = (line: string): void => {
  writeSync(1, line + '\n');
};

/** CPU µs per thread name (comm), for the breakdown printed with BENCH_THREADS=1. */
function threadCpu(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name =
        Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      byName.set(name, (byName.get(name) ?? 0) + statTicks(`/proc/${pid}/task/${tid}/stat`) * tickUs);
      if (Number(tid) === pid) {
        byName.set('main-sys', statTicks(`/proc/${pid}/task/${tid}/stat`, true) * tickUs);
        // Minor page faults are kernel time too (fresh heap pages, Buffers, V8's new space after it shrinks).
        byName.set('main-faults', statMinorFaults(`/proc/${pid}/task/${tid}/stat`) * tickUs);
      }
      // Context switches (voluntary: the thread slept and was woken) count wakeups, which load does not inflate.
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const switches = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      byName.set('wakeups', (byName.get('wakeups') ?? 0) + switches * tickUs);
      if (Number(tid) === pid) byName.set('main-wakeups', switches * tickUs);
    } catch {
      // thread ended
    }
  }
  return byName;
}

function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
}

interface Result {
  target: string;
  tps: number;
  latencyMs: number;
  statements: number;
  /** proxy CPU per statement, µs (all threads / main thread) */
  cpuUs?: number;
  mainUs?: number;
  load: string;
  budget: CpuBudget;
}

/**
 * Where the machine's CPU went per statement during one run: on two cores shared by pgbench, PostgreSQL and the
 * proxy, a run whose machine is never idle is bound by the sum, so a proxy's tps at 8 clients follows from its
 * own CPU and what the others spend per statement beside it. `rest` is everything else that ran (the launcher,
 * an idle pgbouncer or gateway, the kernel's threads, any other benchmark on the machine).
 */
interface CpuBudget {
  busy: number;
  postgres: number;
  /** undefined when pgbench is spawned from this process (BENCH_SPAWN=direct) */
  pgbench?: number;
  idlePercent: number;
  stealPercent: number;
}

/**
 * pgbench started from the launcher (launcher.ts), forked once before the gateway ran: a fork of this process per
 * run would charge the gateway and the Node pipe, which run here, the copy-on-write faults a fork leaves behind.
 * `BENCH_SPAWN=direct` spawns it from this process, as before the ninth round.
 */
async function runPgbench(
  args: string[],
  env: Record<string, string>,
): Promise<{ stdout: string; clientUs?: number }> {
  if (launcher === undefined) {
    const { stdout } = await run('pgbench', args, { env: { ...process.env, ...env }, maxBuffer: 1 << 20 });
    return { stdout };
  }
  const environment = Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  const result = await launcher.launch({
    command: 'pgbench',
    args,
    env: { ...environment, ...env },
    stdout: 'capture',
  }).result;
  if (result.code !== 0) throw new Error(`pgbench exited ${result.code}: ${result.stderr}`);
  return { stdout: result.stdout, clientUs: result.clientMs * 1000 };
}

async function pgbench(
  port: number,
  user: string,
  password: string,
  mode: string,
  clients: number,
  duration = seconds,
) {
  const { stdout, clientUs } = await runPgbench(
    [
      '-n',
      '-S',
      '-M',
      mode,
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, 2)),
      '-T',
      String(duration),
    ].concat(['-h', '127.0.0.1', '-p', String(port), '-U', user, 'app']),
    { PGPASSWORD: password, PGSSLMODE: 'disable' },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const statements = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps) || !Number.isFinite(statements))
    throw new Error(`cannot read pgbench output:\n${stdout}`);
  return { tps, latencyMs, statements, clientUs };
}

async function startPgbouncer(pgPort: number): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-pgbouncer-'));
  const port = await freePort();
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  chownSync(dir, uid, gid);
  writeFileSync(path.join(dir, 'userlist.txt'), `"app" "${PASSWORD}"\n`);
  writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `app = host=127.0.0.1 port=${pgPort} dbname=app`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = session',
      'max_client_conn = 100',
      'default_pool_size = 20',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  for (const f of ['userlist.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), uid, gid);
  // Spawned directly as the postgres user (not via runuser) so that stop() can wait for its exit.
  const child: ChildProcess = spawn('pgbouncer', [path.join(dir, 'pgbouncer.ini')], {
    stdio: 'ignore',
    uid,
    gid,
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return {
    port,
    pid: child.pid!,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** With BENCH_PERF=DIR: `perf record` this process for most of the run (settles when perf has written its file). */
function startPerf(name: string): Promise<void> | undefined {
  const dir = process.env.BENCH_PERF;
  if (!dir) return undefined;
  const args = [
    'record',
    '-F',
    '1999',
    '-g',
    '-p',
    String(process.pid),
    '-o',
    path.join(dir, `${name}.data`),
  ];
  const record = [...args, '--', 'sleep', String(Math.max(1, seconds - 2))];
  if (launcher !== undefined) return launcher.launch({ command: 'perf', args: record }).result.then(() => {});
  const child = spawn('perf', record, { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** With BENCH_STRACE=1: count this process's system calls, all threads; the returned function stops and reports them. */
async function startStrace(): Promise<((statements: number) => Promise<string>) | undefined> {
  if (!process.env.BENCH_STRACE) return undefined;
  return straceThreads(readdirSync(`/proc/${process.pid}/task`));
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** The floor for any proxy hop in Node on this machine: a socket pipe in this process that neither parses nor decides. */
async function startNodePipe(pgPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const pipe = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: pgPort, noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => pipe.listen(0, '127.0.0.1', resolve));
  return {
    port: (pipe.address() as net.AddressInfo).port,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => pipe.close(resolve));
    },
  };
}

function cpuBudget(
  [machineBefore, machine]: [MachineCpu, MachineCpu],
  postgresUs: number,
  clientUs: number | undefined,
  statements: number,
): CpuBudget {
  const total =
    machine.busy +
    machine.idle +
    machine.steal -
    (machineBefore.busy + machineBefore.idle + machineBefore.steal);
  return {
    busy: (machine.busy - machineBefore.busy) / statements,
    postgres: postgresUs / statements,
    ...(clientUs !== undefined ? { pgbench: clientUs / statements } : {}),
    idlePercent: (100 * (machine.idle - machineBefore.idle)) / total,
    stealPercent: (100 * (machine.steal - machineBefore.steal)) / total,
  };
}

/** `busy 270 µs = postgres 120 + pgbench 30 + proxy 108 + rest 12; idle 1%, steal 0%` */
function describeBudget(budget: CpuBudget, proxyUs: number | undefined): string {
  const proxy = proxyUs ?? 0;
  const rest = budget.busy - budget.postgres - (budget.pgbench ?? 0) - proxy;
  return (
    `busy ${budget.busy.toFixed(0)} µs = postgres ${budget.postgres.toFixed(0)}` +
    ` + pgbench ${budget.pgbench === undefined ? '?' : budget.pgbench.toFixed(0)}` +
    ` + proxy ${proxy.toFixed(0)} + rest ${rest.toFixed(0)}` +
    `; idle ${budget.idlePercent.toFixed(0)}%, steal ${budget.stealPercent.toFixed(0)}%`
  );
}

async function main(): Promise<void> {
  launcher = startLauncher();
  const server = await startPostgres({ maxConnections: 100 });
  const bouncer = await startPgbouncer(server.port);
  const nodePipe = await startNodePipe(server.port);
  const gw = await startTestGateway(pgBenchGatewayYaml(server.port, PASSWORD));
  const postgresCpu = cpuGroup(
    'postgres',
    Number(readFileSync(path.join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n', 1)[0]),
  );
  say(`PostgreSQL's CPU read from its ${postgresCpu.kind}`);
  try {
    await runPgbench(
      ['-i', '-s', '4', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'app', 'app'],
      { PGPASSWORD: PASSWORD },
    );
    const gwPort = (gw.address('pg') as { port: number }).port;
    const token = await gw.token('bench', ['agents']);
    const endpoints: Record<string, { port: number; user: string; password: string; pid?: number }> = {
      direct: { port: server.port, user: 'app', password: PASSWORD },
      pgbouncer: { port: bouncer.port, user: 'app', password: PASSWORD, pid: bouncer.pid },
      nodepipe: { port: nodePipe.port, user: 'app', password: PASSWORD, pid: process.pid },
      agentgate: { port: gwPort, user: 'bench', password: token, pid: process.pid },
    };
    // Warm-up of every case measured: the first connection loads the SQL parser, and V8 compiles each mode's and
    // client count's paths on its helper threads during their first seconds (~250 optimisations in the first 6 s
    // at 1 client, ~15 in the third), which would otherwise be charged to the first measured run. Over several
    // connections: the first few sessions' new objects still throw optimised relay code away (a second and third
    // session deoptimised it, a fourth no longer did), and re-optimising it took 1.5–5 s of a measured run.
    for (const clients of clientCounts)
      for (const mode of modes)
        for (let s = 0; s < warmupSessions; s++)
          await pgbench(gwPort, 'bench', token, mode, clients, warmupSeconds);
    const results = new Map<string, Result[]>();
    for (const clients of clientCounts) {
      for (const mode of modes) {
        const key = `${clients} client${clients === 1 ? '' : 's'}, ${mode}`;
        const rows: Result[] = [];
        results.set(key, rows);
        for (let rep = 0; rep < repetitions; rep++) {
          // Rotate the order each repetition so no target always runs first after a pause.
          const order = targets.map((_, i) => targets[(i + rep) % targets.length]!);
          for (const target of order) {
            const e = endpoints[target]!;
            const before = e.pid === undefined ? undefined : processCpu(e.pid);
            const threadsBefore = e.pid === undefined ? undefined : threadCpu(e.pid);
            const load = loadAverage();
            const profiler = target === 'agentgate' ? await startProfile() : undefined;
            const perf = target === 'agentgate' ? startPerf(`${clients}c-${mode}-${rep}`) : undefined;
            // The Node pipe runs in this process too (agentgate idle meanwhile): the same count is its floor.
            const strace = e.pid === process.pid ? await startStrace() : undefined;
            const machineBefore = machineCpu();
            const postgresBefore = postgresCpu.usageUs();
            const { clientUs, ...r } = await pgbench(e.port, e.user, e.password, mode, clients);
            const machineAfter = machineCpu();
            const postgresAfter = postgresCpu.usageUs();
            const budget = cpuBudget(
              [machineBefore, machineAfter],
              postgresAfter - postgresBefore,
              clientUs,
              r.statements,
            );
            if (strace) say(`  ${target} system calls per statement: ${await strace(r.statements)}`);
            await profiler?.(`${clients}c-${mode}-${rep}`);
            await perf;
            const result: Result = { target, ...r, load, budget };
            if (before && e.pid !== undefined) {
              const after = processCpu(e.pid);
              result.cpuUs = (after.all - before.all) / r.statements;
              result.mainUs = (after.main - before.main) / r.statements;
            }
            rows.push(result);
            if (process.env.BENCH_THREADS && threadsBefore && e.pid !== undefined) {
              const parts = [...threadCpu(e.pid)].map(([name, us]) => {
                const perStatement = (us - (threadsBefore.get(name) ?? 0)) / r.statements;
                return name.endsWith('wakeups') || name.endsWith('faults')
                  ? `${name} ${(perStatement / tickUs).toFixed(2)}`
                  : `${name} ${perStatement.toFixed(0)}`;
              });
              say(`  ${target} threads, µs/stmt: ${parts.join(', ')}`);
            }
            say(
              `${key.padEnd(20)} ${target.padEnd(10)} ${r.tps.toFixed(0).padStart(7)} tps ${r.latencyMs.toFixed(3)} ms` +
                (result.cpuUs === undefined
                  ? ''
                  : `  cpu ${result.cpuUs.toFixed(0)} µs/stmt (main thread ${result.mainUs!.toFixed(0)})`) +
                `  load ${load}`,
            );
            say(`  machine per statement: ${describeBudget(budget, result.cpuUs)}`);
          }
        }
      }
    }
    say(`\nmedians of ${repetitions} interleaved runs of ${seconds} s (pgbench -S):`);
    say(
      'case                 | direct tps / lat | pgbouncer tps / +lat / cpu | node pipe tps / +lat / cpu (main) | agentgate tps / +lat / cpu (main) | ratios: tps vs pgbouncer, +lat, cpu',
    );
    for (const [key, rows] of results) {
      const of = (target: string) => rows.filter((r) => r.target === target);
      const m = (target: string, f: (r: Result) => number | undefined) => {
        const xs = of(target)
          .map(f)
          .filter((x): x is number => x !== undefined);
        return xs.length ? median(xs) : NaN;
      };
      const direct = { tps: m('direct', (r) => r.tps), lat: m('direct', (r) => r.latencyMs) };
      const side = (target: string) => ({
        tps: m(target, (r) => r.tps),
        added: m(target, (r) => r.latencyMs) - direct.lat,
        cpu: m(target, (r) => r.cpuUs),
        main: m(target, (r) => r.mainUs),
      });
      const b = side('pgbouncer');
      const p = side('nodepipe');
      const a = side('agentgate');
      const loads = rows.map((r) => r.load).join(' ');
      // A target left out of BENCH_TARGETS (or `direct`, which added latency needs) prints as "—", not NaN.
      const f = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
      say(
        `${key.padEnd(20)} | ${f(direct.tps, 0)} / ${f(direct.lat, 3)} ms` +
          ` | ${f(b.tps, 0)} / +${f(b.added, 3)} ms / ${f(b.cpu, 0)} µs` +
          ` | ${f(p.tps, 0)} / +${f(p.added, 3)} ms / ${f(p.cpu, 0)} µs (${f(p.main, 0)})` +
          ` | ${f(a.tps, 0)} / +${f(a.added, 3)} ms / ${f(a.cpu, 0)} µs (${f(a.main, 0)})` +
          ` | ${f(a.tps / b.tps, 2)}× ${f(a.added / b.added, 1)}× ${f(a.cpu / b.cpu, 1)}×` +
          `  (load ${loads})`,
      );
    }
    say('\nCPU per statement on the whole machine (medians; see CpuBudget):');
    for (const [key, rows] of results)
      for (const target of targets) {
        const mine = rows.filter((r) => r.target === target);
        if (mine.length === 0) continue;
        const m = (f: (r: Result) => number | undefined): number | undefined => {
          const xs = mine.map(f).filter((x): x is number => x !== undefined);
          return xs.length ? median(xs) : undefined;
        };
        const pgbench = m((r) => r.budget.pgbench);
        const budget: CpuBudget = {
          busy: m((r) => r.budget.busy)!,
          postgres: m((r) => r.budget.postgres)!,
          idlePercent: m((r) => r.budget.idlePercent)!,
          stealPercent: m((r) => r.budget.stealPercent)!,
          ...(pgbench !== undefined ? { pgbench } : {}),
        };
        say(
          `${key.padEnd(20)} ${target.padEnd(10)} ${describeBudget(
            budget,
            m((r) => r.cpuUs),
          )}`,
        );
      }
  } finally {
    await gw.stop();
    await nodePipe.stop();
    await bouncer.stop();
    await server.stop();
    postgresCpu.close();
    launcher?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
