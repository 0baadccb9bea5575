/**
 * An in-process A/B of two agentgate builds' work on one structured event, without a store: the body through the
 * redactor (built-in entries, as the session recorder applies it) and `encodeEventBytes` (JSON, hash, bytes), for
 * the bodies a PostgreSQL `pgbench -S` statement and a Docker `GET /containers/json` record (command with its
 * decision, and result). Both builds are loaded in this process; each round runs a batch of every body on one build
 * then the other (which goes first alternates every round), timing each batch by the clock: the loop is synchronous
 * and `schedstat` moves in whole scheduler ticks here, too coarse for a batch of a few ms. Run it in both orders,
 * and at a steady load (another process taking the core shows up as a slow batch of whichever build ran).
 *
 * Run: node tests/dist/bench/event-encode-ab.js ROOT_A ROOT_B [rounds=60] [batch=20000]
 * `AB_PART=redact` or `AB_PART=encode` measures one half alone.
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import type { Redactor, TranscriptEventType } from '@agentgate/core';
import { fromBuild } from './ab-rounds.js';

type Masking = typeof import('@agentgate/masking');
type Codec = typeof import('../../../packages/transcript/src/event-codec.js');

const [rootA, rootB] = process.argv.slice(2, 4).map((root) => resolve(root));
const rounds = Number(process.argv[4] ?? 60);
const batch = Number(process.argv[5] ?? 20_000);
const part = process.env['AB_PART'] ?? 'both';

/** What dockerd answers `GET /containers/json` with for one running container (1,059 characters). */
const containersJson =
  JSON.stringify([
    {
      Id: '4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f',
      Names: ['/agentgate-bench-1'],
      Image: 'busybox:1.36',
      ImageID: 'sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741',
      Command: 'sleep 3600',
      Created: 1796500700,
      Ports: [],
      Labels: { 'agentgate.test': 'bench' },
      State: 'running',
      Status: 'Up 5 minutes',
      HostConfig: { NetworkMode: 'bridge' },
      NetworkSettings: {
        Networks: {
          bridge: {
            IPAMConfig: null,
            Links: null,
            Aliases: null,
            MacAddress: '02:42:ac:11:00:02',
            DriverOpts: null,
            NetworkID: '9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b',
            EndpointID: '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b',
            Gateway: '172.17.0.1',
            IPAddress: '172.17.0.2',
            IPPrefixLen: 16,
            IPv6Gateway: '',
            GlobalIPv6Address: '',
            GlobalIPv6PrefixLen: 0,
            DNSNames: null,
          },
        },
      },
      Mounts: [],
    },
  ]) + '\n';

/** A fresh body per call, as the gateway builds one per statement or request. */
const bodies: Record<string, { type: TranscriptEventType; make: (n: number) => Record<string, unknown> }> = {
  pgCommand: {
    type: 'command',
    make: (n) => ({
      text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${n};`,
      protocol: 'postgres',
      statements: [
        {
          command: 'SELECT',
          tables: ['pgbench_accounts'],
          functions: [],
          unfilteredWrite: false,
          text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${n}`,
          dynamic: false,
        },
      ],
      detail: { database: 'app', user: 'agent' },
      decision: { action: 'allow', rule: 'reads', matched: ['reads'] },
    }),
  },
  pgResult: {
    type: 'result',
    make: (n) => ({
      commandSeq: n,
      rowDescription: { names: ['abalance'], typeOids: [23] },
      rows: [[String(-n % 5000)]],
      rowsOmitted: 0,
      commandTag: 'SELECT 1',
      rowCount: 1,
      durationMs: 0.187,
    }),
  },
  dockerCommand: {
    type: 'command',
    make: () => ({
      text: 'GET /containers/json',
      protocol: 'docker',
      action: 'container.list',
      privileged: false,
      hostMounts: [],
      hostNamespaces: [],
      capabilities: [],
      images: [],
      detail: { method: 'GET', path: '/containers/json', apiVersion: '1.47', query: {} },
      decision: { action: 'allow', rule: 'docker-read', matched: ['docker-read'] },
    }),
  },
  dockerResult: {
    type: 'result',
    make: (n) => ({
      method: 'GET',
      path: '/containers/json',
      action: 'container.list',
      status: 200,
      commandSeq: n,
      body: containersJson,
      bodyBytes: containersJson.length,
    }),
  },
};
const kinds = Object.keys(bodies);

interface Arm {
  readonly root: string;
  readonly redactor: Redactor;
  readonly codec: Codec;
  /** µs per event, one entry per batch, per body kind */
  readonly us: Map<string, number[]>;
}

async function arm(root: string): Promise<Arm> {
  const from = fromBuild(root);
  const masking = (await from('packages/masking/dist/index.js')) as Masking;
  const codec = (await from('packages/transcript/dist/event-codec.js')) as Codec;
  const redactor = masking.createRedactor({ defaults: true, disable: [], entries: [] });
  return { root, redactor, codec, us: new Map(kinds.map((kind) => [kind, []])) };
}

const session = '01M93WN8RQ9PJ6VX4HHB6PKC6J';
const quotedSession = JSON.stringify(session);
let prev = '9146e81d5a0c3b7e2f4d6a8c1e3b5d7f9a0c2e4b6d8f1a3c5e7b9d0f2a4cc3c2';

function runBatch(target: Arm, kind: string): void {
  const { type, make } = bodies[kind]!;
  const encode = part !== 'redact';
  const redact = part !== 'encode';
  for (let n = 0; n < batch; n++) {
    let body = make(n);
    if (redact) {
      const { value, fired } = target.redactor.body(body);
      if (fired.length > 0) body = { ...value, redacted: fired };
    }
    if (encode) {
      const quotedPrev = '"' + prev + '"';
      prev = target.codec.encodeEventBytes(
        session,
        n,
        1796500792088,
        type,
        prev,
        body,
        '',
        quotedSession,
        quotedPrev,
      ).event.hash;
    }
  }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const arms = [await arm(rootA!), await arm(rootB!)] as const;
  // Same bytes from both builds, or the comparison means nothing.
  for (const kind of kinds) {
    const [a, b] = arms.map((x) =>
      x.codec
        .encodeEventBytes(
          session,
          1,
          2,
          bodies[kind]!.type,
          '',
          x.redactor.body(bodies[kind]!.make(1)).value,
          '',
          quotedSession,
          '""',
        )
        .bytes.toString(),
    );
    if (a !== b) throw new Error(`${kind}: the builds store different bytes`);
  }
  const load0 = loadavg()[0]!;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? arms : [arms[1], arms[0]];
    for (const kind of kinds) {
      for (const target of order) {
        const start = process.hrtime.bigint();
        runBatch(target, kind);
        target.us.get(kind)!.push(Number(process.hrtime.bigint() - start) / batch / 1000);
      }
    }
  }
  const [a, b] = arms;
  process.stdout.write(
    `A ${a.root}\nB ${b.root}\npart ${part}; ${rounds} rounds of ${batch}; load ${load0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}\n`,
  );
  for (const kind of kinds) {
    const xa = a.us.get(kind)!;
    const xb = b.us.get(kind)!;
    const diff = median(xb.map((x, i) => x - xa[i]!));
    const wins = xa.filter((x, i) => x < xb[i]!).length;
    process.stdout.write(
      `${kind.padEnd(14)} A ${median(xa).toFixed(3)} µs, B ${median(xb).toFixed(3)} µs, B − A ${diff.toFixed(3)} µs per event; A lower in ${wins} of ${rounds}\n`,
    );
  }
}

await main();
