/**
 * An in-process A/B of two agentgate builds' io record path, the part of an SSH download the gateway adds to a bare
 * relay: a stream's bytes through `SessionRecorder.io` (the stream redactor with the built-in entries, the copy
 * into io values, SHA-256, the io events) into a real store (failMode closed, metrics hooks) as fast as the
 * recorder's `ioBackpressure()` lets them in, two 32 KiB chunks per event-loop turn (one 64 KiB socket read of
 * ssh2 channel data). Both builds are loaded in this process, each with its own store; rounds alternate a batch on
 * one build then the other (which goes first alternates every round), and each batch ends once its bytes are
 * committed, so a build's commits are counted in its own batch. Main-thread and all-thread CPU per MiB come from
 * `/proc/self/task/*` `schedstat`; both stores are verified at the end. Run it in both orders.
 *
 * Run: node tests/dist/bench/io-record-ab.js ROOT_A ROOT_B [rounds=20] [mib=32]
 * `AB_BYTES=random` feeds random bytes (an upload's shape) instead of zeros (`head -c … /dev/zero`).
 * Both builds must load one lmdb-js (one-lmdb.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { SessionRecorder } from '@agentgate/core';
import {
  alternateRounds,
  closeVerified,
  loadRecordPackages,
  reportRounds,
  type ArmCpu,
} from './ab-rounds.js';
import { openBenchStore } from './bench-store.js';
import { requireOneLmdb } from './one-lmdb.js';

const [rootA, rootB] = process.argv.slice(2, 4).map((root) => resolve(root));
const rounds = Number(process.argv[4] ?? 20);
const mib = Number(process.argv[5] ?? 32);
const chunkBytes = 32 * 1024;
const chunksPerTurn = 2;
/** ssh2 hands each channel-data payload to the relay in a buffer of its own; these stand in for them. */
const chunks = Array.from({ length: 64 }, () =>
  process.env['AB_BYTES'] === 'random' ? randomBytes(chunkBytes) : Buffer.alloc(chunkBytes),
);

interface Arm extends ArmCpu {
  readonly dir: string;
  readonly close: () => Promise<boolean>;
  readonly stream: (bytes: number) => Promise<void>;
}

async function startArm(root: string): Promise<Arm> {
  const { core, transcript, masking, metrics } = await loadRecordPackages(root);
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-io-ab-'));
  const { store } = await openBenchStore({ transcript, masking, metrics }, dir);
  const recorder: SessionRecorder & { flushIo?: () => void } = store.openSession({
    id: core.newId(),
    listener: 'ssh',
    protocol: 'ssh',
    identity: { name: 'bench', groups: ['agents'], source: 'ssh-key' },
    client: { address: '127.0.0.1', port: 40000, local: true, tls: false },
    startedAt: Date.now(),
  } as Parameters<typeof store.openSession>[0]);
  let next = 0;
  const stream = async (bytes: number): Promise<void> => {
    for (let sent = 0; sent < bytes;) {
      for (let i = 0; i < chunksPerTurn; i++, sent += chunkBytes)
        recorder.io('out', chunks[next++ % chunks.length]!, '0');
      const held = recorder.ioBackpressure?.();
      if (held !== undefined) await held;
      else await nextTurn();
    }
    recorder.flushIo?.();
    await recorder.committed?.();
  };
  const close = (): Promise<boolean> => closeVerified(root, store, recorder);
  return { root, dir, close, stream, main: [], all: [] };
}

async function main(): Promise<void> {
  if (!rootA || !rootB) throw new Error('usage: io-record-ab.js ROOT_A ROOT_B [rounds] [mib]');
  requireOneLmdb(rootA, rootB);
  const arms: [Arm, Arm] = [await startArm(rootA), await startArm(rootB)];
  const bytes = mib * 1024 * 1024;
  try {
    for (let i = 0; i < 2; i++) for (const arm of arms) await arm.stream(bytes);
    await alternateRounds(arms, rounds, (arm) => arm.stream(bytes), 1e6 * mib);
    const verified = [];
    for (const arm of arms) verified.push(await arm.close());
    reportRounds(arms, {
      unit: 'ms per MiB',
      digits: 3,
      batches: `batches of ${mib} MiB of ${process.env['AB_BYTES'] === 'random' ? 'random bytes' : 'zeros'}`,
      verified,
    });
  } finally {
    for (const arm of arms) await rm(arm.dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
