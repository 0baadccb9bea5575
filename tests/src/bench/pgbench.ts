/**
 * Benchmark (issue 3 item 10), run with `node tests/dist/bench/pgbench.js [seconds]`: pgbench -S (select-only),
 * 8 clients, 2 threads, `-M simple` and `-M prepared`, against PostgreSQL directly, pgbouncer (session mode) and
 * agentgate (rules on, recording into a real LMDB transcript store), in one run. Prints TPS, average latency and
 * the ratios agentgate/direct and agentgate/pgbouncer. A bare Node.js byte relay ("node-pipe") runs too, as the
 * floor any Node proxy pays for the extra hop on the same cores.
 * Knobs: BENCH_MEMORY=1 (in-memory transcript), BENCH_ONLY_AGENTGATE=1, BENCH_MODES=simple|prepared.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadOrCreateSigningKey, openTranscriptStore } from '@agentgate/transcript';
import { freePort, PASSWORD, startPgGateway, startPostgres } from '../harness/postgres.js';

const run = promisify(execFile);
const seconds = Number(process.argv[2] ?? 15);

interface Result {
  tps: number;
  latencyMs: number;
}

async function pgbench(port: number, user: string, password: string, mode: string): Promise<Result> {
  const { stdout } = await run(
    'pgbench',
    [
      '-n',
      '-S',
      '-M',
      mode,
      '-c',
      '8',
      '-j',
      '2',
      '-T',
      String(seconds),
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      user,
      'app',
    ],
    { env: { ...process.env, PGPASSWORD: password }, maxBuffer: 1 << 20 },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`cannot read pgbench output:\n${stdout}`);
  return { tps, latencyMs };
}

async function startPgbouncer(pgPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-pgbouncer-'));
  const port = await freePort();
  const { stdout } = await run('id', ['-u', 'postgres']);
  const uid = Number(stdout.trim());
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
    gid: uid,
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return {
    port,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The floor for any Node.js proxy on this machine: a bare byte relay, no parsing, no policy, no recording. */
async function startNodePipe(pgPort: number): Promise<{ port: number; stop(): void }> {
  const relay = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: pgPort, noDelay: true });
    client.pipe(upstream).on('error', () => client.destroy());
    upstream.pipe(client).on('error', () => upstream.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return { port: (relay.address() as net.AddressInfo).port, stop: () => relay.close() };
}

async function main(): Promise<void> {
  const server = await startPostgres({ maxConnections: 100 });
  const storeDir = mkdtempSync(path.join(tmpdir(), 'agentgate-bench-store-'));
  const bouncer = await startPgbouncer(server.port);
  const pipe = await startNodePipe(server.port);
  const signer = await loadOrCreateSigningKey(path.join(storeDir, 'signing-key.json'));
  const store = await openTranscriptStore({
    path: path.join(storeDir, 'transcripts'),
    failMode: 'closed',
    checkpointIntervalMs: 60_000,
    signer,
  });
  const gw = await startPgGateway(server, {
    ...(process.env.BENCH_MEMORY ? {} : { transcript: store }),
    rules: [
      {
        name: 'no-ddl-drops',
        protocol: 'postgres',
        match: { commands: ['DROP', 'TRUNCATE', 'ALTER SYSTEM'] },
        action: 'deny',
      },
      {
        name: 'deletes-need-review',
        protocol: 'postgres',
        match: { commands: ['DELETE', 'UPDATE'], tables: ['users'] },
        action: 'approve',
      },
      {
        name: 'no-file-reads',
        protocol: 'postgres',
        match: { functions: ['pg_read_file', 'lo_import'] },
        action: 'deny',
      },
    ],
    listener: { recordRows: 20 },
  });
  try {
    await run(
      'pgbench',
      ['-i', '-s', '4', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'app', 'app'],
      { env: { ...process.env, PGPASSWORD: PASSWORD } },
    );
    const token = gw.token('bench');
    const rows: string[] = [];
    const only = process.env.BENCH_ONLY_AGENTGATE === '1';
    const skipped: Result = { tps: NaN, latencyMs: NaN };
    for (const mode of (process.env.BENCH_MODES ?? 'simple,prepared').split(',')) {
      const direct = only ? skipped : await pgbench(server.port, 'app', PASSWORD, mode);
      const bounced = only ? skipped : await pgbench(bouncer.port, 'app', PASSWORD, mode);
      const piped = only ? skipped : await pgbench(pipe.port, 'app', PASSWORD, mode);
      const cpuBefore = process.cpuUsage();
      const gated = await pgbench(gw.port, 'bench', token, mode);
      const cpu = process.cpuUsage(cpuBefore);
      // The gateway runs in this process: CPU per transaction shows whether it, not the machine, is the limit.
      const cpuPerTxnUs = (cpu.user + cpu.system) / (gated.tps * seconds);
      const cpuShare = (cpu.user + cpu.system) / (seconds * 1e6);
      const line = (name: string, r: Result) =>
        `${mode.padEnd(9)} ${name.padEnd(10)} ${r.tps.toFixed(0).padStart(8)} tps  ${r.latencyMs.toFixed(3).padStart(7)} ms`;
      rows.push(
        line('direct', direct),
        line('pgbouncer', bounced),
        line('node-pipe', piped),
        line('agentgate', gated),
      );
      rows.push(
        `${mode.padEnd(9)} ratios     agentgate/direct ${(gated.tps / direct.tps).toFixed(2)}  agentgate/pgbouncer ${(gated.tps / bounced.tps).toFixed(2)}  agentgate/node-pipe ${(gated.tps / piped.tps).toFixed(2)}`,
        `${mode.padEnd(9)} agentgate process CPU ${cpuPerTxnUs.toFixed(0)} µs/transaction, ${(cpuShare * 100).toFixed(0)}% of one core`,
      );
      console.log(rows.slice(-6).join('\n'));
    }
    const sessions = store.listSessions ? await Promise.resolve(store.listSessions({})) : [];
    console.log(
      `\npgbench -S -c 8 -j 2 -T ${seconds}; transcript sessions recorded: ${Array.isArray(sessions) ? sessions.length : '?'}`,
    );
  } finally {
    await gw.stop();
    await store.close();
    await bouncer.stop();
    pipe.stop();
    await server.stop();
    rmSync(storeDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
