import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { storeLockHolder } from './store-lock.js';
import { makeTempStore, type TempStore } from '../test/test-store.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await makeTempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

describe('store lock', () => {
  it('lets one process write a store at a time and releases it on close', async () => {
    const store = await temp.open();
    const lock = JSON.parse(await readFile(join(temp.storePath, 'agentgate.lock'), 'utf8')) as {
      pid: number;
    };
    expect(lock.pid).toBe(process.pid);
    expect(await storeLockHolder(temp.storePath)).toMatchObject({ pid: process.pid });
    await expect(temp.open()).rejects.toThrow(/is in use by another agentgate process \(pid \d+/);
    // Readers take no lock.
    const reader = await temp.open({ readOnly: true });
    await reader.close();
    await store.close();
    expect(await storeLockHolder(temp.storePath)).toBeUndefined();
    const again = await temp.open();
    await again.close();
  });

  it('takes over the lock of a process that is gone', async () => {
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(exited.stdout.toString());
    const store = await temp.open();
    await store.close();
    await writeFile(
      join(temp.storePath, 'agentgate.lock'),
      JSON.stringify({ pid: deadPid, host: hostname(), since: new Date().toISOString() }),
    );
    expect(await storeLockHolder(temp.storePath)).toBeUndefined();
    const reopened = await temp.open();
    await reopened.close();
  });
});
