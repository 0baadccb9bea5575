/**
 * One writing process per store. Two gateways (or a gateway and `agentgate prune`) writing the same environment
 * would each keep their own view of its chains and of the space it may grow into, so a process that opens a store
 * for writing holds `agentgate.lock` in the store's directory: its pid, host and start time. A lock whose process
 * is gone (a crash, kill -9) is taken over; readers never take it.
 */
import { hostname } from 'node:os';
import { dirname, extname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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
    if (await createLock(file, JSON.stringify(mine) + '\n', storePath)) break;
    const text = await readLockText(file);
    const holder = text === undefined ? undefined : parseLock(text);
    if (holder !== undefined && alive(holder, file)) {
      throw new AgentgateError(
        'CONFLICT',
        `transcript store ${storePath} is in use by another agentgate process (pid ${holder.pid} on ${holder.host} since ${holder.since}); ` +
          `if that process is gone, remove ${file}`,
      );
    }
    if (attempt > 1)
      throw new AgentgateError('CONFLICT', `cannot lock transcript store ${storePath}: contended`);
    if (text !== undefined) await removeStaleLock(file, text);
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

/**
 * Creates the lock file with `content`, or returns false when it exists. The content is written under a private
 * name and linked into place, so the lock file never exists half-written: a process starting at the same moment
 * must not read an empty lock as one a crash left behind and take it over.
 */
async function createLock(file: string, content: string, storePath: string): Promise<boolean> {
  const temporary = `${file}.${process.pid}.${randomUUID()}`;
  try {
    await writeFile(temporary, content, { flag: 'wx', mode: 0o644 });
    await link(temporary, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new AgentgateError(
      'CONFLICT',
      `cannot lock transcript store ${storePath}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    await rm(temporary, { force: true });
  }
}

/**
 * Removes the lock a gone process left, whose text was `stale`. It is moved aside rather than deleted, because two
 * processes may take over the same stale lock at once: the one that finds it moved a fresh lock (the other's) puts
 * it back, so exactly one of them holds the store.
 */
async function removeStaleLock(file: string, stale: string): Promise<void> {
  const aside = `${file}.stale.${process.pid}.${randomUUID()}`;
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    if ((await readLockText(aside)) !== stale) await link(aside, file).catch(() => undefined);
  } finally {
    await rm(aside, { force: true });
  }
}

async function readLockText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function readLock(storePath: string): Promise<LockContent | undefined> {
  const text = await readLockText(storeLockFile(storePath));
  return text === undefined ? undefined : parseLock(text);
}

function parseLock(text: string): LockContent {
  try {
    const parsed = JSON.parse(text) as LockContent;
    return typeof parsed.pid === 'number' ? parsed : { pid: 0, host: '', since: '' };
  } catch {
    // half-written by an earlier release that died while locking: nobody holds it
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
