/**
 * A consistent copy of a store, live or not: LMDB's own copy (mdb_env_copy2 with MDB_CP_COMPACT, through lmdb-js's
 * `backup`), which reads one snapshot in a read transaction, so it never blocks or sees half of the gateway's
 * writes, and leaves free pages (and the space reserved beyond the data) out.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { RootDatabase } from 'lmdb';
import { AgentgateError } from '@agentgate/core';

/** Copy the environment into `dir` (which must not exist or be empty) as `dir/data.mdb`. */
export async function backupEnvironment(
  env: RootDatabase<string, string>,
  storePath: string,
  dir: string,
): Promise<void> {
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new AgentgateError('BAD_REQUEST', `--to ${dir}: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw new AgentgateError('CONFLICT', `--to ${dir} is not empty`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // A directory environment copies into a directory; a single-file one (a path with an extension) into a file.
  const target = extname(storePath) ? join(dir, 'data.mdb') : dir;
  try {
    await env.backup(target, true);
  } catch (err) {
    throw new AgentgateError('RECORDING_FAILED', `backup to ${dir} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
