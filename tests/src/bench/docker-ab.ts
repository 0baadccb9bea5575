/**
 * An in-process A/B of two agentgate builds' Docker listener: one dockerd, a gateway started from each build's own
 * test harness in this process, and a client process that sends batches of sequential keep-alive
 * `GET /containers/json` to one gateway then the other, alternating which goes first every round. Each batch's
 * main-thread and all-thread CPU come from `/proc/self/task/*` `schedstat` (nanoseconds), so a difference of ~5%
 * shows where alternated whole-benchmark runs at load cannot resolve 30% (docs/performance.md, A/A check). Run it in
 * both orders: the second gateway measured ~3% higher against an identical first one.
 *
 * Run: node tests/dist/bench/docker-ab.js ROOT_A ROOT_B [rounds=300] [batch=50]
 * ROOT_A / ROOT_B are checkouts with their own build (`pnpm build`); `AB_TRANSPORT=unix` measures the unix-socket
 * listeners, `AB_PATH=/_ping` another request, `BENCH_CONTAINERS=N` N more running containers. Both builds must
 * load one lmdb-js (one-lmdb.ts). `AB_COMMIT_WINDOW_A=10ms` and `AB_COMMIT_WINDOW_B=50ms` set each side's
 * `store.commitWindow` (otherwise `BENCH_COMMIT_WINDOW`, or the default), so one build run as both sides measures the
 * window itself (use batches that take many windows, e.g. 400 requests: a side's last commit of a batch can fall in
 * the other side's next batch).
 */
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { dockerBenchGatewayYaml } from './bench-store.js';
import { requireOneLmdb } from './one-lmdb.js';
import { ownAllThreadsNs, ownMainThreadNs } from './process-cpu.js';
import type { TestDockerd } from '../harness/dockerd.js';
import type { TestGateway } from '../harness/gateway.js';
import { startBatchClient } from './batch-client.js';

type Target = { host: string; port: number } | { socketPath: string };
interface Arm {
  readonly root: string;
  readonly gw: TestGateway;
  readonly target: Target;
  readonly headers: Record<string, string>;
}
interface Batch {
  readonly mainUs: number;
  readonly allUs: number;
  readonly p50Us: number;
}

const [rootA, rootB] = process.argv.slice(2, 4).map((root) => resolve(root));
const rounds = Number(process.argv[4] ?? 300);
const batch = Number(process.argv[5] ?? 50);
const transport = process.env['AB_TRANSPORT'] ?? 'tcp';

const windowNote = (arm: number): string => {
  const window = process.env[arm === 0 ? 'AB_COMMIT_WINDOW_A' : 'AB_COMMIT_WINDOW_B'];
  return window ? ` (commitWindow ${window})` : '';
};
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: readonly number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;

async function startArm(root: string, index: number, dockerd: TestDockerd): Promise<Arm> {
  const harness = (await import(
    join(root, 'tests/dist/harness/gateway.js')
  )) as typeof import('../harness/gateway.js');
  const unixPath = join(dockerd.dir, `ab${index}.sock`);
  // Both arms run the gateway as docker.js configures it, whichever build they load.
  const window = process.env[index === 0 ? 'AB_COMMIT_WINDOW_A' : 'AB_COMMIT_WINDOW_B'];
  const gw = await harness.startTestGateway(dockerBenchGatewayYaml(dockerd.socket, unixPath, window));
  if (transport === 'unix') return { root, gw, target: { socketPath: unixPath }, headers: {} };
  const { port } = gw.address('docker') as { port: number };
  return {
    root,
    gw,
    target: { host: '127.0.0.1', port },
    headers: { authorization: `Bearer ${await gw.token('bench', ['agents'])}` },
  };
}

async function main(): Promise<void> {
  if (!rootA || !rootB) throw new Error('usage: docker-ab.js ROOT_A ROOT_B [rounds] [batch]');
  requireOneLmdb(rootA, rootB);
  const { startDockerd } = (await import(
    join(rootA, 'tests/dist/harness/dockerd.js')
  )) as typeof import('../harness/dockerd.js');
  const dockerd = await startDockerd();
  const arms: Arm[] = [];
  try {
    arms.push(await startArm(rootA, 0, dockerd), await startArm(rootB, 1, dockerd));
    const containers = 1 + Number(process.env['BENCH_CONTAINERS'] ?? 0);
    for (let i = 0; i < containers; i++) {
      const run = await dockerd.docker(['run', '-d', '--network', 'none', dockerd.image, 'sleep', '3600']);
      if (run.code !== 0) throw new Error(run.stderr);
    }
    const targets = arms.map(({ target, headers }) => ({ target, headers }));
    const client = startBatchClient(targets);
    const ask = client.ask;

    const batches: Batch[][] = [[], []];
    const measure = async (arm: number): Promise<void> => {
      const main0 = ownMainThreadNs();
      const all0 = ownAllThreadsNs();
      const p50Us = await ask(arm, batch);
      batches[arm]!.push({
        mainUs: (ownMainThreadNs() - main0) / batch / 1000,
        allUs: (ownAllThreadsNs() - all0) / batch / 1000,
        p50Us,
      });
    };
    await ask(0, 1000); // warm-up: V8 settles the relay's code before anything is measured
    await ask(1, 1000);
    for (let round = 0; round < rounds; round++) {
      for (const arm of round % 2 === 0 ? [0, 1] : [1, 0]) await measure(arm);
    }
    client.quit();

    for (const [arm, name] of ['A', 'B'].entries()) {
      const measured = batches[arm]!;
      console.log(
        `${name} ${arms[arm]!.root}${windowNote(arm)}: main thread ${median(measured.map((b) => b.mainUs)).toFixed(1)} µs, ` +
          `all threads ${median(measured.map((b) => b.allUs)).toFixed(1)} µs, ` +
          `client p50 ${median(measured.map((b) => b.p50Us)).toFixed(0)} µs per request`,
      );
    }
    const [a, b] = batches as [Batch[], Batch[]];
    const changes = (of: (x: Batch) => number): number[] =>
      a.map((x, round) => ((of(b[round]!) - of(x)) / of(x)) * 100);
    const describe = (change: number[]): string =>
      `median of per-round changes ${median(change).toFixed(1)}% (p25 ${quantile(change, 0.25).toFixed(1)}, ` +
      `p75 ${quantile(change, 0.75).toFixed(1)}), B lower in ${change.filter((c) => c < 0).length} of ${change.length} rounds`;
    const sum = (xs: Batch[]): number => xs.reduce((s, x) => s + x.mainUs, 0);
    console.log(
      `B against A, main thread: ${describe(changes((x) => x.mainUs))}; ` +
        `ratio of sums ${((sum(b) / sum(a) - 1) * 100).toFixed(1)}%; load ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
    );
    // The batches' p50s paired the same way: latency differences of a few % that the medians above blur.
    console.log(`B against A, client p50: ${describe(changes((x) => x.p50Us))}`);
  } finally {
    for (const arm of arms) await arm.gw.stop();
    await dockerd.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
