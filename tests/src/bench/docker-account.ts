/**
 * Where a sequential `GET /containers/json` spends the gateway's main thread, against Node's floor relays, in one
 * process: one dockerd; this build's gateway with the default commit window and with `ACCOUNT_WINDOW` (so the
 * difference is the commit's share), optionally a second build's (`ACCOUNT_ROOT2`, e.g. a measurement copy that
 * records nothing); the `node onread` and `node data` relays (node-relays.ts), each on TCP and on a unix socket;
 * and dockerd itself. A client process sends batches to each target in turn, the order rotated every round. Per
 * batch, of this process's main thread: CPU and run-queue wait (`schedstat`), timeslices, voluntary switches (each
 * a sleep and a wake), involuntary ones (preemptions), minor page faults, user/system ticks; all threads' CPU and
 * switches; garbage-collection time (`PerformanceObserver`); the client's p50.
 *
 * Run: node tests/dist/bench/docker-account.js [rounds=20] [batch=200]
 * Knobs: ACCOUNT_WINDOW=1s (the second gateway's `store.commitWindow`), ACCOUNT_ROOT2=DIR and ACCOUNT_ROOT2_NAME,
 * ACCOUNT_TARGETS=name,name (which targets; the names as printed), ACCOUNT_PERF=NAME:DIR (`perf record -g` of the
 * main thread during 8,000 more requests to that target after the rounds: run node with `--perf-basic-prof`, one
 * perf target per process, since code moved by the GC leaves stale names in the map), ACCOUNT_STRACE=NAME (system
 * calls of the main thread per request over 2,000 more).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type net from 'node:net';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { startDockerd } from '../harness/dockerd.js';
import { startTestGateway, type TestGateway } from '../harness/gateway.js';
import { dockerBenchGatewayYaml } from './bench-store.js';
import { nodeRelay } from './node-relays.js';
import { startBatchClient } from './batch-client.js';

type Target = { host: string; port: number } | { socketPath: string };
interface Named {
  readonly name: string;
  readonly target: Target;
  readonly headers: Record<string, string>;
}
interface Thread {
  cpuNs: number;
  waitNs: number;
  slices: number;
  voluntary: number;
  involuntary: number;
  minorFaults: number;
  userTicks: number;
  systemTicks: number;
}
interface Batch {
  mainUs: number;
  waitUs: number;
  slices: number;
  voluntary: number;
  involuntary: number;
  faults: number;
  userTicks: number;
  systemTicks: number;
  allUs: number;
  allSwitches: number;
  gcUs: number;
  p50Us: number;
}

const rounds = Number(process.argv[2] ?? 20);
const batch = Number(process.argv[3] ?? 200);

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
}).observe({ entryTypes: ['gc'] });

function thread(tid: string): Thread {
  try {
    const [cpuNs, waitNs, slices] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8')
      .split(' ')
      .map(Number);
    const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised name: minflt is the 10th field of the file, utime the 14th, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      cpuNs: cpuNs!,
      waitNs: waitNs!,
      slices: slices!,
      voluntary: Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]),
      involuntary: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]),
      minorFaults: Number(fields[7]),
      userTicks: Number(fields[11]),
      systemTicks: Number(fields[12]),
    };
  } catch {
    // the thread ended between the listing and the read
    return {
      cpuNs: 0,
      waitNs: 0,
      slices: 0,
      voluntary: 0,
      involuntary: 0,
      minorFaults: 0,
      userTicks: 0,
      systemTicks: 0,
    };
  }
}

function sample(): { main: Thread; allNs: number; allSwitches: number; gcMs: number } {
  let allNs = 0;
  let allSwitches = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    const t = thread(tid);
    allNs += t.cpuNs;
    allSwitches += t.voluntary + t.involuntary;
  }
  return { main: thread(String(process.pid)), allNs, allSwitches, gcMs };
}

async function gatewayTargets(
  start: typeof startTestGateway,
  dockerdSocket: string,
  unixPath: string,
  tag: string,
): Promise<{ gw: TestGateway; targets: Named[] }> {
  const gw = await start(dockerBenchGatewayYaml(dockerdSocket, unixPath));
  const { port } = gw.address('docker') as { port: number };
  const auth = { authorization: `Bearer ${await gw.token('bench', ['agents'])}` };
  return {
    gw,
    targets: [
      { name: `${tag} tcp`, target: { host: '127.0.0.1', port }, headers: auth },
      { name: `${tag} unix`, target: { socketPath: unixPath }, headers: {} },
    ],
  };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

async function main(): Promise<void> {
  const dockerd = await startDockerd();
  const gateways: TestGateway[] = [];
  const servers: net.Server[] = [];
  try {
    const all: Named[] = [{ name: 'direct', target: { socketPath: dockerd.socket }, headers: {} }];
    const window = process.env['ACCOUNT_WINDOW'] ?? '1s';
    const saved = process.env['BENCH_COMMIT_WINDOW'];
    for (const [i, w] of [saved, window].entries()) {
      if (w === undefined) delete process.env['BENCH_COMMIT_WINDOW'];
      else process.env['BENCH_COMMIT_WINDOW'] = w;
      const tag = i === 0 ? 'agentgate' : `agentgate w${w}`;
      const arm = await gatewayTargets(
        startTestGateway,
        dockerd.socket,
        join(dockerd.dir, `g${i}.sock`),
        tag,
      );
      gateways.push(arm.gw);
      all.push(...arm.targets);
    }
    if (saved === undefined) delete process.env['BENCH_COMMIT_WINDOW'];
    else process.env['BENCH_COMMIT_WINDOW'] = saved;
    const root2 = process.env['ACCOUNT_ROOT2'];
    if (root2) {
      const harness = (await import(
        join(resolve(root2), 'tests/dist/harness/gateway.js')
      )) as typeof import('../harness/gateway.js');
      const tag = process.env['ACCOUNT_ROOT2_NAME'] ?? 'root2';
      const arm = await gatewayTargets(
        harness.startTestGateway,
        dockerd.socket,
        join(dockerd.dir, 'r2.sock'),
        tag,
      );
      gateways.push(arm.gw);
      all.push(...arm.targets);
    }
    for (const kind of ['onread', 'data'] as const) {
      const tcp = await nodeRelay(kind, dockerd.socket);
      const unixPath = join(dockerd.dir, `node-${kind}.sock`);
      servers.push(tcp, await nodeRelay(kind, dockerd.socket, unixPath));
      all.push(
        {
          name: `node ${kind} tcp`,
          target: { host: '127.0.0.1', port: (tcp.address() as net.AddressInfo).port },
          headers: {},
        },
        { name: `node ${kind} unix`, target: { socketPath: unixPath }, headers: {} },
      );
    }
    const only = process.env['ACCOUNT_TARGETS']?.split(',');
    const used = only ? all.filter((t) => only.includes(t.name)) : all;
    const run = await dockerd.docker(['run', '-d', '--network', 'none', dockerd.image, 'sleep', '3600']);
    if (run.code !== 0) throw new Error(run.stderr);

    const client = startBatchClient(used);
    const ask = client.ask;
    for (let i = 0; i < used.length; i++) await ask(i, 1000); // warm-up: V8 settles each relay's code first

    const batches: Batch[][] = used.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = used.map((_, i) => i);
      for (let k = 0; k < round % used.length; k++) order.push(order.shift()!);
      for (const i of order) {
        const a = sample();
        const p50Us = await ask(i, batch);
        const b = sample();
        batches[i]!.push({
          mainUs: (b.main.cpuNs - a.main.cpuNs) / 1e3 / batch,
          waitUs: (b.main.waitNs - a.main.waitNs) / 1e3 / batch,
          slices: (b.main.slices - a.main.slices) / batch,
          voluntary: (b.main.voluntary - a.main.voluntary) / batch,
          involuntary: (b.main.involuntary - a.main.involuntary) / batch,
          faults: (b.main.minorFaults - a.main.minorFaults) / batch,
          userTicks: b.main.userTicks - a.main.userTicks,
          systemTicks: b.main.systemTicks - a.main.systemTicks,
          allUs: (b.allNs - a.allNs) / 1e3 / batch,
          allSwitches: (b.allSwitches - a.allSwitches) / batch,
          gcUs: ((b.gcMs - a.gcMs) * 1e3) / batch,
          p50Us,
        });
      }
    }

    const perf = process.env['ACCOUNT_PERF'];
    if (perf) {
      const [name, dir] = perf.split(':') as [string, string];
      const i = used.findIndex((t) => t.name === name);
      const file = join(dir, `${name.replace(/ /g, '_')}.data`);
      const recorder = spawn('perf', ['record', '-F', '2999', '-g', '-t', String(process.pid), '-o', file], {
        stdio: 'ignore',
      });
      await new Promise((r) => setTimeout(r, 500));
      const a = sample();
      await ask(i, 8000);
      const b = sample();
      const exited = new Promise((r) => recorder.once('exit', r));
      recorder.kill('SIGINT');
      await exited;
      console.log(
        `perf of ${name}: ${file}, 8000 requests, main thread ${((b.main.cpuNs - a.main.cpuNs) / 8e6).toFixed(1)} µs each`,
      );
    }
    const straced = process.env['ACCOUNT_STRACE'];
    if (straced) {
      const i = used.findIndex((t) => t.name === straced);
      const tracer = spawn('strace', ['-c', '-p', String(process.pid)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let report = '';
      tracer.stderr.setEncoding('utf8').on('data', (d: string) => (report += d));
      await new Promise((r) => setTimeout(r, 800));
      await ask(i, 2000);
      const exited = new Promise((r) => tracer.once('exit', r));
      tracer.kill('SIGINT');
      await exited;
      const calls = [...report.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/gm)]
        .map(([, n, call]) => `${call} ${(Number(n) / 2000).toFixed(2)}`)
        .join(', ');
      console.log(`system calls of the main thread per request, ${straced}: ${calls}`);
    }
    client.quit();

    const directP50 = median(
      batches[used.findIndex((t) => t.name === 'direct')]?.map((b) => b.p50Us) ?? [NaN],
    );
    console.log(
      `${rounds} rounds of ${batch} requests per target; load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(
      'target | main thread µs, median (p25–p75) | of it system | run-queue wait µs | voluntary / involuntary ' +
        "switches | timeslices | minor faults | all threads µs | all threads' switches | GC µs | p50 µs (× direct)",
    );
    for (const [i, t] of used.entries()) {
      const xs = batches[i]!;
      const main = xs.map((b) => b.mainUs).sort((a, b) => a - b);
      const user = xs.reduce((s, b) => s + b.userTicks, 0);
      const system = xs.reduce((s, b) => s + b.systemTicks, 0);
      const p50 = median(xs.map((b) => b.p50Us));
      console.log(
        `${t.name} | ${median(main).toFixed(1)} (${main[Math.floor(main.length / 4)]!.toFixed(0)}–` +
          `${main[Math.floor((main.length * 3) / 4)]!.toFixed(0)}) | ${((system / (user + system || 1)) * 100).toFixed(0)}% | ` +
          `${median(xs.map((b) => b.waitUs)).toFixed(0)} | ${median(xs.map((b) => b.voluntary)).toFixed(2)} / ` +
          `${median(xs.map((b) => b.involuntary)).toFixed(2)} | ${median(xs.map((b) => b.slices)).toFixed(2)} | ` +
          `${mean(xs.map((b) => b.faults)).toFixed(3)} | ${median(xs.map((b) => b.allUs)).toFixed(1)} | ` +
          `${median(xs.map((b) => b.allSwitches)).toFixed(2)} | ${mean(xs.map((b) => b.gcUs)).toFixed(1)} | ` +
          `${p50.toFixed(0)} (${(p50 / directP50).toFixed(2)}×)`,
      );
    }
  } finally {
    for (const gw of gateways) await gw.stop();
    for (const server of servers) server.close();
    await dockerd.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
