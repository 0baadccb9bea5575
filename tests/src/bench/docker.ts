/**
 * Benchmark (issue 6 §9): latency of `GET /containers/json` and `GET /_ping` (sequential, keep-alive, p50/p99)
 * and the throughput of a 100 MB `docker exec … head -c` stream, straight to dockerd vs through agentgate, in one
 * run against a real dockerd started by the harness. The gateway records everything (transcript on).
 * Run: npx tsc -b tests && node tests/dist/bench/docker.js [requests] [megabytes] [stream runs]
 * Direct and gateway measurements are interleaved so both see the same machine load; the load client is a process
 * of its own, so this process's CPU is the gateway's.
 * Targets: ≤ 1.6× direct latency and ≤ 100 µs of main-thread CPU per `GET /containers/json`, ≥ 0.8× direct stream
 * throughput.
 * Knobs: BENCH_PARTS=latency,cpu,exec (which parts run), BENCH_PROFILE=DIR (a V8 CPU profile of the main thread
 * during the first CPU round), BENCH_STRACE=1 (system calls per request of the gateway's threads in the first CPU
 * round, and of socat's process; strace slows that round, so its CPU figure does not count), BENCH_PERF=DIR
 * (`perf record -g` of each relay's main thread in the first CPU round), BENCH_CPU_ROUNDS=3 and
 * BENCH_CPU_TARGETS=agentgate,node pipe,socat (how many CPU rounds, of which relays: for A/B runs of two builds;
 * also `agentgate unix` and the Node floors `node data`, `node onread`, each with ` unix`, see nodeRelay),
 * BENCH_CONTAINERS=N (N more running containers, so `/containers/json` answers with N + 1).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { startDockerd } from '../harness/dockerd.js';
import { dockerBenchGatewayYaml } from './bench-store.js';
import { startTestGateway } from '../harness/gateway.js';
import { startLauncher, type Launcher } from './launcher.js';
import { nodeRelay } from './node-relays.js';
import { startProfile, statTicks, straceThreads, tickUs } from './process-cpu.js';

const requests = Number(process.argv[2] ?? 2000);
const megabytes = Number(process.argv[3] ?? 100);
const streamRuns = Number(process.argv[4] ?? 3);
const parts = new Set((process.env.BENCH_PARTS ?? 'latency,cpu,exec').split(','));

type Target = { socketPath: string } | { host: string; port: number };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The load client runs in a process of its own (like the docker CLI would), so its HTTP parsing neither queues
 * behind the gateway's work on the main thread nor counts in this process's CPU: every thread of this process is
 * the gateway's (and the harness's, idle while measuring).
 */
const latencyClientSource = `
const http = require('node:http');
const { targets, path, n, batch } = JSON.parse(process.argv[1]);
// One keep-alive connection per target; batches alternate between targets so both see the same machine load.
const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
const once = (i) => new Promise((resolve, reject) => {
  const req = http.request({ ...targets[i].target, agent: agents[i], path, method: 'GET', headers: targets[i].headers }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error('status ' + res.statusCode))));
  });
  req.on('error', reject);
  req.end();
});
(async () => {
  const times = targets.map(() => []);
  for (let i = 0; i < targets.length; i++) for (let k = 0; k < 100; k++) await once(i);
  process.stdout.write('warm\\n');
  for (let done = 0; done < n; done += batch) {
    for (let i = 0; i < targets.length; i++) {
      for (let k = 0; k < batch; k++) {
        const t0 = process.hrtime.bigint();
        await once(i);
        times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  // Connections stay open until the parent has read its figures (socat's per-connection process ends with them).
  process.stdout.write('done\\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  agents.forEach((a) => a.destroy());
  process.stdout.write(JSON.stringify(times) + '\\n');
  process.stdin.destroy();
})().catch((err) => { process.stderr.write(String(err) + '\\n'); process.exit(1); });
`;

interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

interface LatencyTarget {
  readonly target: Target;
  readonly headers: Record<string, string>;
}

/**
 * The benchmark's clients (the load client, docker exec) start from the launcher (launcher.ts), forked once before
 * the gateway ran: a fork of this process per round would charge the gateway and the Node relays, which run here,
 * the copy-on-write faults a fork leaves behind. `BENCH_SPAWN=direct` spawns them from this process as before.
 */
let launcher: Launcher | undefined;

interface Client {
  write(text: string): void;
  readonly exit: Promise<number | null>;
}

/** A client process with a piped stdin; its stdout goes to `onText`, or is only counted into `bytes`. */
function startClient(
  command: string,
  args: string[],
  onText?: (text: string) => void,
  env?: Record<string, string>,
): Client & { bytes(): number } {
  if (launcher !== undefined) {
    let bytes = 0;
    const launched = launcher.launch(
      { command, args, stdin: 'pipe', stdout: onText ? 'stream' : 'count', ...(env ? { env } : {}) },
      onText,
    );
    return {
      write: launched.write,
      exit: launched.result.then((r) => {
        bytes = r.bytes;
        if (r.code !== 0) process.stderr.write(r.stderr);
        return r.code;
      }),
      bytes: () => bytes,
    };
  }
  let bytes = 0;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], ...(env ? { env } : {}) });
  if (onText) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onText);
  } else child.stdout.on('data', (c: Buffer) => (bytes += c.length));
  return {
    write: (text) => void child.stdin.write(text),
    exit: new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    }),
    bytes: () => bytes,
  };
}

/**
 * Sequential keep-alive requests from a client process; `onWarm` runs once every target has had its 100 warm-up
 * requests (the measured part starts then) and `onDone` once the client reported.
 */
async function latency(
  targets: readonly LatencyTarget[],
  path: string,
  n: number,
  hooks: { onWarm?: () => void | Promise<void>; onDone?: () => void | Promise<void> } = {},
): Promise<Percentiles[]> {
  let out = '';
  let warmed: Promise<void> | undefined;
  let finished: Promise<void> | undefined;
  const child = startClient(
    process.execPath,
    ['-e', latencyClientSource, JSON.stringify({ targets, path, n, batch: 50 })],
    (text) => {
      out += text;
      if (!warmed && out.startsWith('warm\n')) {
        warmed = Promise.resolve(hooks.onWarm?.());
        out = out.slice(5);
      }
      if (warmed && !finished && out.startsWith('done\n')) {
        out = out.slice(5);
        finished = warmed.then(() => hooks.onDone?.()).finally(() => child.write('go\n'));
      }
    },
  );
  const code = await child.exit;
  await finished;
  if (code !== 0) throw new Error(`load client exited ${code}`);
  const result = JSON.parse(out) as number[][];
  return result.map((times) => {
    const sorted = times.sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  });
}

/** CPU of a process, µs: all threads, the main thread (the gateway's event loop), and its kernel part. */
interface CpuSample {
  readonly all: number;
  readonly main: number;
  readonly mainSys: number;
}

function cpuOf(pid: number): CpuSample {
  const main = `/proc/${pid}/task/${pid}/stat`;
  return {
    all: statTicks(`/proc/${pid}/stat`) * tickUs,
    main: statTicks(main) * tickUs,
    mainSys: statTicks(main, true) * tickUs,
  };
}

/**
 * With BENCH_STRACE=1: count the system calls of `pid`'s main thread and, apart, of its other threads (each by id,
 * without -f, so children spawned later are not followed); the returned function stops and reports them per request.
 */
async function startStrace(pid: number): Promise<((requests: number) => Promise<string>) | undefined> {
  if (!process.env.BENCH_STRACE) return undefined;
  const others = readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== String(pid));
  const main = await straceThreads([String(pid)]);
  const rest = others.length > 0 ? await straceThreads(others) : undefined;
  return async (requests) =>
    `main thread: ${await main(requests)}${rest ? ` | other threads: ${await rest(requests)}` : ''}`;
}

/**
 * With BENCH_PERF=DIR: `perf record -g` of `pid`'s main thread (user and kernel, on CPU only, unlike the V8
 * profile's wall-clock samples; run node with --perf-basic-prof to name JS frames) into DIR/NAME.data; the returned
 * function stops it.
 */
async function startPerf(pid: number, name: string): Promise<(() => Promise<void>) | undefined> {
  const dir = process.env.BENCH_PERF;
  if (!dir) return undefined;
  const child = spawn(
    'perf',
    ['record', '-F', '1999', '-g', '-t', String(pid), '-o', join(dir, `${name}.data`)],
    { stdio: 'ignore' },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  };
}

async function execStream(
  host: string,
  configDir: string,
  container: string,
  bytes: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = startClient(
    'docker',
    ['--config', configDir, 'exec', container, 'head', '-c', String(bytes), '/dev/zero'],
    undefined,
    { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: configDir, DOCKER_HOST: host },
  );
  const code = await child.exit;
  if (code !== 0) throw new Error(`docker exec exited ${code}`);
  const received = child.bytes();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (received !== bytes) throw new Error(`received ${received} of ${bytes} bytes`);
  return bytes / seconds / (1024 * 1024);
}

/**
 * socat relaying TCP to the dockerd socket, when installed: a relay in C and in its own process, so its figure says
 * what one more process hop costs on this machine before any parsing (issue 6 compares with Go socket proxies).
 */
async function startSocatRelay(socket: string): Promise<{ port: number; child: ChildProcess } | undefined> {
  if (spawnSync('socat', ['-V'], { stdio: 'ignore' }).status !== 0) return undefined;
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const child = spawn(
    'socat',
    [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,nodelay`, `UNIX-CONNECT:${socket}`],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return { port, child };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill();
  return undefined;
}

async function main(): Promise<void> {
  launcher = startLauncher();
  const dockerd = await startDockerd();
  const gw = await startTestGateway(
    dockerBenchGatewayYaml(dockerd.socket, join(dockerd.dir, 'agentgate.sock')),
  );
  try {
    const { port } = gw.address('docker') as { port: number };
    const token = await gw.token('bench', ['agents']);
    const direct: Target = { socketPath: dockerd.socket };
    const viaGateway: Target = { host: '127.0.0.1', port };
    // The same transport as direct (a unix socket, fixed identity): what a local agent's DOCKER_HOST would use.
    const viaGatewayUnix: Target = { socketPath: join(dockerd.dir, 'agentgate.sock') };
    const auth = { authorization: `Bearer ${token}` };
    // The floor for any proxy hop in Node on this machine: relays that neither parse nor decide (nodeRelay).
    const pipe = await nodeRelay('pipe', dockerd.socket);
    const pipePort = (pipe.address() as net.AddressInfo).port;
    const viaPipe: Target = { host: '127.0.0.1', port: pipePort };
    const floors: { name: string; server: net.Server; target: Target }[] = [];
    for (const kind of ['data', 'onread'] as const) {
      const server = await nodeRelay(kind, dockerd.socket);
      floors.push({
        name: `node ${kind}`,
        server,
        target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
      });
      const unixPath = join(dockerd.dir, `node-${kind}.sock`);
      floors.push({
        name: `node ${kind} unix`,
        server: await nodeRelay(kind, dockerd.socket, unixPath),
        target: { socketPath: unixPath },
      });
    }
    const socat = await startSocatRelay(dockerd.socket);
    const run = await dockerd.docker([
      'run',
      '-d',
      '--name',
      'bench',
      '--network',
      'none',
      dockerd.image,
      'sleep',
      '600',
    ]);
    if (run.code !== 0) throw new Error(run.stderr);
    // More running containers make `GET /containers/json` (running ones only) answer what a busy host would
    // (~650 bytes of JSON each).
    for (let i = 0; i < Number(process.env.BENCH_CONTAINERS ?? 0); i++) {
      const more = await dockerd.docker(['run', '-d', '--network', 'none', dockerd.image, 'sleep', '600']);
      if (more.code !== 0) throw new Error(more.stderr);
    }
    const rows: string[] = [];
    for (const path of parts.has('latency') ? ['/containers/json', '/_ping'] : []) {
      const [d, g, p, u, ...rest] = (await latency(
        [
          { target: direct, headers: {} },
          { target: viaGateway, headers: auth },
          { target: viaPipe, headers: {} },
          { target: viaGatewayUnix, headers: {} },
          ...floors.map((f) => ({ target: f.target, headers: {} })),
          ...(socat ? [{ target: { host: '127.0.0.1', port: socat.port }, headers: {} }] : []),
        ],
        path,
        requests,
      )) as [Percentiles, Percentiles, Percentiles, Percentiles, ...Percentiles[]];
      const c = socat ? rest[floors.length] : undefined;
      if (c)
        rows.push(
          `GET ${path.padEnd(16)} reference: socat, a C relay in its own process p50 ${c.p50.toFixed(3)} ms = ${(c.p50 / d.p50).toFixed(2)}x direct`,
        );
      rows.push(
        `GET ${path.padEnd(16)} reference: a bare Node byte pipe (no parsing, no decision) p50 ${p.p50.toFixed(3)} ms = ${(p.p50 / d.p50).toFixed(2)}x direct`,
      );
      floors.forEach((f, i) =>
        rows.push(
          `GET ${path.padEnd(16)} reference: ${f.name.padEnd(16)} p50 ${rest[i]!.p50.toFixed(3)} ms = ${(rest[i]!.p50 / d.p50).toFixed(2)}x direct`,
        ),
      );
      rows.push(`GET ${path.padEnd(16)} load average ${loadavg()[0]!.toFixed(1)}`);
      rows.push(
        `GET ${path.padEnd(16)} direct p50 ${d.p50.toFixed(3)} ms p99 ${d.p99.toFixed(3)} ms | agentgate p50 ${g.p50.toFixed(3)} ms p99 ${g.p99.toFixed(3)} ms | ratio p50 ${(g.p50 / d.p50).toFixed(2)}x p99 ${(g.p99 / d.p99).toFixed(2)}x`,
      );
      rows.push(
        `GET ${path.padEnd(16)} agentgate on a unix socket (same transport as direct) p50 ${u.p50.toFixed(3)} ms p99 ${u.p99.toFixed(3)} ms | ratio p50 ${(u.p50 / d.p50).toFixed(2)}x p99 ${(u.p99 / d.p99).toFixed(2)}x`,
      );
    }
    // CPU per request, sequential keep-alive requests after the warm-up, read from /proc: the gateway (this process),
    // and for scale the relays that do nothing: the bare Node pipe (also on this process's main thread, the gateway
    // idle meanwhile) and socat's process serving the connection.
    const cpuTargets: { name: string; target: LatencyTarget; pid: () => number | undefined }[] = [
      { name: 'agentgate', target: { target: viaGateway, headers: auth }, pid: () => process.pid },
      { name: 'agentgate unix', target: { target: viaGatewayUnix, headers: {} }, pid: () => process.pid },
      { name: 'node pipe', target: { target: viaPipe, headers: {} }, pid: () => process.pid },
      ...floors.map((f) => ({
        name: f.name,
        target: { target: f.target, headers: {} },
        pid: () => process.pid,
      })),
    ];
    if (socat)
      cpuTargets.push({
        name: 'socat',
        target: { target: { host: '127.0.0.1', port: socat.port }, headers: {} },
        // socat forks a process per connection: the one serving the client's keep-alive connection.
        pid: () => {
          const pid = socat.child.pid;
          const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ');
          return children[0] ? Number(children[0]) : undefined;
        },
      });
    const cpuRounds = parts.has('cpu') ? Number(process.env.BENCH_CPU_ROUNDS ?? 3) : 0;
    const cpuNames = new Set((process.env.BENCH_CPU_TARGETS ?? 'agentgate,node pipe,socat').split(','));
    for (let round = 0; round < cpuRounds; round++) {
      for (const { name, target, pid: pidOf } of cpuTargets) {
        if (!cpuNames.has(name)) continue;
        let pid: number | undefined;
        let before: CpuSample | undefined;
        let used: CpuSample | undefined;
        let started = 0;
        let wall = 0;
        let profile: ((name: string) => Promise<void>) | undefined;
        let strace: ((requests: number) => Promise<string>) | undefined;
        let perf: (() => Promise<void>) | undefined;
        await latency([target], '/containers/json', requests, {
          onWarm: async () => {
            pid = pidOf();
            if (round === 0 && name === 'agentgate') profile = await startProfile();
            if (round === 0 && pid !== undefined) strace = await startStrace(pid);
            if (round === 0 && pid !== undefined)
              perf = await startPerf(pid, `docker-${name.replaceAll(' ', '-')}`);
            before = pid === undefined ? undefined : cpuOf(pid);
            started = performance.now();
          },
          onDone: () => {
            wall = performance.now() - started;
            used = pid === undefined ? undefined : cpuOf(pid);
          },
        });
        await profile?.('docker-containers-json');
        await perf?.();
        const calls = strace ? await strace(requests) : undefined;
        if (!before || !used) continue;
        const per = (us: number): string => (us / requests).toFixed(0);
        rows.push(
          `GET /containers/json ${name.padEnd(16)} CPU per request: main thread ${per(used.main - before.main)} µs (kernel ${per(used.mainSys - before.mainSys)}), all threads ${per(used.all - before.all)} µs (wall ${per(wall * 1000)} µs/request, load ${loadavg()[0]!.toFixed(1)})`,
        );
        if (calls) rows.push(`GET /containers/json ${name.padEnd(16)} system calls per request: ${calls}`);
      }
    }
    if (!parts.has('exec')) {
      console.log(rows.join('\n'));
      pipe.close();
      for (const f of floors) f.server.close();
      socat?.child.kill();
      return;
    }
    const configDir = join(dockerd.dir, 'bench-cli');
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({ HttpHeaders: { Authorization: `Bearer ${token}` } }),
    );
    const bytes = megabytes * 1024 * 1024;
    await execStream(`unix://${dockerd.socket}`, configDir, 'bench', 1024 * 1024); // warm-up
    // Alternate direct, gateway and bare-pipe runs; report the median of each. Under load the spread between runs
    // is large, so the pipe (same TCP hop, no parsing, no recording) says what any Node proxy could reach.
    const directRuns: number[] = [];
    const gatewayRuns: number[] = [];
    const pipeRuns: number[] = [];
    for (let i = 0; i < streamRuns; i++) {
      directRuns.push(await execStream(`unix://${dockerd.socket}`, configDir, 'bench', bytes));
      gatewayRuns.push(await execStream(`tcp://127.0.0.1:${port}`, configDir, 'bench', bytes));
      pipeRuns.push(await execStream(`tcp://127.0.0.1:${pipePort}`, configDir, 'bench', bytes));
    }
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const runs = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    rows.push(
      `docker exec runs in order (MiB/s): direct ${runs(directRuns)} | agentgate ${runs(gatewayRuns)} | pipe ${runs(pipeRuns)}`,
    );
    const directMiBs = median(directRuns);
    const gatewayMiBs = median(gatewayRuns);
    const pipeMiBs = median(pipeRuns);
    rows.push(
      `docker exec head -c ${megabytes}MB reference: a bare Node byte pipe ${pipeMiBs.toFixed(1)} MiB/s = ${(pipeMiBs / directMiBs).toFixed(2)}x direct`,
    );
    rows.push(
      `docker exec head -c ${megabytes}MB (median of ${streamRuns}): direct ${directMiBs.toFixed(1)} MiB/s | agentgate ${gatewayMiBs.toFixed(1)} MiB/s | ratio ${(gatewayMiBs / directMiBs).toFixed(2)}x`,
    );
    console.log(rows.join('\n'));
    pipe.close();
    for (const f of floors) f.server.close();
    socat?.child.kill();
  } finally {
    await gw.stop();
    await dockerd.stop();
    launcher?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
