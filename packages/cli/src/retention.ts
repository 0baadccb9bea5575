/**
 * `store.retention`: the gateway prunes its own store on a schedule (a store has one writing process, so a running
 * gateway's store is pruned from inside it). Only sessions a backup or export under `coveredBy` holds intact are
 * removed, each prune with its signed record (docs/configuration.md, store).
 */
import { existsSync } from 'node:fs';
import type { Logger, RetentionConfig } from '@agentgate/core';
import type { TranscriptStore } from '@agentgate/transcript';

export interface Retention {
  /** Stop scheduling and wait for a run in progress. */
  stop(): Promise<void>;
}

export function startRetention(store: TranscriptStore, config: RetentionConfig, log: Logger): Retention {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = async (): Promise<void> => {
    const before = Date.now() - config.keepMs;
    if (!existsSync(config.coveredBy)) {
      log.warn('retention: nothing pruned: coveredBy does not exist', { coveredBy: config.coveredBy });
      return;
    }
    try {
      const outcome = await store.prune({ before, coveredBy: [config.coveredBy], by: 'retention' });
      if (outcome.pruned.length > 0 || outcome.notCovered.length > 0 || outcome.unsigned.length > 0) {
        log.info('retention: pruned sessions', {
          pruned: outcome.pruned.length,
          before: new Date(before).toISOString(),
          records: outcome.records,
        });
      }
      if (outcome.notCovered.length > 0) {
        log.warn('retention: sessions kept because no backup or export holds them', {
          sessions: outcome.notCovered.length,
          coveredBy: config.coveredBy,
        });
      }
      if (outcome.unsigned.length > 0) {
        log.warn('retention: sessions kept because their end is not signed', { sessions: outcome.unsigned });
      }
    } catch (err) {
      log.error('retention: prune failed', { error: (err as Error).message });
    }
  };
  const tick = (): void => {
    if (stopped || running) return;
    running = run().finally(() => (running = undefined));
  };
  const first = setTimeout(tick, 0);
  const timer = setInterval(tick, config.intervalMs);
  first.unref();
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
