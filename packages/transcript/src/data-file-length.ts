/**
 * Whether an environment's data file ends before the last page its meta page names: a copy still being written
 * (LMDB's compacting copy writes the meta page first) or one cut short. Reading such a file faults on the missing
 * pages (SIGBUS, which kills the process, a running gateway included), so readers of copies check first; only the
 * meta page is read to tell.
 */
import { stat } from 'node:fs/promises';
import type { RootDatabase } from 'lmdb';

export async function missingPagesBytes(
  env: RootDatabase<string, string>,
  dataFile: string,
): Promise<number> {
  const { lastPageNumber, pageSize } = env.getStats() as { lastPageNumber: number; pageSize: number };
  return Math.max(0, (lastPageNumber + 1) * pageSize - (await stat(dataFile)).size);
}
