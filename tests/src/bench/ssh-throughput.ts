/**
 * Benchmark (issue 7 §9): 200 MB upload and download with the OpenSSH client, directly to sshd, through agentgate
 * and (with `--targets`) through a bare ssh2 relay, the floor, in one run, interleaved. Prints MB/s, the ratios
 * (target ≥ 0.75× direct), the negotiated ciphers, and the relay's CPU and minor page faults per MB (this process,
 * all threads and the main thread, from /proc) beside the ssh client's, which say more than MB/s when the machine
 * is shared (BENCH_THREADS=1: by thread); every run, then the best rate and the medians. BENCH_PROFILE=DIR: a V8
 * CPU profile of the first upload and download through each relay (DIR/ssh-upload.cpuprofile, …).
 *
 *   npx tsc -b tests && node tests/dist/bench/ssh-throughput.js [--mb 200] [--runs 3] [--engine-only]
 *     [--targets direct,ssh2-relay,agentgate] [--warmup-mb N] [--tool ssh|scp|scp-legacy]
 *
 * `--tool scp` (or `scp-legacy`): each run copies a file with scp instead (OpenSSH's scp speaks SFTP since 9.0,
 * `scp-legacy` is `scp -O`, the old protocol over an exec channel): the issue's own wording, "200 MB scp both ways".
 * scp's runs have no remote start time, so their transfer is the run less the target's setup (median of three
 * `ssh … true`).
 *
 * `--warmup-mb N`: before the measured runs, N MB each way through every relay, so that V8 has compiled the relay's
 * and the recorder's hot paths (without it the first runs carry ~1 ms of background compilation per MB).
 *
 * BENCH_REDACT=0: the gateway with `redact: false` (no stream redaction of the recorded bytes).
 * BENCH_DIRECTIONS=download (or upload): measure one direction only. BENCH_PERF=DIR: `perf record -g` of this
 * process (all threads and the kernel) during each run through a relay (DIR/ssh-download-agentgate-1.data, …; run
 * node with --perf-basic-prof to name JS frames). BENCH_STRACE=1: system calls per MB of this process's threads
 * during each run through a relay (`strace -c`, which slows the relay: counts, not times).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { startTestGateway } from '../harness/gateway.js';
import { makeKeyPair, sshClientOptions, startSshd, startStandaloneSshGateway } from '../harness/sshd.js';
import { startProfile, straceThreads } from './process-cpu.js';
import { startSsh2Relay } from './ssh2-relay.js';
import { startLauncher, type Launcher, type LaunchResult } from './launcher.js';

const mbArg = process.argv.indexOf('--mb');
const MB = mbArg > 0 ? Number(process.argv[mbArg + 1]) : 200;
const BYTES = MB * 1024 * 1024;
const runsArg = process.argv.indexOf('--runs');
const warmupArg = process.argv.indexOf('--warmup-mb');
const WARMUP_MB = warmupArg > 0 ? Number(process.argv[warmupArg + 1]) : 0;
/** `--engine-only`: the SSH engine with an in-memory transcript, to separate the store's recording cost. */
const ENGINE_ONLY = process.argv.includes('--engine-only');
/** Each measurement is repeated, interleaved: a shared 2-core machine is noisy. */
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
type Target = 'direct' | 'ssh2-relay' | 'agentgate';
const targetsArg = process.argv.indexOf('--targets');
/**
 * `--targets direct,ssh2-relay,agentgate`: which paths to measure, in this order each round. `ssh2-relay` is the
 * floor: a bare ssh2 server + client relay in this process, without recording (ssh2-relay.ts).
 */
const TARGETS = (targetsArg > 0 ? process.argv[targetsArg + 1]! : 'direct,agentgate').split(',').map((t) => {
  if (t !== 'direct' && t !== 'ssh2-relay' && t !== 'agentgate') throw new Error(`unknown target ${t}`);
  return t as Target;
});

type Tool = 'ssh' | 'scp' | 'scp-legacy';
const toolArg = process.argv.indexOf('--tool');
const TOOL = (toolArg > 0 ? process.argv[toolArg + 1]! : 'ssh') as Tool;
if (!['ssh', 'scp', 'scp-legacy'].includes(TOOL)) throw new Error(`unknown tool ${TOOL}`);

type Direction = 'upload' | 'download';
const DIRECTIONS = (process.env.BENCH_DIRECTIONS ?? 'upload,download').split(',').map((d) => {
  if (d !== 'upload' && d !== 'download') throw new Error(`unknown direction ${d}`);
  return d as Direction;
});

interface Measured {
  readonly seconds: number;
  /**
   * From the remote command's start (it prints the time first, `date +%s%N`; one clock, one machine) to the ssh
   * client's exit: the run without the session's setup (key exchanges, and the login shell's rc files, which sshd
   * runs for every command as root here and which take most of a 100 MB run's time).
   */
  readonly transferSeconds: number | undefined;
  readonly cipher: string;
  /** CPU of this process during the run, ms: all threads and the main thread (the gateway's, when it relays). */
  readonly cpuMs: number;
  readonly mainMs: number;
  /** CPU of the ssh client (a reaped child), ms. */
  readonly clientMs: number;
  /** CPU of sshd's connection processes and the command they ran (reaped by the listening sshd), ms. */
  readonly sshdMs: number;
  /** Share of the machine's cores busy during the run (every process, the other sessions' included). */
  readonly busy: number;
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

/** utime+stime of the listening sshd and the connection processes it reaped, ms. */
function sshdCpu(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

/** Once sshd has reaped the run's connection processes (their CPU is in its children's then), or after 2 s. */
async function sshdReaped(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    try {
      if (readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() === '') return;
    } catch {
      return; // a kernel without /proc/…/children: sshd's figure may then miss the last connection
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The machine's busy and total clock ticks so far (/proc/stat: all but idle and iowait is busy). */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

let sshdPid: number | undefined;

/**
 * The ssh clients start from a launcher process (launcher.ts) forked once before anything is measured: forking
 * this process for every run would make every page it keeps fault again after the fork (copy-on-write), which a
 * gateway never pays. `BENCH_SPAWN=direct`: spawn them from this process, as before the ninth round.
 */
let launcher: Launcher | undefined;

/** Run ssh or scp (`-v`) through the launcher, or from this process with BENCH_SPAWN=direct. */
function runSsh(
  command: 'ssh' | 'scp',
  args: string[],
  stdinFile: string | undefined,
): Promise<Pick<LaunchResult, 'code' | 'stderr' | 'clientMs'>> {
  if (launcher !== undefined)
    return launcher.launch({
      command,
      args: ['-v', ...args],
      ...(stdinFile !== undefined ? { stdin: stdinFile } : {}),
    }).result;
  return new Promise((resolve) => {
    const stdin = stdinFile === undefined ? 'ignore' : openSync(stdinFile, 'r');
    const devnull = openSync('/dev/null', 'w');
    const before = cpuSample().children;
    const child = spawn(command, ['-v', ...args], { stdio: [stdin, devnull, 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = (code: number | null): void => {
      if (typeof stdin === 'number') closeSync(stdin);
      closeSync(devnull);
      resolve({ code, stderr, clientMs: cpuSample().children - before });
    };
    child.once('error', (err) => {
      stderr += String(err);
      done(-1);
    });
    child.once('close', done);
  });
}

/**
 * Run ssh with stdin from a file (upload) or stdout to /dev/null (download), or scp; time it and read the cipher
 * from -v. `setupSeconds`: for a run without a remote start time, its transfer is the run less this.
 */
async function timedSsh(
  args: string[],
  stdinFile: string | undefined,
  command: 'ssh' | 'scp' = 'ssh',
  setupSeconds?: number,
): Promise<Measured> {
  await sshdReaped(sshdPid);
  const sshdBefore = sshdCpu(sshdPid);
  const machineBefore = machineTicks();
  const started = process.hrtime.bigint();
  const cpuBefore = cpuSample();
  const { code, stderr: err, clientMs } = await runSsh(command, args, stdinFile);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const exitedAt = performance.timeOrigin + performance.now();
  const cpuAfter = cpuSample();
  const machineAfter = machineTicks();
  await sshdReaped(sshdPid);
  const sshdMs = sshdCpu(sshdPid) - sshdBefore;
  if (code !== 0)
    throw new Error(
      `ssh exited ${code}: ${err
        .split('\n')
        .filter((l) => !l.startsWith('debug'))
        .join('\n')}`,
    );
  const cipher = /kex: server->client cipher: (\S+)/.exec(err)?.[1] ?? 'unknown';
  const commandStart = /^(\d{19})$/m.exec(err)?.[1];
  return {
    seconds,
    transferSeconds:
      commandStart !== undefined
        ? (exitedAt - Number(BigInt(commandStart) / 1000n) / 1000) / 1000
        : setupSeconds !== undefined
          ? seconds - setupSeconds
          : undefined,
    cipher,
    cpuMs: cpuAfter.all - cpuBefore.all,
    mainMs: cpuAfter.main - cpuBefore.main,
    clientMs,
    sshdMs,
    busy: (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
    faults: cpuAfter.faults - cpuBefore.faults,
    threads: [...cpuAfter.threads]
      .map(([name, ms]) => [name, ms - (cpuBefore.threads.get(name) ?? 0)] as const)
      .filter(([, ms]) => ms > 0)
      .map(([name, ms]) => `${name} ${ms}`)
      .join(', '),
    load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!,
  };
}

/** With BENCH_PERF=DIR: `perf record` this process from now; the returned function stops it once perf wrote its file. */
async function startPerf(name: string): Promise<(() => Promise<void>) | undefined> {
  const dir = process.env.BENCH_PERF;
  if (!dir) return undefined;
  const args = ['record', '-F', '1999', '-g', '-p', String(process.pid), '-o', join(dir, `${name}.data`)];
  let stop: () => void;
  let exited: Promise<unknown>;
  if (launcher !== undefined) {
    const perf = launcher.launch({ command: 'perf', args });
    stop = perf.stop;
    exited = perf.result;
  } else {
    const child = spawn('perf', args, { stdio: 'ignore' });
    stop = () => child.kill('SIGINT');
    exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  }
  // perf attaches to the threads within a few hundred ms; the transfer starts after that.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return async () => {
    stop();
    await exited;
  };
}

/** Whether ssh2 runs its ciphers through its optional native binding (built at install, see pnpm-workspace.yaml). */
function ssh2NativeCrypto(): boolean {
  const require = createRequire(import.meta.url);
  const crypto = require(join(dirname(require.resolve('ssh2')), 'protocol', 'crypto.js')) as {
    bindingAvailable?: boolean;
  };
  return crypto.bindingAvailable === true;
}

/** The middle of a sorted copy (the upper one of two). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  launcher = startLauncher();
  const sshd = await startSshd();
  sshdPid = sshd.pid;
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-bench-'));
  const agentKey = makeKeyPair(dir, 'agent');
  const stops: (() => Promise<void>)[] = [];
  /** ssh arguments (options and destination) of each target. */
  const targets = new Map<Target, string[]>();
  for (const target of TARGETS) {
    if (target === 'direct') {
      targets.set(target, [...sshClientOptions(sshd.port, sshd.upstreamKeyPath), 'root@127.0.0.1']);
    } else if (target === 'ssh2-relay') {
      const relay = await startSsh2Relay(sshd, makeKeyPair(dir, 'relay_host_key').path);
      stops.push(() => relay.stop());
      targets.set(target, [...sshClientOptions(relay.port, agentKey.path), 'agent@127.0.0.1']);
    } else if (ENGINE_ONLY) {
      const gw = await startStandaloneSshGateway({
        sshd,
        rules: [],
        identities: { keys: [{ name: 'bench', publicKey: agentKey.publicKey, groups: ['agents'] }] },
      });
      stops.push(() => gw.stop());
      targets.set(target, [...sshClientOptions(gw.port, agentKey.path), 'agent@127.0.0.1']);
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
${process.env.BENCH_REDACT === '0' ? 'redact: false' : ''}
`);
      stops.push(() => gw.stop());
      const address = gw.address('bench-ssh');
      if (!('port' in address)) throw new Error('expected a TCP listener');
      targets.set(target, [...sshClientOptions(address.port, agentKey.path), 'agent@127.0.0.1']);
    }
  }
  const file = join(dir, 'payload.bin');
  const fd = openSync(file, 'w');
  const block = randomBytes(1024 * 1024);
  for (let i = 0; i < MB; i++) writeSync(fd, block);
  closeSync(fd);

  /** One scp run: the payload up into the bench directory, or down from it; checks the copy's size. */
  const timedScp = async (direction: Direction, args: string[], setup: number): Promise<Measured> => {
    // scp takes the port as -P; the destination is the last of a target's ssh arguments.
    const options = args.slice(0, -1).map((arg) => (arg === '-p' ? '-P' : arg));
    if (TOOL === 'scp-legacy') options.unshift('-O');
    const copy = join(dir, `${direction}.bin`);
    const [from, to] =
      direction === 'upload' ? [file, `${args.at(-1)}:${copy}`] : [`${args.at(-1)}:${file}`, copy];
    const measured = await timedSsh([...options, from, to], undefined, 'scp', setup);
    const size = statSync(copy).size;
    rmSync(copy);
    if (size !== BYTES) throw new Error(`scp ${direction} copied ${size} bytes of ${BYTES}`);
    return measured;
  };

  // Each command first prints when it starts (stderr), for the transfer's own time.
  const upload = 'date +%s%N >&2; cat > /dev/null';
  const download = `date +%s%N >&2; head -c ${BYTES} /dev/zero`;
  try {
    // Warm up every path (key exchange caches, the shell analyzer, page cache for the payload).
    // The setup's own cost (key exchanges, the login shell: root's rc files) is in every run's time and sshd CPU.
    const setupSeconds = new Map<Target, number>();
    for (const [target, args] of targets) {
      const setups: number[] = [];
      for (let i = 0; i < 3; i++) {
        const setup = await timedSsh([...args, 'true'], undefined);
        setups.push(setup.seconds);
        console.log(
          `setup (ssh … true) ${target}: ${setup.seconds.toFixed(2)} s, sshd ${setup.sshdMs} ms, ` +
            `ssh client ${setup.clientMs} ms, relay ${setup.cpuMs} ms, load ${setup.load}`,
        );
      }
      setupSeconds.set(target, median(setups));
    }
    if (WARMUP_MB > 0)
      for (const [target, args] of targets) {
        if (target === 'direct') continue;
        await timedSsh([...args, `head -c ${WARMUP_MB * 1024 * 1024} > /dev/null`], file);
        await timedSsh([...args, `head -c ${WARMUP_MB * 1024 * 1024} /dev/zero`], undefined);
      }
    const runs = new Map<string, Measured[]>();
    const add = (key: string, m: Measured): void => {
      const list = runs.get(key) ?? [];
      list.push(m);
      runs.set(key, list);
    };
    for (let i = 0; i < RUNS; i++) {
      for (const [direction, command, stdinFile] of [
        ['upload', upload, file],
        ['download', download, undefined],
      ] as const) {
        if (!DIRECTIONS.includes(direction)) continue;
        for (const [target, args] of targets) {
          // The gateway's first run of each direction is profiled with BENCH_PROFILE.
          const profile = target !== 'direct' && i === 0 ? await startProfile() : undefined;
          const perf =
            target !== 'direct' ? await startPerf(`ssh-${direction}-${target}-${i + 1}`) : undefined;
          const strace =
            target !== 'direct' && process.env.BENCH_STRACE
              ? await straceThreads(readdirSync('/proc/self/task'))
              : undefined;
          add(
            `${direction} ${target}`,
            TOOL === 'ssh'
              ? await timedSsh([...args, command], stdinFile)
              : await timedScp(direction, args, setupSeconds.get(target)!),
          );
          await perf?.();
          if (strace !== undefined)
            console.log(`${direction} ${target} #${i + 1}: system calls per MB: ${await strace(MB)}`);
          await profile?.(`ssh-${direction}${target === 'agentgate' ? '' : '-' + target}`);
        }
      }
    }
    const rate = (m: Measured): number => MB / m.seconds;
    const transferRate = (m: Measured): number =>
      m.transferSeconds === undefined ? NaN : MB / m.transferSeconds;
    const perMb = (ms: number): string => (ms / MB).toFixed(1);
    const line = (name: string, m: Measured): string =>
      `${name.padEnd(24)} ${rate(m).toFixed(1).padStart(8)} MB/s  (${m.seconds.toFixed(2)} s; transfer ` +
      `${transferRate(m).toFixed(1)} MB/s, ${m.transferSeconds?.toFixed(2)} s; cipher ${m.cipher}, ` +
      `load ${m.load}; CPU ms/MB: relay ${perMb(m.cpuMs)} (main thread ${perMb(m.mainMs)}), ssh client ${perMb(m.clientMs)}, ` +
      `sshd ${perMb(m.sshdMs)}; machine busy ${(m.busy * 100).toFixed(0)}%; ` +
      `relay page faults/MB ${Math.round(m.faults / MB)})` +
      (process.env.BENCH_THREADS
        ? `\n${''.padEnd(25)}relay CPU ms (and page faults) by thread: ${m.threads}`
        : '');
    console.log(
      `ssh throughput, ${MB} MB each way, OpenSSH ${TOOL === 'ssh' ? 'client' : TOOL === 'scp' ? 'scp (SFTP)' : 'scp -O'}, loopback, ${RUNS} interleaved runs` +
        `${WARMUP_MB > 0 ? ` after ${WARMUP_MB} MB each way through each relay` : ''}${ENGINE_ONLY ? ', agentgate = engine only (in-memory transcript)' : ', agentgate = full gateway (LMDB transcript)'}`,
    );
    console.log(
      `relay crypto: ssh2 native binding ${ssh2NativeCrypto() ? 'loaded' : 'NOT loaded (Node crypto fallback: expect lower figures)'}`,
    );
    for (const [key, list] of runs) list.forEach((m, i) => console.log(line(`${key} #${i + 1}`, m)));
    const summary: Record<string, unknown> = { mb: MB, runs: RUNS };
    console.log(
      'best run (MB/s, ratio to direct; the same from the remote command start) and medians over the runs ' +
        '(relay CPU ms/MB, main thread, faults/MB):',
    );
    for (const direction of DIRECTIONS) {
      const direct = runs.get(`${direction} direct`);
      const directBest = direct === undefined ? undefined : Math.max(...direct.map(rate));
      const directTransfer = direct === undefined ? undefined : Math.max(...direct.map(transferRate));
      for (const target of targets.keys()) {
        const list = runs.get(`${direction} ${target}`)!;
        const best = Math.max(...list.map(rate));
        const ratio = directBest === undefined ? undefined : best / directBest;
        const transfer = Math.max(...list.map(transferRate));
        const transferRatio = directTransfer === undefined ? undefined : transfer / directTransfer;
        const cpu = median(list.map((m) => m.cpuMs / MB));
        const main = median(list.map((m) => m.mainMs / MB));
        const faults = median(list.map((m) => m.faults / MB));
        console.log(
          `  ${direction.padEnd(8)} ${target.padEnd(10)} ${best.toFixed(1).padStart(7)} MB/s` +
            (ratio === undefined || target === 'direct' ? '' : ` (${ratio.toFixed(2)}x direct)`) +
            `; transfer ${transfer.toFixed(1)} MB/s` +
            (transferRatio === undefined || target === 'direct'
              ? ''
              : ` (${transferRatio.toFixed(2)}x direct)`) +
            (target === 'direct'
              ? ''
              : `; CPU/MB ${cpu.toFixed(1)} (main ${main.toFixed(1)}), faults/MB ${Math.round(faults)}`),
        );
        summary[`${direction} ${target}`] = {
          mbps: best,
          ratio,
          transferMbps: transfer,
          transferRatio,
          cpuPerMb: cpu,
          mainPerMb: main,
          faultsPerMb: faults,
        };
      }
    }
    console.log('target: agentgate >= 0.75x direct both ways');
    console.log(JSON.stringify(summary));
  } finally {
    launcher?.close();
    for (const stop of stops) await stop();
    await sshd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
