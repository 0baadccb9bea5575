import { spawn } from 'node:child_process';

/**
 * The Docker benchmarks' load client, run as a process of its own (`node -e SOURCE TARGETS_JSON`): each stdin line
 * "i k" sends k sequential keep-alive GETs of AB_PATH (default /containers/json) to target i and answers their p50
 * in µs; "quit" ends it.
 */
export const batchClientSource = `
const http = require('node:http');
const targets = JSON.parse(process.argv[1]);
const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
const path = process.env.AB_PATH || '/containers/json';
const once = (i) => new Promise((resolve, reject) => {
  const req = http.request({ ...targets[i].target, agent: agents[i], path, headers: targets[i].headers }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error('status ' + res.statusCode))));
  });
  req.on('error', reject);
  req.end();
});
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', async (data) => {
  buffered += data;
  const nl = buffered.indexOf('\\n');
  if (nl < 0) return;
  const line = buffered.slice(0, nl);
  buffered = buffered.slice(nl + 1);
  if (line === 'quit') process.exit(0);
  const [i, k] = line.split(' ').map(Number);
  const times = [];
  for (let j = 0; j < k; j++) {
    const t0 = process.hrtime.bigint();
    await once(i);
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  times.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p50: times[Math.floor(k / 2)] }) + '\\n');
});`;

export interface BatchClient {
  /** Run `requests` sequential requests against target `index`; resolves their p50 in µs. */
  ask(index: number, requests: number): Promise<number>;
  quit(): void;
}

/** Start the load client for these targets (each `{ target, headers }`, as http.request takes them). */
export function startBatchClient(targets: readonly unknown[]): BatchClient {
  const client = spawn(process.execPath, ['-e', batchClientSource, JSON.stringify(targets)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  client.stdout.setEncoding('utf8');
  let answer: ((p50: number) => void) | undefined;
  let out = '';
  client.stdout.on('data', (data: string) => {
    out += data;
    const nl = out.indexOf('\n');
    if (nl < 0) return;
    const line = out.slice(0, nl);
    out = out.slice(nl + 1);
    answer?.((JSON.parse(line) as { p50: number }).p50);
  });
  return {
    ask: (index, requests) =>
      new Promise((resolve) => {
        answer = resolve;
        client.stdin.write(`${index} ${requests}\n`);
      }),
    quit: () => client.stdin.write('quit\n'),
  };
}
