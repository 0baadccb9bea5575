/** Opens the transcript store a config names, for the read-side commands (sessions, replay, export, verify). */
import { loadConfig } from '@agentgate/config';
import { loadOrCreateSigningKey, openTranscriptStore, type TranscriptStore } from '@agentgate/transcript';

export async function withStore<T>(
  configFile: string,
  fn: (store: TranscriptStore) => Promise<T>,
): Promise<T> {
  const config = await loadConfig(configFile);
  const signer = await loadOrCreateSigningKey(config.signingKey);
  const store = await openTranscriptStore({
    path: config.store.path,
    failMode: config.store.failMode,
    checkpointIntervalMs: config.store.checkpointIntervalMs,
    signer,
    readOnly: true,
  });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
