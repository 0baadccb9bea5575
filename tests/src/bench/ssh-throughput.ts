/**
 * Benchmark (issue 7 §9): 200 MB upload and download with the OpenSSH client, directly to sshd and through
 * agentgate, in one run. Prints MB/s, the ratios (target ≥ 0.75× direct), the negotiated ciphers, and the gateway's
 * CPU per MB (this process, all threads and the main thread, from /proc) beside the ssh client's, which says more
 * than MB/s when the machine is shared (BENCH_THREADS=1: by thread). BENCH_PROFILE=DIR: a V8 CPU profile of the
 * first upload and download through agentgate (DIR/ssh-upload.cpuprofile, DIR/ssh-download.cpuprofile).
 *
 *   npx tsc -b tests && node tests/dist/bench/ssh-throughput.js [--mb 200] [--runs 3] [--engine-only]
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startTestGateway } from '../harness/gateway.js';
import { makeKeyPair, sshClientOptions, startSshd, startStandaloneSshGateway } from '../harness/sshd.js';
import { startProfile } from './process-cpu.js';

const mbArg = process.argv.indexOf('--mb');
const MB = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 200;
const BYTES = MB * 1024 * 1024;
const runsArg = process.argv.indexOf('--runs');
/** `--engine-only`: the SSH engine with an in-memory transcript, to separate the store's recording cost. */
const ENGINE_ONLY = process.argv.includes('--engine-only');
/** Each measurement is repeated, interleaved, and the best kept: a shared 2-core machine is noisy. */
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;

interface Measured {
  readonly seconds: number;
  readonly cipher: string;
  /** CPU of this process during the run, ms: all threads and the main thread (the gateway's, when it relays). */
  readonly cpuMs: number;
  readonly mainMs: number;
  /** CPU of the ssh client (a reaped child), ms. */
  readonly clientMs: number;
  /** Minor page faults of this process during the run (fresh memory the gateway touched). */
  readonly faults: number;
  /** This process's CPU by thread name, ms (with BENCH_THREADS=1). */
  readonly threads: string;
  readonly load: string;
}

/** CPU ms per thread name (comm) of this process, the main thread as `main`; and minor page faults (`NAME faults`). */
function threadCpu(): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const text = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      const name =
        Number(tid) === process.pid ? 'main' : readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      byName.set(name, (byName.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) * 10);
      byName.set(`${name} faults`, (byName.get(`${name} faults`) ?? 0) + Number(f[7]));
    } catch {
      // the thread ended
    }
  }
  return byName;
}

/** utime+stime of this process, its main thread, and its reaped children, in ms (clock ticks of 10 ms). */
function cpuSample(): {
  all: number;
  main: number;
  children: number;
  faults: number;
  threads: Map<string, number>;
} {
  const fields = (file: string): string[] => {
    const text = readFileSync(file, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  };
  const self = fields('/proc/self/stat');
  const main = fields(`/proc/self/task/${process.pid}/stat`);
  return {
    all: (Number(self[11]) + Number(self[12])) * 10,
    main: (Number(main[11]) + Number(main[12])) * 10,
    children: (Number(self[13]) + Number(self[14])) * 10,
    faults: Number(self[7]),
    threads: threadCpu(),
  };
}

/** Run ssh with stdin from a file (upload) or stdout to /dev/null (download); time it and read the cipher from -v. */
function timedSsh(args: string[], stdinFile: string | undefined): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const stdin = stdinFile === undefined ? 'ignore' : openSync(stdinFile, 'r');
    const devnull = openSync('/dev/null', 'w');
    const started = process.hrtime.bigint();
    const cpuBefore = cpuSample();
    const child = spawn('ssh', ['-v', ...args], { stdio: [stdin, devnull, 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const cpuAfter = cpuSample();
      if (typeof stdin === 'number') closeSync(stdin);
      closeSync(devnull);
      if (code !== 0)
        return reject(
          new Error(
            `ssh exited ${code}: ${err
              .split('\n')
              .filter((l) => !l.startsWith('debug'))
              .join('\n')}`,
          ),
        );
      const cipher = /kex: server->client cipher: (\S+)/.exec(err)?.[1] ?? 'unknown';
      resolve({
        seconds,
        cipher,
        cpuMs: cpuAfter.all - cpuBefore.all,
        mainMs: cpuAfter.main - cpuBefore.main,
        clientMs: cpuAfter.children - cpuBefore.children,
        faults: cpuAfter.faults - cpuBefore.faults,
        threads: [...cpuAfter.threads]
          .map(([name, ms]) => [name, ms - (cpuBefore.threads.get(name) ?? 0)] as const)
          .filter(([, ms]) => ms > 0)
          .map(([name, ms]) => `${name} ${ms}`)
          .join(', '),
        load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!,
      });
    });
  });
}

/** Whether ssh2 runs its ciphers through its optional native binding (built at install, see pnpm-workspace.yaml). */
function ssh2NativeCrypto(): boolean {
  const require = createRequire(import.meta.url);
  const crypto = require(join(dirname(require.resolve('ssh2')), 'protocol', 'crypto.js')) as {
    bindingAvailable?: boolean;
  };
  return crypto.bindingAvailable === true;
}

async function main(): Promise<void> {
  const sshd = await startSshd();
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-bench-'));
  const agentKey = makeKeyPair(dir, 'agent');
  let gatewayPort: number;
  let stopGateway: () => Promise<void>;
  if (ENGINE_ONLY) {
    const gw = await startStandaloneSshGateway({
      sshd,
      rules: [],
      identities: { keys: [{ name: 'bench', publicKey: agentKey.publicKey, groups: ['agents'] }] },
    });
    gatewayPort = gw.port;
    stopGateway = () => gw.stop();
  } else {
    // The whole gateway: config, policy, and the LMDB transcript store recording every byte (coalesced io events).
    const gw = await startTestGateway(`
identity:
  sshKeys:
    - { name: bench, publicKey: "${agentKey.publicKey}", groups: [agents] }
listeners:
  - name: bench-ssh
    protocol: ssh
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: root, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
rules:
  - { name: no-rm-rf, protocol: ssh, match: { programs: [rm], pattern: "-[a-zA-Z]*r" }, action: deny }
`);
    const address = gw.address('bench-ssh');
    if (!('port' in address)) throw new Error('expected a TCP listener');
    gatewayPort = address.port;
    stopGateway = () => gw.stop();
  }
  const file = join(dir, 'payload.bin');
  const fd = openSync(file, 'w');
  const block = randomBytes(1024 * 1024);
  for (let i = 0; i < MB; i++) writeSync(fd, block);
  closeSync(fd);

  const direct = [...sshClientOptions(sshd.port, sshd.upstreamKeyPath), 'root@127.0.0.1'];
  const viaGateway = [...sshClientOptions(gatewayPort, agentKey.path), 'agent@127.0.0.1'];
  const upload = 'cat > /dev/null';
  const download = `head -c ${BYTES} /dev/zero`;
  try {
    // Warm up both paths (key exchange caches, the shell analyzer, page cache for the payload).
    await timedSsh([...direct, 'true'], undefined);
    await timedSsh([...viaGateway, 'true'], undefined);
    const best = (a: Measured | undefined, b: Measured): Measured =>
      a === undefined || b.seconds < a.seconds ? b : a;
    let directUp: Measured | undefined;
    let gatewayUp: Measured | undefined;
    let directDown: Measured | undefined;
    let gatewayDown: Measured | undefined;
    /** The gateway's run, profiled the first time with BENCH_PROFILE. */
    const viaGatewayRun = async (
      name: string,
      args: string[],
      stdinFile: string | undefined,
      round: number,
    ) => {
      const profile = round === 0 ? await startProfile() : undefined;
      const measured = await timedSsh(args, stdinFile);
      await profile?.(name);
      return measured;
    };
    for (let i = 0; i < RUNS; i++) {
      directUp = best(directUp, await timedSsh([...direct, upload], file));
      gatewayUp = best(gatewayUp, await viaGatewayRun('ssh-upload', [...viaGateway, upload], file, i));
      directDown = best(directDown, await timedSsh([...direct, download], undefined));
      gatewayDown = best(
        gatewayDown,
        await viaGatewayRun('ssh-download', [...viaGateway, download], undefined, i),
      );
    }
    const results = {
      directUp: directUp!,
      gatewayUp: gatewayUp!,
      directDown: directDown!,
      gatewayDown: gatewayDown!,
    };
    const rate = (m: Measured): number => MB / m.seconds;
    const perMb = (ms: number): string => (ms / MB).toFixed(1);
    const line = (name: string, m: Measured): string =>
      `${name.padEnd(22)} ${rate(m).toFixed(1).padStart(8)} MB/s  (${m.seconds.toFixed(2)} s, cipher ${m.cipher}, ` +
      `load ${m.load}; CPU ms/MB: gateway ${perMb(m.cpuMs)} (main thread ${perMb(m.mainMs)}), ssh client ${perMb(m.clientMs)}; ` +
      `gateway page faults/MB ${Math.round(m.faults / MB)})` +
      (process.env.BENCH_THREADS
        ? `\n${''.padEnd(23)}gateway CPU ms (and page faults) by thread: ${m.threads}`
        : '');
    console.log(
      `ssh throughput, ${MB} MB each way, OpenSSH client, loopback, best of ${RUNS}${ENGINE_ONLY ? ', engine only (in-memory transcript)' : ', full gateway (LMDB transcript)'}`,
    );
    console.log(
      `gateway crypto: ssh2 native binding ${ssh2NativeCrypto() ? 'loaded' : 'NOT loaded (Node crypto fallback: expect lower figures)'}`,
    );
    console.log(line('upload direct', results.directUp));
    console.log(line('upload via agentgate', results.gatewayUp));
    console.log(line('download direct', results.directDown));
    console.log(line('download via agentgate', results.gatewayDown));
    const upRatio = rate(results.gatewayUp) / rate(results.directUp);
    const downRatio = rate(results.gatewayDown) / rate(results.directDown);
    console.log(`ratio upload ${upRatio.toFixed(2)}x, download ${downRatio.toFixed(2)}x (target >= 0.75x)`);
    console.log(
      JSON.stringify({
        mb: MB,
        ...Object.fromEntries(
          Object.entries(results).map(([k, v]) => [k, { mbps: rate(v), cipher: v.cipher }]),
        ),
        upRatio,
        downRatio,
      }),
    );
  } finally {
    await stopGateway();
    await sshd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
