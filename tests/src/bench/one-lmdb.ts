/**
 * In-process A/Bs load two builds into one process; both must load one lmdb-js. With two copies the first-loaded
 * build's store was written with bytes that are not its events (docs/performance.md, PostgreSQL eighth round).
 */
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Where a build's transcript package loads lmdb-js from, its real path. */
function lmdbOf(root: string): string {
  return realpathSync(createRequire(join(root, 'packages/transcript/package.json')).resolve('lmdb'));
}

/** Throws, saying how to fix it, when the two builds would load different copies of lmdb-js. */
export function requireOneLmdb(rootA: string, rootB: string): void {
  const [a, b] = [lmdbOf(rootA), lmdbOf(rootB)];
  if (a !== b)
    throw new Error(
      `the two builds load different copies of lmdb-js (${a}, ${b}): in one process they corrupt each other's ` +
        'writes; symlink one node_modules/.pnpm/lmdb@* to the other',
    );
}
