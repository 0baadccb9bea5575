/**
 * What the in-process A/Bs of two builds share (pg-record-ab.ts, io-record-ab.ts): each build's packages loaded
 * from its own checkout, batches alternated between the two (which goes first alternates every round), each
 * batch's main-thread and all-thread CPU read from `/proc/self/task/*` `schedstat`, the stores verified, and the
 * report: both medians, the median of the per-round differences and how often A was lower.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SessionRecorder } from '@agentgate/core';
import { ownAllThreadsNs, ownMainThreadNs } from './process-cpu.js';

type Core = typeof import('@agentgate/core');
type Transcript = typeof import('@agentgate/transcript');
type Masking = typeof import('@agentgate/masking');
type Metrics = typeof import('@agentgate/metrics');

/** One build's CPU per unit of work, one entry per batch. */
export interface ArmCpu {
  readonly root: string;
  readonly main: number[];
  readonly all: number[];
}

/** A build's module at `path` (relative to its checkout). */
export const fromBuild =
  (root: string) =>
  (path: string): Promise<unknown> =>
    import(pathToFileURL(join(root, path)).href);

/** The packages every record-path A/B opens its store with, from the build at `root`. */
export async function loadRecordPackages(
  root: string,
): Promise<{ core: Core; transcript: Transcript; masking: Masking; metrics: Metrics }> {
  const from = fromBuild(root);
  return {
    core: (await from('packages/core/dist/index.js')) as Core,
    transcript: (await from('packages/transcript/dist/index.js')) as Transcript,
    masking: (await from('packages/masking/dist/index.js')) as Masking,
    metrics: (await from('packages/metrics/dist/index.js')) as Metrics,
  };
}

/** Ends the bench session, verifies and closes its store; false (and the report on stderr) when it does not verify. */
export async function closeVerified(
  root: string,
  store: { verify(): Promise<{ ok: boolean }>; close(): Promise<void> },
  recorder: SessionRecorder,
): Promise<boolean> {
  recorder.end({ cause: 'client-left', reason: 'bench' });
  const report = await store.verify();
  await store.close();
  if (!report.ok) process.stderr.write(`${root}: ${JSON.stringify(report).slice(0, 600)}\n`);
  return report.ok;
}

/** Runs `rounds` rounds of one batch per arm; each batch's CPU (ns) is divided by `nsPerUnit` into the arm's lists. */
export async function alternateRounds<A extends ArmCpu>(
  arms: readonly [A, A],
  rounds: number,
  batch: (arm: A) => Promise<void>,
  nsPerUnit: number,
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? arms : [arms[1], arms[0]];
    for (const arm of order) {
      const main0 = ownMainThreadNs();
      const all0 = ownAllThreadsNs();
      await batch(arm);
      arm.main.push((ownMainThreadNs() - main0) / nsPerUnit);
      arm.all.push((ownAllThreadsNs() - all0) / nsPerUnit);
    }
  }
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Both arms' medians (`unit`, e.g. "µs per statement"; `batches` says what a batch was), then B − A per round. */
export function reportRounds(
  arms: readonly [ArmCpu, ArmCpu],
  options: { unit: string; digits: number; batches: string; verified: readonly boolean[] },
): void {
  const rounds = arms[0].main.length;
  for (const [i, arm] of arms.entries()) {
    process.stdout.write(
      `${i === 0 ? 'A' : 'B'} ${arm.root}: main thread ${median(arm.main).toFixed(options.digits)} ${options.unit}, ` +
        `all threads ${median(arm.all).toFixed(options.digits)} (medians of ${rounds} ${options.batches}; ` +
        `verified ${String(options.verified[i])})\n`,
    );
  }
  const [a, b] = arms;
  const wins = a.main.filter((x, i) => x < b.main[i]!).length;
  const diff = (key: 'main' | 'all'): string =>
    median(b[key].map((x, i) => x - a[key][i]!)).toFixed(options.digits);
  process.stdout.write(
    `B − A per round (median): main thread ${diff('main')}, all threads ${diff('all')} ${options.unit}; ` +
      `A lower (main thread) in ${wins} of ${rounds} rounds; load ${loadavg()[0]!.toFixed(2)}\n`,
  );
}
