/**
 * Benchmark (a script, not a timed test): the console's sessions page, filters, deep pages and text search on a
 * large store, and how soon a held command reaches an open approvals page.
 *
 *   node tests/dist/bench/console-queries.js [--sessions 100000] [--events 5000000] [--runs 15] [--store DIR]
 *                                            [--reuse-index] [--only LABEL-TEXT]
 *
 * 1. Seeds a transcript store through the store's own writer (the real format, commit feed included): sessions of
 *    PostgreSQL statements, SSH commands with their output and Docker requests, some denied, some held for
 *    approval (approved, rejected or expired), started over the last 30 days by a few hundred identities. With
 *    `--store DIR` the store is kept there and reused by later runs (seeding takes minutes); `--reuse-index` also
 *    keeps the feed and index of the previous run (steps 2 and 3 are skipped).
 * 2. Times the one-off commit feed backfill such a store needs when it was written before the feed existed.
 * 3. Builds the session index from the feed, timed.
 * 4. Serves the console's HTTP handler on 127.0.0.1 and measures each page: server time in-process (from the request
 *    reaching the handler to the response being written) and end to end with an HTTP client; first (cold) run
 *    apart from the median, p95 and max of the rest.
 * 5. Holds commands for approval through the real approvals broker while an approvals page is open (Server-Sent
 *    Events) and measures from the hold to the event arriving at the client.
 * Prints the machine's load before and after; run it when the machine is quiet.
 */
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { open } from 'lmdb';
import { createApprovalBroker } from '@agentgate/approvals';
import { createConsole, IndexedSessionQuery, LiveSessions } from '@agentgate/console';
import {
  createJsonLogger,
  newId,
  silentLogger,
  type CommandDecision,
  type EventBody,
  type Identity,
  type SessionInfo,
  type SessionRecorder,
} from '@agentgate/core';
import { createIdentityService, generateSigningKeyPair, mintToken } from '@agentgate/identity';
import {
  loadOrCreateSigningKey,
  openSessionIndex,
  openTranscriptStore,
  type SessionIndex,
  type TranscriptStore,
} from '@agentgate/transcript';

// ---- arguments ------------------------------------------------------------------------------------------------

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const storeArg = process.argv.indexOf('--store');
const keepDir = storeArg < 0 ? undefined : process.argv[storeArg + 1];
const sessionTarget = arg('sessions', 100_000);
const eventTarget = arg('events', 5_000_000);
const runs = arg('runs', 15);
/** Keep the feed and the index a previous run built (with --store): only the pages are measured again. */
const reuseIndex = process.argv.includes('--reuse-index');
/** Measure only the pages whose label holds this text. */
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg < 0 ? undefined : process.argv[onlyArg + 1];

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// ---- seeding --------------------------------------------------------------------------------------------------

/** mulberry32: the same store for the same arguments. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = random(20240601);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
const int = (n: number): number => Math.floor(rnd() * n);

const identities = Array.from({ length: 300 }, (_, i) => `agent-${String(i).padStart(3, '0')}`);
/** Skewed: a few identities run most sessions. */
const identityFor = (): string => identities[Math.floor(identities.length * rnd() ** 2)]!;

interface Listener {
  name: string;
  protocol: 'postgres' | 'ssh' | 'docker';
  share: number;
}
const listeners: Listener[] = [
  { name: 'pg-prod', protocol: 'postgres', share: 0.3 },
  { name: 'pg-staging', protocol: 'postgres', share: 0.2 },
  { name: 'ssh-build', protocol: 'ssh', share: 0.15 },
  { name: 'ssh-prod', protocol: 'ssh', share: 0.1 },
  { name: 'docker-ci', protocol: 'docker', share: 0.25 },
];
function listenerFor(): Listener {
  let r = rnd();
  for (const l of listeners) if ((r -= l.share) < 0) return l;
  return listeners[0]!;
}

const sqlTables = [
  'public.users',
  'orders',
  'invoices',
  'pgbench_accounts',
  'audit_log',
  'payments',
  'products',
];
function sqlCommand(): { text: string; kind: 'allow' | 'deny' | 'hold'; command: string; table: string } {
  const r = rnd();
  const n = int(1_000_000);
  if (r < 0.01)
    return { text: `DELETE FROM users WHERE id = ${n}`, kind: 'hold', command: 'DELETE', table: 'users' };
  if (r < 0.025)
    return { text: `DROP TABLE tmp_import_${n}`, kind: 'deny', command: 'DROP', table: `tmp_import_${n}` };
  const table = pick(sqlTables);
  const text = pick([
    `SELECT abalance FROM pgbench_accounts WHERE aid = ${n}`,
    `SELECT id, email, created_at FROM ${table} WHERE id = ${n}`,
    `UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = ${n}`,
    `INSERT INTO audit_log (actor, action, at) VALUES ('${identityFor()}', 'login', now())`,
    `SELECT count(*) FROM invoices WHERE created_at > now() - interval '${1 + int(90)} days'`,
    `SELECT p.name, sum(o.total) FROM orders o JOIN products p ON p.id = o.product_id GROUP BY p.name LIMIT ${10 + int(90)}`,
    `BEGIN`,
    `COMMIT`,
  ]);
  return { text, kind: 'allow', command: text.split(' ')[0]!.toUpperCase(), table };
}
function shellCommand(): { text: string; kind: 'allow' | 'deny' | 'hold' } {
  const r = rnd();
  const n = int(100_000);
  if (r < 0.01) return { text: 'sudo systemctl restart nginx', kind: 'hold' };
  if (r < 0.03) return { text: `rm -rf /var/lib/app/data-${n}`, kind: 'deny' };
  return {
    text: pick([
      'ls -la /var/log',
      'cat /etc/os-release',
      'systemctl status nginx',
      `tail -n ${10 + int(200)} /var/log/syslog`,
      'git -C /srv/app pull --ff-only',
      `rm -rf /tmp/build-${n}`,
      `grep -rn "connection refused" /var/log/app/app-${int(30)}.log`,
      'df -h',
      `journalctl -u app --since "-${1 + int(12)}h"`,
    ]),
    kind: 'allow',
  };
}
function dockerCommand(): { text: string; kind: 'allow' | 'deny' | 'hold'; action: string; image?: string } {
  const r = rnd();
  const image = pick(['nginx:1.25', 'alpine:3.19', 'postgres:16', 'ghcr.io/acme/app:2024.06', 'redis:7']);
  if (r < 0.01)
    return {
      text: `POST /containers/create image=${image} privileged`,
      kind: 'hold',
      action: 'container.create',
      image,
    };
  if (r < 0.025)
    return {
      text: `POST /containers/create image=${image} binds=/:/host`,
      kind: 'deny',
      action: 'container.create',
      image,
    };
  const action = pick([
    'container.list',
    'container.inspect',
    'container.logs',
    'image.pull',
    'container.create',
    'container.start',
  ]);
  return { text: `${action} ${image} ${newId().slice(14)}`, kind: 'allow', action, image };
}

interface Seeded {
  sessions: number;
  events: number;
  /** ids at every 10,000th session, oldest first: deep-page cursors */
  marks: string[];
  /** a session with many events, for the session page */
  busy: string;
}

async function seed(store: TranscriptStore): Promise<Seeded> {
  const started = performance.now();
  const month = 30 * 24 * 3_600_000;
  const firstStart = Date.now() - month;
  const gap = month / sessionTarget;
  const perSession = eventTarget / sessionTarget;
  const marks: string[] = [];
  let events = 0;
  let busy = '';
  let busiest = 0;
  /** Sessions written at once, their commands interleaved as concurrent sessions' are. */
  const concurrent = 64;
  const open: { recorder: SessionRecorder; protocol: Listener['protocol']; left: number; written: number }[] =
    [];
  let opened = 0;
  let lastReport = 0;
  const openNext = (): void => {
    const listener = listenerFor();
    const startedAt = Math.floor(firstStart + opened * gap + rnd() * gap);
    const name = identityFor();
    const info: SessionInfo = {
      id: newId(startedAt),
      listener: listener.name,
      protocol: listener.protocol,
      identity: { name, groups: ['agents'], source: 'oidc', issuer: 'https://idp.example.com' },
      client: { address: `10.0.${int(256)}.${int(256)}`, port: 30000 + int(30000), local: false, tls: true },
      startedAt,
    };
    const extra: Record<string, unknown> =
      listener.protocol === 'postgres'
        ? { database: 'app', user: name, application_name: pick(['psql', 'node-postgres', null]) }
        : listener.protocol === 'ssh'
          ? { username: name, upstream: 'deploy@10.1.0.5:22' }
          : {};
    const recorder = store.openSession(info, extra);
    // Between 10 and 90 events, about `perSession` on average.
    const left = Math.max(4, Math.round(perSession * (0.2 + 1.6 * rnd())) - 2);
    open.push({ recorder, protocol: listener.protocol, left, written: 1 });
    events++;
    if ((opened + 1) % 10_000 === 0 || opened === 0) marks.push(info.id);
    opened++;
  };
  while (opened < sessionTarget || open.length > 0) {
    while (open.length < concurrent && opened < sessionTarget) openNext();
    // One command of each open session per round.
    for (let i = open.length - 1; i >= 0; i--) {
      const s = open[i]!;
      const written = writeCommand(s.recorder, s.protocol);
      events += written;
      s.written += written;
      s.left -= written;
      if (s.left <= 0) {
        s.recorder.end({ cause: 'client-left', reason: 'the client left' });
        events++;
        if (++s.written > busiest) {
          busiest = s.written;
          busy = s.recorder.sessionId;
        }
        open.splice(i, 1);
      }
    }
    if (events - lastReport >= 100_000) {
      lastReport = events;
      // Let the group commits run, and keep what is queued bounded.
      await store.flush();
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        `\r  seeding: ${opened.toLocaleString('en')} sessions, ${events.toLocaleString('en')} events, ${seconds.toFixed(0)} s (${Math.round(events / seconds).toLocaleString('en')} events/s)   `,
      );
    } else await nextTurn();
  }
  await store.flush();
  process.stdout.write('\n');
  return { sessions: opened, events, marks, busy };
}

let commandCount = 0;

/** A command of the protocol: its text, whether it is allowed, denied or held, and its recorded body. */
function commandBody(protocol: Listener['protocol']): {
  text: string;
  kind: 'allow' | 'deny' | 'hold';
  body: EventBody['command'];
} {
  if (protocol === 'postgres') {
    const c = sqlCommand();
    const statement = {
      command: c.command,
      tables: [c.table],
      functions: [],
      unfilteredWrite: false,
      text: c.text,
      dynamic: false,
    };
    return {
      ...c,
      body: {
        text: c.text,
        protocol: 'postgres',
        statements: [statement],
        detail: { database: 'app', user: 'app' },
      },
    };
  }
  if (protocol === 'ssh') {
    const c = shellCommand();
    const argv = c.text.split(' ');
    const simpleCommands = [{ program: argv[0] ?? null, argv, text: c.text }];
    return {
      ...c,
      body: { text: c.text, protocol: 'ssh', kind: 'exec', simpleCommands, detail: { channel: 'ch1' } },
    };
  }
  const c = dockerCommand();
  return {
    ...c,
    body: {
      text: c.text,
      protocol: 'docker',
      action: c.action,
      privileged: c.kind === 'hold',
      hostMounts: c.kind === 'deny' ? ['/'] : [],
      hostNamespaces: [],
      capabilities: [],
      images: c.image === undefined ? [] : [c.image],
      detail: { method: 'POST', path: '/containers/create', apiVersion: '1.45' },
    },
  };
}

/** One command with what follows it; returns how many events it appended. */
function writeCommand(recorder: SessionRecorder, protocol: Listener['protocol']): number {
  commandCount++;
  let appended = 0;
  const c = commandBody(protocol);
  const decision: CommandDecision =
    c.kind === 'deny'
      ? { action: 'deny', rule: 'no-destruction', matched: ['no-destruction'] }
      : c.kind === 'hold'
        ? { action: 'approve', rule: 'needs-review', matched: ['needs-review'] }
        : { action: 'allow' };
  const { seq } = recorder.append('command', { ...c.body, decision } as EventBody['command']);
  appended++;
  if (c.kind === 'hold') {
    const approvalId = newId();
    const r = rnd();
    const outcome = r < 0.6 ? 'approved' : r < 0.85 ? 'rejected' : 'expired';
    const requestedAt = Date.now();
    recorder.append('approval.requested', {
      approvalId,
      rule: 'needs-review',
      command: c.text,
      approvers: ['group:dba'],
      requestedAt,
      expiresAt: requestedAt + 300_000,
    });
    recorder.append('approval.decided', {
      approvalId,
      outcome,
      by: outcome === 'expired' ? null : 'alice',
      reason: outcome === 'rejected' ? 'not during business hours' : null,
      waitedMs: 1000 + int(60_000),
    });
    appended += 2;
  }
  if (protocol === 'postgres') {
    recorder.append('result', {
      commandSeq: seq,
      rowDescription: { names: ['id', 'email', 'created_at'], typeOids: [23, 25, 1184] },
      rows: Array.from({ length: 1 + int(5) }, (_, i) => [
        String(i + int(1000)),
        `user${int(1e6)}@example.com`,
        '2024-06-01 12:00:00+00',
      ]),
      rowsOmitted: 0,
      commandTag: 'SELECT 3',
      rowCount: 3,
      durationMs: Math.round(rnd() * 50 * 100) / 100,
    });
  } else if (protocol === 'ssh') {
    recorder.io('out', Buffer.from(`output line ${int(1e6)} of ${c.text}\n`.repeat(1 + int(6))), 'ch1');
    recorder.append('result', { channel: 'ch1', event: 'exit', exitStatus: c.kind === 'deny' ? 126 : 0 });
    appended += 2;
    return appended + 1;
  } else {
    recorder.append('result', {
      method: 'POST',
      path: '/containers/create',
      action: 'container.create',
      status: c.kind === 'deny' ? 403 : 200,
      commandSeq: seq,
      body: `{"Id":"${newId().toLowerCase()}","Warnings":[]}`,
      bodyBytes: 80,
    });
  }
  return appended + 1;
}

// ---- measuring ------------------------------------------------------------------------------------------------

interface Timing {
  label: string;
  cold: { server: number; client: number };
  server: number[];
  /** CPU time of the process while the handler ran (all its threads): what the load of the machine does not add */
  cpu: number[];
  client: number[];
  items: number;
  bytes: number;
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const ms = (v: number): string => v.toFixed(1).padStart(7);

async function main(): Promise<void> {
  process.stdout.write(`load average at start: ${load()}\n`);
  const dir = keepDir ?? join(tmpdir(), `agentgate-console-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const storePath = join(dir, 'store');
  const seededFile = join(dir, 'seeded.json');
  const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
  let seeded: Seeded;
  if (existsSync(seededFile)) {
    seeded = JSON.parse(readFileSync(seededFile, 'utf8')) as Seeded;
    process.stdout.write(
      `reusing the store in ${dir}: ${seeded.sessions} sessions, ${seeded.events} events\n`,
    );
  } else {
    process.stdout.write(`seeding ${sessionTarget} sessions, ~${eventTarget} events into ${storePath}\n`);
    const store = await openTranscriptStore({
      path: storePath,
      failMode: 'open',
      checkpointIntervalMs: 0,
      signer,
    });
    const started = performance.now();
    seeded = await seed(store);
    await store.close();
    process.stdout.write(
      `seeded ${seeded.sessions} sessions, ${seeded.events} events, ${commandCount} commands in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
    );
    writeFileSync(seededFile, JSON.stringify(seeded));
  }
  const storeBytes = statSync(join(storePath, 'data.mdb')).size;

  // The store as one written before the commit feed: the feed is backfilled when a writer opens it.
  if (!reuseIndex) {
    const env = open<string, string>({ path: storePath, encoding: 'string', maxDbs: 8 });
    await env.openDB('feed', { encoding: 'string' }).clearAsync();
    env.openDB('meta', { encoding: 'string' }).removeSync('feed');
    await env.close();
  }
  const backfillStarted = performance.now();
  const store = await openTranscriptStore({
    path: storePath,
    failMode: 'closed',
    checkpointIntervalMs: 0,
    signer,
  });
  const backfillMs = performance.now() - backfillStarted;
  process.stdout.write(
    `commit feed backfill at open: ${(backfillMs / 1000).toFixed(1)} s (${store.feed.head()} records)\n`,
  );

  const indexPath = join(dir, 'session-index');
  const cpuBefore = process.cpuUsage();
  const indexStarted = performance.now();
  const index = await openSessionIndex({
    store,
    path: indexPath,
    rebuild: !reuseIndex,
    settleMs: 0,
    stepEvents: 5000,
  });
  let reported = 0;
  while (!(await index.caughtUp(5_000))) {
    const { position, head } = index.status();
    if (position - reported > 0) {
      reported = position;
      process.stdout.write(
        `\r  indexing: ${position}/${head} feed records, ${((performance.now() - indexStarted) / 1000).toFixed(0)} s   `,
      );
    }
  }
  const indexMs = performance.now() - indexStarted;
  const indexCpu = process.cpuUsage(cpuBefore);
  const indexBytes = statSync(join(indexPath, 'data.mdb')).size;
  process.stdout.write(
    `\nindex built in ${(indexMs / 1000).toFixed(1)} s (${Math.round(seeded.events / (indexMs / 1000)).toLocaleString('en')} events/s, main thread ${((indexCpu.user + indexCpu.system) / 1e6).toFixed(1)} s CPU); store ${(storeBytes / 2 ** 20).toFixed(0)} MiB, index ${(indexBytes / 2 ** 20).toFixed(0)} MiB\n`,
  );

  const served = await serveConsole(store, index, dir);
  try {
    const auditor = await served.signIn('carol', ['auditors']);
    const approver = await served.signIn('alice', ['dba']);
    const [mid, deep] = [seeded.marks[Math.floor(seeded.marks.length / 2)]!, seeded.marks[1]!];
    const day = 24 * 3_600_000;
    const week = new Date(Date.now() - 7 * day).toISOString().slice(0, 16);
    const weekEnd = new Date(Date.now() - 6 * day).toISOString().slice(0, 16);
    const pages: [string, string][] = [
      ['sessions, first page', '/sessions'],
      ['filter: identity + protocol', '/sessions?identity=agent-007&protocol=postgres'],
      ['filter: listener + denials', '/sessions?listener=ssh-prod&denied=1'],
      ['filter: approvals + one day', `/sessions?approvals=1&since=${week}&until=${weekEnd}`],
      ['filter: rare identity + denials', '/sessions?identity=agent-299&denied=1'],
      ['deep page (cursor, middle)', `/sessions?before=${mid}`],
      ['deep page (cursor, oldest 10%)', `/sessions?before=${deep}`],
      ['deep filtered page', `/sessions?protocol=docker&denied=1&before=${mid}`],
      ['search: users', '/sessions?q=users'],
      [
        'search: pgbench_accounts where aid = 4242',
        `/sessions?q=${encodeURIComponent('pgbench_accounts where aid = 4242')}`,
      ],
      ['search: "rm -rf /var/lib"', `/sessions?q=${encodeURIComponent('"rm -rf /var/lib"')}`],
      ['search: rm (2 characters)', '/sessions?q=rm'],
      ['search: tmp_import + denials', '/sessions?q=tmp_import&denied=1'],
      ['search: users + identity', '/sessions?q=users&identity=agent-013'],
      ['search: no match', '/sessions?q=nosuchtextanywhere'],
      ['search: deep page', `/sessions?q=orders&before=${mid}`],
      ['overview (24 h activity)', '/'],
      ['a session page', `/sessions/${seeded.busy || mid}`],
    ];
    const timings: Timing[] = [];
    for (const [label, path] of pages)
      if (only === undefined || label.includes(only))
        timings.push(await served.measure(label, path, auditor));
    process.stdout.write(
      `\nconsole pages (${runs} runs each; server = in-process handler time, cpu = the process's CPU time meanwhile, client = HTTP round trip; ms)\n` +
        `${'page'.padEnd(44)} ${'cold srv'.padStart(8)} ${'cold cli'.padStart(8)} ${'p50 srv'.padStart(7)} ${'p95 srv'.padStart(7)} ${'max srv'.padStart(7)} ${'p50 cpu'.padStart(7)} ${'p50 cli'.padStart(7)}  rows\n`,
    );
    for (const t of timings) {
      process.stdout.write(
        `${t.label.padEnd(44)} ${ms(t.cold.server)} ${ms(t.cold.client)} ${ms(percentile(t.server, 50))} ${ms(percentile(t.server, 95))} ${ms(Math.max(...t.server))} ${ms(percentile(t.cpu, 50))} ${ms(percentile(t.client, 50))}  ${t.items}\n`,
      );
    }
    const latencies = await served.approvals(approver, 10);
    process.stdout.write(
      `\napproval held → on an open approvals page (SSE): p50 ${ms(percentile(latencies, 50))} ms, max ${ms(Math.max(...latencies))} ms (${latencies.length} holds)\n`,
    );
  } finally {
    await served.close();
    await index.close();
    await store.close();
    if (keepDir === undefined) rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`load average at end: ${load()}\n`);
}

/** The console handler on an HTTP server, as the admin listener mounts it, with a real broker and identity service. */
async function serveConsole(store: TranscriptStore, index: SessionIndex, dir: string) {
  const idp = await generateSigningKeyPair('ES256');
  writeFileSync(join(dir, 'idp-jwks.json'), JSON.stringify(idp.jwks));
  const identity = await createIdentityService({
    oidc: [
      {
        issuer: 'bench-idp',
        audience: 'agentgate',
        jwks: join(dir, 'idp-jwks.json'),
        groupsClaim: 'groups',
        clockSkewSeconds: 30,
      },
    ],
    tokens: [],
    sshKeys: [],
  });
  const signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
  const broker = createApprovalBroker({
    config: { timeoutMs: 60_000, approvers: ['group:dba'] },
    signer,
    identity,
    log: silentLogger,
  });
  const live = new LiveSessions();
  let serverMs = 0;
  let serverCpuMs = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const cpuAtStart = process.cpuUsage();
    res.once('finish', () => {
      serverMs = performance.now() - started;
      const cpu = process.cpuUsage(cpuAtStart);
      serverCpuMs = (cpu.user + cpu.system) / 1000;
    });
    const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    handler.handle(req, res, pathname).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      (err: unknown) => {
        console.error(`${req.url}:`, err);
        res.destroy();
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const handler = createConsole({
    config: { publicUrl: origin, auditors: ['group:auditors'], admins: [], sessionTtlMs: 3_600_000 },
    identity,
    approvers: () => ['group:dba'],
    approvals: broker,
    store,
    verifySignature: (jws) => signer.verifyCompact(jws),
    live,
    listeners: () => listeners.map((l) => ({ name: l.name, protocol: l.protocol })),
    storeSizeBytes: () => statSync(join(dir, 'store', 'data.mdb')).size,
    linkLedgerFile: join(dir, 'console-links-used.jsonl'),
    record: () => undefined,
    log: createJsonLogger({ level: 'error' }),
    sessionQuery: new IndexedSessionQuery(
      index,
      (id) => live.has(id),
      (id) => store.getSession(id),
    ),
  });

  return {
    async signIn(sub: string, groups: string[]): Promise<string> {
      const token = await mintToken({
        privateJwk: idp.privateJwk,
        sub,
        groups,
        ttlSeconds: 3600,
        issuer: 'bench-idp',
        audience: 'agentgate',
        extraClaims: { purpose: 'console-link' },
      });
      const response = await fetch(`${origin}/auth/link`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
        body: new URLSearchParams({ token }).toString(),
      });
      const cookie = response.headers.get('set-cookie');
      if (response.status !== 303 || cookie === null) throw new Error(`sign-in failed: ${response.status}`);
      return cookie.split(';')[0]!;
    },

    async measure(label: string, path: string, cookie: string): Promise<Timing> {
      const one = async (): Promise<{ server: number; cpu: number; client: number; body: string }> => {
        const started = performance.now();
        const response = await fetch(`${origin}${path}`, { headers: { cookie } });
        const body = await response.text();
        const client = performance.now() - started;
        if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
        return { server: serverMs, cpu: serverCpuMs, client, body };
      };
      const cold = await one();
      const server: number[] = [];
      const cpu: number[] = [];
      const client: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await one();
        server.push(r.server);
        cpu.push(r.cpu);
        client.push(r.client);
      }
      const items = (cold.body.match(/<td><a href="\/sessions\//g) ?? []).length;
      return {
        label,
        cold: { server: cold.server, client: cold.client },
        server,
        cpu,
        client,
        items,
        bytes: cold.body.length,
      };
    },

    /** Hold `count` commands one after another while an approvals page is open; ms from each hold to its event. */
    async approvals(cookie: string, count: number): Promise<number[]> {
      const controller = new AbortController();
      const response = await fetch(`${origin}/approvals/events`, {
        headers: { cookie },
        signal: controller.signal,
      });
      const seen = new Map<string, number>();
      const waiters = new Set<() => void>();
      const reading = (async () => {
        const decoder = new TextDecoder();
        let text = '';
        try {
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            text += decoder.decode(chunk, { stream: true });
            let end: number;
            while ((end = text.indexOf('\n\n')) >= 0) {
              const message = text.slice(0, end);
              text = text.slice(end + 2);
              const data = /^data: (.*)$/m.exec(message)?.[1];
              if (!message.startsWith('event: approval') || data === undefined) continue;
              const { id, state } = JSON.parse(data) as { id: string; state: string };
              if (state === 'pending' && !seen.has(id)) seen.set(id, performance.now());
              for (const wake of waiters) wake();
            }
          }
        } catch {
          // aborted at the end
        }
      })();
      const latencies: number[] = [];
      const requester: Identity = { name: 'agent-001', groups: ['agents'], source: 'oidc' };
      for (let i = 0; i < count; i++) {
        const info: SessionInfo = {
          id: newId(),
          listener: 'pg-prod',
          protocol: 'postgres',
          identity: requester,
          client: { address: '10.0.0.1', port: 40000 + i, local: false, tls: true },
          startedAt: Date.now(),
        };
        const recorder = live.wrap(store).openSession(info);
        const text = `DELETE FROM users WHERE id = ${i}`;
        recorder.append('command', {
          text,
          protocol: 'postgres',
          statements: [],
          decision: { action: 'approve', rule: 'needs-review' },
        });
        const before = new Set(seen.keys());
        const held = performance.now();
        const settled = broker.request({
          session: info,
          recorder,
          command: { protocol: 'postgres', text, statements: [] },
          rule: 'needs-review',
          approvers: [],
        });
        const arrived = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no approval event within 10 s')), 10_000);
          const check = (): void => {
            for (const [id, at] of seen)
              if (!before.has(id)) {
                clearTimeout(timer);
                waiters.delete(check);
                resolve(at);
              }
          };
          waiters.add(check);
        });
        latencies.push(arrived - held);
        const pending = broker.list().find((p) => p.session === info.id)!;
        broker.deny(pending.id, { name: 'alice', groups: ['dba'], source: 'oidc' }, 'bench');
        await settled;
        recorder.end({ cause: 'client-left', reason: 'the client left' });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      controller.abort();
      await reading;
      return latencies;
    },

    async close(): Promise<void> {
      handler.close();
      broker.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
