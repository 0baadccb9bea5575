/**
 * One writing process per store. Two gateways (or a gateway and `agentgate prune`) writing the same environment
 * would each keep their own view of its chains and of the space it may grow into, so a process that opens a store
 * for writing holds `agentgate.lock` in the store's directory: its pid, host and start time. A lock whose process
 * is gone (a crash, kill -9) is taken over; readers never take it.
 */
import { hostname } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { AgentgateError } from '@agentgate/core';

interface LockContent {
  pid: number;
  host: string;
  since: string;
}

export interface StoreLock {
  readonly file: string;
  release(): Promise<void>;
}

/** Lock files this process holds: its own pid in a lock file it does not hold means a store abandoned unclosed. */
const heldHere = new Set<string>();

/** The lock file of a store: inside its directory, or beside a single-file environment (`path` with an extension). */
export function storeLockFile(storePath: string): string {
  return extname(storePath) ? `${storePath}.agentgate.lock` : join(storePath, 'agentgate.lock');
}

/** The process holding the store's lock, if one that is still running does. */
export async function storeLockHolder(storePath: string): Promise<LockContent | undefined> {
  const content = await readLock(storePath);
  return content !== undefined && alive(content, storeLockFile(storePath)) ? content : undefined;
}

export async function acquireStoreLock(storePath: string): Promise<StoreLock> {
  const file = storeLockFile(storePath);
  await mkdir(extname(storePath) ? dirname(storePath) : storePath, { recursive: true });
  const mine: LockContent = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, JSON.stringify(mine) + '\n', { flag: 'wx', mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        throw new AgentgateError(
          'CONFLICT',
          `cannot lock transcript store ${storePath}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    const holder = await readLock(storePath);
    if (holder !== undefined && alive(holder, file)) {
      throw new AgentgateError(
        'CONFLICT',
        `transcript store ${storePath} is in use by another agentgate process (pid ${holder.pid} on ${holder.host} since ${holder.since}); ` +
          `if that process is gone, remove ${file}`,
      );
    }
    await rm(file, { force: true });
  }
  heldHere.add(file);
  return {
    file,
    async release() {
      if (!heldHere.delete(file)) return;
      const content = await readLock(storePath);
      if (content?.pid === mine.pid && content.since === mine.since) await rm(file, { force: true });
    },
  };
}

async function readLock(storePath: string): Promise<LockContent | undefined> {
  let text: string;
  try {
    text = await readFile(storeLockFile(storePath), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as LockContent;
    return typeof parsed.pid === 'number' ? parsed : { pid: 0, host: '', since: '' };
  } catch {
    // half-written by a process that died while locking: nobody holds it
    return { pid: 0, host: '', since: '' };
  }
}

function alive(content: LockContent, file: string): boolean {
  if (content.pid <= 0) return false;
  // Another host's process cannot be checked from here: assume it runs (LMDB needs a local filesystem anyway).
  if (content.host !== hostname()) return true;
  if (content.pid === process.pid) return heldHere.has(file);
  try {
    process.kill(content.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
