import type { StoreConfig } from '@agentgate/core';
import type { TranscriptStoreOptions } from '@agentgate/transcript';

/** What the `store` section sets of how the store writes (docs/configuration.md, store). */
export function storeWriteOptions(
  store: StoreConfig,
): Pick<TranscriptStoreOptions, 'path' | 'failMode' | 'checkpointIntervalMs' | 'commitWindowMs'> {
  return {
    path: store.path,
    failMode: store.failMode,
    checkpointIntervalMs: store.checkpointIntervalMs,
    ...(store.commitWindowMs !== undefined ? { commitWindowMs: store.commitWindowMs } : {}),
  };
}
