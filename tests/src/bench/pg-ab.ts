/**
 * An in-process A/B of two agentgate builds' whole PostgreSQL path: one PostgreSQL, a gateway started from each
 * build's own test harness in this process (configured as pgbench.ts configures it), and a client process of its
 * own on a raw protocol socket to each gateway. Each round sends a batch of sequential pgbench `-S` statements
 * through one gateway then the other (which goes first alternates every round), once as simple Queries and once as
 * Executes of a prepared statement (Bind, Describe, Execute, Sync, as libpq sends them). Each batch's main-thread
 * and all-thread CPU come from `/proc/self/task/*` `schedstat` (nanoseconds), so a few µs per statement show where
 * alternated whole pgbench runs at load cannot resolve 30% (docs/performance.md, A/A check). Both stores are
 * verified at the end. Run it in both orders.
 *
 * Run: node tests/dist/bench/pg-ab.js ROOT_A ROOT_B [rounds=600] [batch=100]
 * ROOT_A / ROOT_B are checkouts with their own build (`pnpm build`); both must load one lmdb-js (one-lmdb.ts).
 * `AB_MODES=simple,prepared` picks the modes. `AB_COMMIT_WINDOW_A=10ms` and `AB_COMMIT_WINDOW_B=50ms` set each side's
 * `store.commitWindow` (otherwise `BENCH_COMMIT_WINDOW`, or the default), so one build run as both sides measures
 * the window itself; with a window longer than a batch takes, a side's last commit of a batch can fall in the other
 * side's next batch, so use batches of many times the window (e.g. 1000 statements).
 */
import { execFile, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pgBenchGatewayYaml } from './bench-store.js';
import { requireOneLmdb } from './one-lmdb.js';
import { ownAllThreadsNs, ownMainThreadNs } from './process-cpu.js';
import type { TestGateway } from '../harness/gateway.js';

const run = promisify(execFile);
const [rootA, rootB] = process.argv.slice(2, 4).map((root) => resolve(root));
const rounds = Number(process.argv[4] ?? 600);
const batch = Number(process.argv[5] ?? 100);
const modes = (process.env['AB_MODES'] ?? 'simple,prepared').split(',');

interface Arm {
  readonly root: string;
  readonly gw: TestGateway;
  readonly port: number;
  readonly token: string;
}
interface Batch {
  readonly mainUs: number;
  readonly allUs: number;
  readonly p50Us: number;
}

/**
 * The client: one connection per target, logged in with a cleartext password (the gateway's token), a named
 * statement prepared on each. A line "i k mode" runs k statements on connection i and answers their p50 in µs.
 */
const clientSource = `
const net = require('node:net');
const targets = JSON.parse(process.argv[1]);
const msg = (type, body) => {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
};
const cstr = (s) => Buffer.from(s + '\\0');
const int16 = (n) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const int32 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const SQL = 'SELECT abalance FROM pgbench_accounts WHERE aid = ';
const accounts = 100000;
class Conn {
  constructor(t) {
    this.t = t; this.buf = Buffer.alloc(0); this.wait = undefined; this.errors = 0;
  }
  open() {
    return new Promise((resolve, reject) => {
      this.socket = net.connect({ host: '127.0.0.1', port: this.t.port, noDelay: true }, resolve);
      this.socket.on('error', reject);
      this.socket.on('data', (d) => this.onData(d));
    });
  }
  onData(d) {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let off = 0;
    while (this.buf.length - off >= 5) {
      const len = this.buf.readInt32BE(off + 1);
      if (this.buf.length - off < len + 1) break;
      const type = String.fromCharCode(this.buf[off]);
      const body = this.buf.subarray(off + 5, off + 1 + len);
      off += len + 1;
      if (type === 'E') { this.errors++; process.stderr.write('error: ' + body.toString() + '\\n'); }
      if (type === 'R' && body.readInt32BE(0) === 3) this.socket.write(msg('p', cstr(this.t.password)));
      if (type === 'Z' && this.wait) { const w = this.wait; this.wait = undefined; w(); }
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
  }
  ready() { return new Promise((resolve) => (this.wait = resolve)); }
  async login() {
    await this.open();
    const params = Buffer.concat([int32(196608), cstr('user'), cstr(this.t.user), cstr('database'), cstr('app'), Buffer.of(0)]);
    const start = Buffer.alloc(4 + params.length);
    start.writeInt32BE(start.length);
    params.copy(start, 4);
    const r = this.ready();
    this.socket.write(start);
    await r;
    const p = this.ready();
    this.socket.write(Buffer.concat([
      msg('P', Buffer.concat([cstr('ab'), cstr(SQL + '$1'), int16(0)])),
      msg('S', Buffer.alloc(0)),
    ]));
    await p;
  }
  statement(mode) {
    const aid = String(1 + Math.floor(Math.random() * accounts));
    const r = this.ready();
    if (mode === 'simple') this.socket.write(msg('Q', cstr(SQL + aid + ';')));
    else {
      const value = Buffer.from(aid);
      this.socket.write(Buffer.concat([
        msg('B', Buffer.concat([cstr(''), cstr('ab'), int16(0), int16(1), int32(value.length), value, int16(0)])),
        msg('D', Buffer.concat([Buffer.from('P'), cstr('')])),
        msg('E', Buffer.concat([cstr(''), int32(0)])),
        msg('S', Buffer.alloc(0)),
      ]));
    }
    return r;
  }
}
const conns = targets.map((t) => new Conn(t));
let buffered = '';
let queue = Promise.resolve();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (data) => {
  buffered += data;
  for (let nl = buffered.indexOf('\\n'); nl >= 0; nl = buffered.indexOf('\\n')) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    queue = queue.then(() => handle(line));
  }
});
async function handle(line) {
  if (line === 'login') {
    for (const c of conns) await c.login();
    return process.stdout.write('{}\\n');
  }
  if (line === 'quit') {
    for (const c of conns) c.socket.end(msg('X', Buffer.alloc(0)));
    const errors = conns.reduce((n, c) => n + c.errors, 0);
    process.stdout.write(JSON.stringify({ errors }) + '\\n');
    return;
  }
  const [i, k, mode] = line.split(' ');
  const conn = conns[Number(i)];
  const times = [];
  for (let j = 0; j < Number(k); j++) {
    const t0 = process.hrtime.bigint();
    await conn.statement(mode);
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  times.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p50: times[Math.floor(times.length / 2)] }) + '\\n');
}`;

const windowNote = (arm: number): string => {
  const window = process.env[arm === 0 ? 'AB_COMMIT_WINDOW_A' : 'AB_COMMIT_WINDOW_B'];
  return window ? ` (commitWindow ${window})` : '';
};

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function startArm(
  root: string,
  upstreamPort: number,
  password: string,
  commitWindow: string | undefined,
): Promise<Arm> {
  const harness = (await import(
    join(root, 'tests/dist/harness/gateway.js')
  )) as typeof import('../harness/gateway.js');
  // Both arms run the gateway as pgbench.js configures it, whichever build they load.
  const gw = await harness.startTestGateway(pgBenchGatewayYaml(upstreamPort, password, commitWindow));
  const { port } = gw.address('pg') as { port: number };
  return { root, gw, port, token: await gw.token('bench', ['agents']) };
}

async function main(): Promise<void> {
  if (!rootA || !rootB) throw new Error('usage: pg-ab.js ROOT_A ROOT_B [rounds] [batch]');
  requireOneLmdb(rootA, rootB);
  const pg = (await import(
    join(rootA, 'tests/dist/harness/postgres.js')
  )) as typeof import('../harness/postgres.js');
  const server = await pg.startPostgres({ maxConnections: 20 });
  const arms: Arm[] = [];
  try {
    await run(
      'pgbench',
      ['-i', '-s', '1', '-q', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'app', 'app'],
      { env: { ...process.env, PGPASSWORD: pg.PASSWORD } },
    );
    arms.push(
      await startArm(rootA, server.port, pg.PASSWORD, process.env['AB_COMMIT_WINDOW_A']),
      await startArm(rootB, server.port, pg.PASSWORD, process.env['AB_COMMIT_WINDOW_B']),
    );
    const targets = arms.map(({ port, token }) => ({ port, user: 'bench', password: token }));
    const client = spawn(process.execPath, ['-e', clientSource, JSON.stringify(targets)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    client.stdout.setEncoding('utf8');
    let answer: ((line: string) => void) | undefined;
    let out = '';
    client.stdout.on('data', (data: string) => {
      out += data;
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        answer?.(line);
      }
    });
    const ask = (line: string): Promise<string> =>
      new Promise((resolve) => {
        answer = resolve;
        client.stdin.write(`${line}\n`);
      });
    const statements = async (arm: number, k: number, mode: string): Promise<number> =>
      (JSON.parse(await ask(`${arm} ${k} ${mode}`)) as { p50: number }).p50;

    await ask('login');
    // Warm-up: V8 settles both builds' relay code before anything is measured.
    for (const mode of modes) for (const arm of [0, 1]) await statements(arm, 3000, mode);
    const batches = new Map(modes.map((mode) => [mode, [[], []] as Batch[][]]));
    for (let round = 0; round < rounds; round++) {
      for (const mode of modes) {
        for (const arm of round % 2 === 0 ? [0, 1] : [1, 0]) {
          const main0 = ownMainThreadNs();
          const all0 = ownAllThreadsNs();
          const p50Us = await statements(arm, batch, mode);
          batches.get(mode)![arm]!.push({
            mainUs: (ownMainThreadNs() - main0) / batch / 1000,
            allUs: (ownAllThreadsNs() - all0) / batch / 1000,
            p50Us,
          });
        }
      }
    }
    const { errors } = JSON.parse(await ask('quit')) as { errors: number };
    client.stdin.end();
    // The sessions end as the client leaves; their last events are committed before the stores are verified.
    await new Promise((r) => setTimeout(r, 500));
    const verified = [];
    for (const arm of arms) {
      const report = await arm.gw.store.verify();
      verified.push(`${report.ok ? 'ok' : 'FAILED'} (${report.events} events)`);
      if (!report.ok) process.stderr.write(`${arm.root}: ${JSON.stringify(report).slice(0, 600)}\n`);
    }
    const load = loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
    for (const [i, arm] of arms.entries())
      process.stdout.write(`${i === 0 ? 'A' : 'B'} ${arm.root}${windowNote(i)}: store ${verified[i]}\n`);
    for (const mode of modes) {
      const [a, b] = batches.get(mode)! as [Batch[], Batch[]];
      for (const [name, xs] of [
        ['A', a],
        ['B', b],
      ] as const)
        process.stdout.write(
          `${mode} ${name}: main thread ${median(xs.map((x) => x.mainUs)).toFixed(2)} µs per statement, ` +
            `all threads ${median(xs.map((x) => x.allUs)).toFixed(2)}, client p50 ` +
            `${median(xs.map((x) => x.p50Us)).toFixed(1)} µs (medians of ${rounds} batches of ${batch})\n`,
        );
      const diff = (key: keyof Batch): string => median(b.map((x, i) => x[key] - a[i]![key])).toFixed(2);
      const lower = b.filter((x, i) => x.mainUs < a[i]!.mainUs).length;
      process.stdout.write(
        `${mode} B − A per round (median): main thread ${diff('mainUs')} µs, all threads ${diff('allUs')} µs, ` +
          `p50 ${diff('p50Us')} µs; B lower in ${lower} of ${rounds} rounds\n`,
      );
    }
    process.stdout.write(`client errors ${errors}; load ${load}\n`);
  } finally {
    for (const arm of arms) await arm.gw.stop();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
