/**
 * The store's key history: the public half of every key the gateway signed this store's checkpoints and prune
 * records with, recorded in `meta` under `signing-key/<kid>` when a gateway opens the store. A copy of the store
 * then carries what its signatures are checked against; whether those keys are the gateway's is for an outside
 * copy of them (`verify --jwks`, the signing key file) to confirm.
 */
import type { Database } from 'lmdb';
import { dbIndex } from './batch-writer.js';
import type { StoreDatabases } from './store-databases.js';
import { parseJson } from './stored-records.js';

export interface RecordedKey {
  readonly kid: string;
  /** the public JWK */
  readonly jwk: Record<string, unknown>;
  /** when a gateway first opened the store with this key (ms since the epoch) */
  readonly recordedAt: number;
}

const prefix = 'signing-key/';

/** The `meta` db; undefined in a store from before it existed, opened read-only. */
export function metaDb(dbs: StoreDatabases): Database<string, string> | undefined {
  return dbs.byIndex[dbIndex.meta] as Database<string, string> | undefined;
}

export function readKeyHistory(dbs: StoreDatabases): RecordedKey[] {
  const meta = metaDb(dbs);
  if (!meta) return [];
  const out: RecordedKey[] = [];
  for (const { value } of meta.getRange({ start: prefix, end: prefix.slice(0, -1) + '0' })) {
    const record = parseJson<RecordedKey>(value);
    if (record && typeof record.kid === 'string' && record.jwk && typeof record.jwk === 'object')
      out.push(record);
  }
  return out.sort((a, b) => a.recordedAt - b.recordedAt);
}

/** The `meta` records to write so that every key of `jwks` is in the history (none for keys already there). */
export function unrecordedKeys(
  dbs: StoreDatabases,
  jwks: { keys: readonly Record<string, unknown>[] },
  now = Date.now(),
): { key: string; value: string }[] {
  const meta = metaDb(dbs);
  const out: { key: string; value: string }[] = [];
  for (const jwk of jwks.keys) {
    const kid = jwk['kid'];
    if (typeof kid !== 'string' || kid === '' || 'd' in jwk) continue;
    const key = prefix + kid;
    if (meta?.get(key) !== undefined) continue;
    const record: RecordedKey = { kid, jwk, recordedAt: now };
    out.push({ key, value: JSON.stringify(record) });
  }
  return out;
}
