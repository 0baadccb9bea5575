/** Helpers for this package's tests: a temp store, a signer, session infos. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId, type SessionInfo, type Signer } from '@agentgate/core';
import { loadOrCreateSigningKey } from '../signing-key.js';
import {
  openTranscriptStore,
  type TranscriptStore,
  type TranscriptStoreOptions,
} from '../transcript-store.js';

export interface TempStore {
  dir: string;
  storePath: string;
  signer: Signer;
  open(overrides?: Partial<TranscriptStoreOptions>): Promise<TranscriptStore>;
  cleanup(): Promise<void>;
}

export async function makeTempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-transcript-'));
  const storePath = join(dir, 'store');
  const signer = await loadOrCreateSigningKey(join(dir, 'keys', 'signing-key.json'));
  return {
    dir,
    storePath,
    signer,
    open: (overrides = {}) =>
      openTranscriptStore({
        path: storePath,
        failMode: 'closed',
        checkpointIntervalMs: 0,
        signer,
        reserveBytes: 16 << 20,
        ...overrides,
      }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export function sessionInfo(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: newId(),
    listener: 'prod-db',
    protocol: 'postgres',
    identity: { name: 'devin', groups: ['agents'], source: 'oidc', issuer: 'http://127.0.0.1/' },
    client: { address: '127.0.0.1', port: 50123, local: true, tls: false },
    startedAt: Date.now(),
    ...overrides,
  };
}
