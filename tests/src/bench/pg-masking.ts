/**
 * Benchmark (issue 5 §7): `SELECT *` of 10,000 rows × 6 columns, 2 of them masked, straight to PostgreSQL, through
 * agentgate without masking (a listener no masking rule applies to) and through agentgate with masking (column
 * masks + content detectors on every text value), in one run; median of several runs each, node-postgres client,
 * transcript on. Target: masked ≤ 1.3× the unmasked time through agentgate. The clients run in a worker thread (their
 * own event loop, as a client would be its own process), so their row parsing does not queue behind the gateway.
 * Besides end-to-end times it reports the gateway's own busy time per query (event-loop active time of the main
 * thread, measured around blocks of queries of one kind), which is less sensitive to other load on the machine.
 * Run: npx tsc -b tests && node tests/dist/bench/pg-masking.js [runs]
 */
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import { startTestGateway } from '../harness/gateway.js';
import { PASSWORD, startPostgres } from '../harness/postgres.js';

const runs = Number(process.argv[2] ?? 15);
const SQL = 'SELECT * FROM bench';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function time(client: pg.Client): Promise<number> {
  const t0 = process.hrtime.bigint();
  const result = await client.query({ text: SQL, rowMode: 'array' } as pg.QueryArrayConfig);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (result.rows.length !== 10_000) throw new Error(`expected 10000 rows, got ${result.rows.length}`);
  return ms;
}

async function main(): Promise<void> {
  const server = await startPostgres();
  await server.psql(['-d', 'app'], {
    input: `
CREATE TABLE bench (id int, name text, email text, api_key text, created_at timestamptz, note text);
INSERT INTO bench SELECT i, 'User Number ' || i, 'user' || i || '@example.com', md5(i::text), now(), 'order ' || i || ' shipped to warehouse ' || (i % 17)
  FROM generate_series(1, 10000) i;
ALTER TABLE bench OWNER TO app;
`,
  });
  const gw = await startTestGateway(
    `
listeners:
  - { name: plain, protocol: postgres, listen: 127.0.0.1:0, allow: [group:agents], upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "${PASSWORD}", database: app } }
  - { name: masked, protocol: postgres, listen: 127.0.0.1:0, allow: [group:agents], upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "${PASSWORD}", database: app } }
masking:
  - name: pii
    listeners: [masked]
    columns: ["bench.email", "bench.api_key"]
    detectors: [email, credit_card, us_ssn, aws_access_key, private_key, jwt]
`,
  );
  try {
    const token = await gw.token('bench', ['agents']);
    const targets: Record<string, pg.ClientConfig> = {
      direct: { host: '127.0.0.1', port: server.port, user: 'app', password: PASSWORD, database: 'app' },
      'agentgate, no masking': {
        ...(gw.address('plain') as { host: string; port: number }),
        user: 'bench',
        database: 'app',
        password: token,
      },
      'agentgate, masking': {
        ...(gw.address('masked') as { host: string; port: number }),
        user: 'bench',
        database: 'app',
        password: token,
      },
    };
    const worker = new Worker(new URL(import.meta.url), { workerData: { targets, runs } });
    // Gateway busy time per block of queries of one kind (the worker asks before and after each block).
    const busy: Record<string, number[]> = {};
    let elu = performance.eventLoopUtilization();
    const result = await new Promise<Record<string, number[]> | { error: string }>((resolve, reject) => {
      worker.on('message', (raw: unknown) => {
        const m = raw as { mark?: 'begin' | 'end'; name?: string; queries?: number };
        if (m.mark) {
          if (m.mark === 'begin') elu = performance.eventLoopUtilization();
          else (busy[m.name!] ??= []).push(performance.eventLoopUtilization(elu).active / m.queries!);
          worker.postMessage('ack');
        } else resolve(raw as Record<string, number[]>);
      });
      worker.once('error', reject);
    });
    await worker.terminate();
    if ('error' in result) throw new Error(String(result.error));
    const medians = Object.fromEntries(Object.entries(result).map(([k, v]) => [k, median(v as number[])]));
    const plain = medians['agentgate, no masking']!;
    console.log(`SELECT * FROM bench: 10,000 rows × 6 columns, 2 masked; median of ${runs} runs`);
    for (const [name, ms] of Object.entries(medians))
      console.log(
        `  ${name.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms  (${(ms / plain).toFixed(2)}× unmasked agentgate)`,
      );
    const ratio = medians['agentgate, masking']! / plain;
    console.log(
      `masking overhead: ${ratio.toFixed(2)}× (target ≤ 1.30×) ${ratio <= 1.3 ? 'OK' : 'OVER TARGET'}`,
    );
    const busyPlain = median(busy['agentgate, no masking']!);
    const busyMasked = median(busy['agentgate, masking']!);
    console.log(
      `gateway busy time per query (median): no masking ${busyPlain.toFixed(1)} ms, masking ${busyMasked.toFixed(1)} ms ` +
        `(+${(busyMasked - busyPlain).toFixed(1)} ms; direct: ${median(busy['direct']!).toFixed(1)} ms, idle gateway)`,
    );
  } finally {
    await gw.stop();
    await server.stop();
  }
}

/** The worker: connects the three clients and times interleaved runs (drift affects each equally). */
async function measure(
  targets: Record<string, pg.ClientConfig>,
  n: number,
): Promise<Record<string, number[]>> {
  const clients = Object.fromEntries(Object.entries(targets).map(([k, cfg]) => [k, new pg.Client(cfg)]));
  for (const c of Object.values(clients)) await c.connect();
  const sample = await clients['agentgate, masking']!.query({
    text: `${SQL} LIMIT 1`,
    rowMode: 'array',
  } as pg.QueryArrayConfig);
  if (JSON.stringify(sample.rows).includes('@example.com')) throw new Error('masking is not in effect');
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
  for (const c of Object.values(clients)) for (let i = 0; i < 3; i++) await time(c);
  const ask = (message: { mark: 'begin' | 'end'; name?: string; queries?: number }): Promise<void> =>
    new Promise((resolve) => {
      parentPort!.once('message', () => resolve());
      parentPort!.postMessage(message);
    });
  const perBlock = 3;
  for (let r = 0; r < Math.ceil(n / perBlock); r++) {
    for (const [name, c] of Object.entries(clients)) {
      await ask({ mark: 'begin' });
      for (let i = 0; i < perBlock; i++) times[name]!.push(await time(c));
      await ask({ mark: 'end', name, queries: perBlock });
    }
  }
  for (const c of Object.values(clients)) await c.end();
  return times;
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  const data = workerData as { targets: Record<string, pg.ClientConfig>; runs: number };
  measure(data.targets, data.runs).then(
    (times) => parentPort!.postMessage(times),
    (err: unknown) => parentPort!.postMessage({ error: String(err) }),
  );
}
