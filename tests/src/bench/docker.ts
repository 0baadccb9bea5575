/**
 * Benchmark (issue 6 §9): latency of `GET /containers/json` and `GET /_ping` (sequential, keep-alive, p50/p99)
 * and the throughput of a 100 MB `docker exec … head -c` stream, straight to dockerd vs through agentgate, in one
 * run against a real dockerd started by the harness. The gateway records everything (transcript on).
 * Run: npx tsc -b tests && node tests/dist/bench/docker.js [requests] [megabytes] [stream runs]
 * Direct and gateway measurements are interleaved so both see the same machine load.
 * Targets: ≤ 1.3× direct latency, ≥ 0.8× direct stream throughput.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { startDockerd } from '../harness/dockerd.js';
import { startTestGateway } from '../harness/gateway.js';

const requests = Number(process.argv[2] ?? 2000);
const megabytes = Number(process.argv[3] ?? 100);
const streamRuns = Number(process.argv[4] ?? 3);

type Target = { socketPath: string } | { host: string; port: number };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The load client runs in a worker thread (its own event loop, like the docker CLI would be its own process), so
 * its HTTP parsing does not queue behind the gateway's work on the main thread.
 */
const latencyWorkerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { targets, path, n, batch } = workerData;
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
  for (let done = 0; done < n; done += batch) {
    for (let i = 0; i < targets.length; i++) {
      for (let k = 0; k < batch; k++) {
        const t0 = process.hrtime.bigint();
        await once(i);
        times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  agents.forEach((a) => a.destroy());
  parentPort.postMessage(times);
})().catch((err) => parentPort.postMessage({ error: String(err) }));
`;

interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

interface LatencyTarget {
  readonly target: Target;
  readonly headers: Record<string, string>;
}

async function latency(targets: readonly LatencyTarget[], path: string, n: number): Promise<Percentiles[]> {
  const worker = new Worker(latencyWorkerSource, { eval: true, workerData: { targets, path, n, batch: 50 } });
  const result = await new Promise<number[][] | { error: string }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  if (!Array.isArray(result)) throw new Error(result.error);
  return result.map((times) => {
    const sorted = times.sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  });
}

/** CPU time of this process's main thread (the gateway's event loop; the load client runs in a worker), µs. */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function execStream(
  host: string,
  configDir: string,
  container: string,
  bytes: number,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'docker',
      ['--config', configDir, 'exec', container, 'head', '-c', String(bytes), '/dev/zero'],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: configDir, DOCKER_HOST: host },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    child.stdout.on('data', (c: Buffer) => (received += c.length));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker exec exited ${code}`))));
  });
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
  const dockerd = await startDockerd();
  const gw = await startTestGateway(`
listeners:
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
  - name: docker-unix
    protocol: docker
    listen: unix:${join(dockerd.dir, 'agentgate.sock')}
    identity: bench
    allow: [identity:bench]
    upstream: { socket: ${dockerd.socket} }
rules:
  - name: no-privileged
    protocol: docker
    match: { privileged: true }
    action: deny
`);
  try {
    const { port } = gw.address('docker') as { port: number };
    const token = await gw.token('bench', ['agents']);
    const direct: Target = { socketPath: dockerd.socket };
    const viaGateway: Target = { host: '127.0.0.1', port };
    // The same transport as direct (a unix socket, fixed identity): what a local agent's DOCKER_HOST would use.
    const viaGatewayUnix: Target = { socketPath: join(dockerd.dir, 'agentgate.sock') };
    const auth = { authorization: `Bearer ${token}` };
    // The floor for any proxy hop in Node on this machine: a socket pipe that neither parses nor decides.
    // allowHalfOpen: `docker exec` without -i half-closes its side and still reads the output.
    const pipe = net.createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
      const u = net.connect({ path: dockerd.socket, allowHalfOpen: true });
      s.pipe(u).on('error', () => s.destroy());
      u.pipe(s).on('error', () => u.destroy());
      s.on('error', () => u.destroy());
      u.on('error', () => s.destroy());
    });
    await new Promise<void>((resolve) => pipe.listen(0, '127.0.0.1', resolve));
    const pipePort = (pipe.address() as net.AddressInfo).port;
    const viaPipe: Target = { host: '127.0.0.1', port: pipePort };
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
    const rows: string[] = [];
    for (const path of ['/containers/json', '/_ping']) {
      const [d, g, p, u, c] = (await latency(
        [
          { target: direct, headers: {} },
          { target: viaGateway, headers: auth },
          { target: viaPipe, headers: {} },
          { target: viaGatewayUnix, headers: {} },
          ...(socat ? [{ target: { host: '127.0.0.1', port: socat.port }, headers: {} }] : []),
        ],
        path,
        requests,
      )) as [Percentiles, Percentiles, Percentiles, Percentiles, Percentiles | undefined];
      if (c)
        rows.push(
          `GET ${path.padEnd(16)} reference: socat, a C relay in its own process p50 ${c.p50.toFixed(3)} ms = ${(c.p50 / d.p50).toFixed(2)}x direct`,
        );
      rows.push(
        `GET ${path.padEnd(16)} reference: a bare Node byte pipe (no parsing, no decision) p50 ${p.p50.toFixed(3)} ms = ${(p.p50 / d.p50).toFixed(2)}x direct`,
      );
      rows.push(`GET ${path.padEnd(16)} load average ${loadavg()[0]!.toFixed(1)}`);
      rows.push(
        `GET ${path.padEnd(16)} direct p50 ${d.p50.toFixed(3)} ms p99 ${d.p99.toFixed(3)} ms | agentgate p50 ${g.p50.toFixed(3)} ms p99 ${g.p99.toFixed(3)} ms | ratio p50 ${(g.p50 / d.p50).toFixed(2)}x p99 ${(g.p99 / d.p99).toFixed(2)}x`,
      );
      rows.push(
        `GET ${path.padEnd(16)} agentgate on a unix socket (same transport as direct) p50 ${u.p50.toFixed(3)} ms p99 ${u.p99.toFixed(3)} ms | ratio p50 ${(u.p50 / d.p50).toFixed(2)}x p99 ${(u.p99 / d.p99).toFixed(2)}x`,
      );
    }
    // Main-thread CPU per request: the gateway alone, sequential keep-alive requests, read from /proc.
    for (let round = 0; round < 3; round++) {
      const before = mainThreadCpuUs();
      const started = performance.now();
      await latency([{ target: viaGateway, headers: auth }], '/containers/json', requests);
      const perRequest = (mainThreadCpuUs() - before) / (requests + 100);
      const wallPerRequest = ((performance.now() - started) * 1000) / (requests + 100);
      rows.push(
        `GET /containers/json agentgate main-thread CPU ${perRequest.toFixed(0)} µs/request (wall ${wallPerRequest.toFixed(0)} µs/request, load ${loadavg()[0]!.toFixed(1)})`,
      );
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
    socat?.child.kill();
  } finally {
    await gw.stop();
    await dockerd.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
