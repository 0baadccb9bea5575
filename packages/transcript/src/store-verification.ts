/** `verify` of a whole store: every chain and checkpoint (verify.ts), then the prune records (prune-records.ts). */
import { checkPruneRecords, type PrunedSummary } from './prune-records.js';
import type { StoreDatabases } from './store-databases.js';
import type { StoreReader } from './store-reader.js';
import type { KeyInfo } from './verification-keys.js';
import { verifyStore, type VerifyReport } from './verify.js';

export interface StoreVerifyReport extends VerifyReport {
  /** what was pruned, by prunes whose signed records verify */
  pruned: PrunedSummary;
  /** the keys signatures were checked against: where each came from and how many signatures it verified */
  keys?: KeyInfo[];
}

export async function verifyWholeStore(
  dbs: StoreDatabases,
  reader: StoreReader,
  verifySignature: (jws: string) => Promise<Buffer>,
): Promise<StoreVerifyReport> {
  const report = await verifyStore({
    events: dbs.events.getRange(),
    sessionIds: dbs.sessions.getKeys(),
    ended: (id) => reader.endRecord(id),
    checkpoints: dbs.checkpoints.getRange(),
    ioData: (key) => dbs.ioData?.getBinary(key),
    ioDataKeys: dbs.ioData?.getKeys() ?? [],
    verifySignature,
  });
  const problems = [...report.problems];
  const pruned = await checkPruneRecords(dbs, verifySignature, problems);
  return { ...report, ok: problems.length === 0, problems, pruned };
}
