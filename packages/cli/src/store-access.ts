/**
 * How the store commands find and open the store: `--store PATH`, or `--config FILE` of which they read only
 * `store` (and `signingKey` for verify's keys), never the rest. Read-side commands open the store read-only and
 * never load or create the signing key.
 */
import type { Command } from 'commander';
import { loadStoreLocation, type StoreLocation } from '@agentgate/config';
import type { StoreConfig } from '@agentgate/core';
import { openStoreForReading, type StoreForReading } from '@agentgate/transcript';
import { CliError } from './cli-util.js';

export interface StoreOptions {
  store?: string;
  config?: string;
}

/** The store options every store command takes. */
export function storeOptions(command: Command): Command {
  return command
    .option('--store <path>', 'the transcript store (an LMDB directory, or a backup of one)')
    .option('--config <file>', 'configuration file: only its store section (and signingKey) are read');
}

/** Where the store is, from `--store` or the configuration's `store` section. */
export interface LocatedStore {
  readonly path: string;
  /** present when the store was named by a configuration */
  readonly config?: StoreLocation & { store: StoreConfig };
}

export async function locateStore(opts: StoreOptions): Promise<LocatedStore> {
  if (opts.store !== undefined && opts.config !== undefined)
    throw new CliError('give --store PATH or --config FILE, not both', 2);
  if (opts.store !== undefined) return { path: opts.store };
  if (opts.config !== undefined) {
    const config = await loadStoreLocation(opts.config);
    return { path: config.store.path, config };
  }
  throw new CliError('name the store: --store PATH or --config FILE', 2);
}

export async function withReadableStore<T>(
  opts: StoreOptions,
  fn: (store: StoreForReading, located: LocatedStore) => Promise<T>,
): Promise<T> {
  const located = await locateStore(opts);
  const store = await openStoreForReading(located.path);
  try {
    return await fn(store, located);
  } finally {
    await store.close();
  }
}
