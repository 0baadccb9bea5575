import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

  it('two processes taking over the same stale lock at the same moment: exactly one holds the store', async () => {
    // Each child loads the lock module and says it is ready; once both are, the test sends them the same instant,
    // a moment ahead. Each waits for it, tries to lock, reports whether it got the store, and lives on until both
    // have reported (its stdin closes then), so the holder's lock is not stale while the other tries.
    const lockModule = fileURLToPath(new URL('./store-lock.js', import.meta.url));
    const child = `
      const { acquireStoreLock } = await import(${JSON.stringify(lockModule)});
      const dir = process.argv[1];
      let input = '';
      process.stdin.setEncoding('utf8');
      process.stdin.on('end', () => process.exit(0));
      process.stdin.on('data', async (chunk) => {
        if (input.includes('\\n')) return;
        input += chunk;
        if (!input.includes('\\n')) return;
        const at = Number(input.split('\\n')[0]);
        // A child that got the instant too late under load says so: its race did not happen.
        if (Date.now() > at + 400) { process.stdout.write('late'); return; }
        while (Date.now() < at) {}
        try { await acquireStoreLock(dir); process.stdout.write('held'); } catch { process.stdout.write('refused'); }
      });
      process.stdout.write('ready ');`;
    /** Both children's reports; their stdin is closed only once both reported, and then they exit. */
    const lockRace = async (dir: string): Promise<string[]> => {
      const children = [0, 1].map(() =>
        spawn(process.execPath, ['--input-type=module', '-e', child, dir], {
          stdio: ['pipe', 'pipe', 'inherit'],
        }),
      );
      const exits = children.map((c) => new Promise((resolve) => c.once('close', resolve)));
      /** Resolves with a child's output once it matches `pattern`; rejects if the child ends before. */
      const outputs = children.map(() => ({ text: '' }));
      const until = (i: number, pattern: RegExp): Promise<string> =>
        new Promise((resolve, reject) => {
          const c = children[i]!;
          const check = () => {
            const m = pattern.exec(outputs[i]!.text);
            if (m !== null) resolve(m[0]);
          };
          c.stdout.on('data', check);
          c.once('close', (code) =>
            reject(new Error(`a child exited (${code}) before it said ${pattern}: ${outputs[i]!.text}`)),
          );
          check();
        });
      children.forEach((c, i) => c.stdout.on('data', (d: Buffer) => (outputs[i]!.text += d.toString())));
      try {
        await Promise.all([until(0, /ready/), until(1, /ready/)]);
        const at = `${Date.now() + 100}\n`;
        for (const c of children) c.stdin.write(at);
        return await Promise.all([until(0, /late|held|refused/), until(1, /late|held|refused/)]);
      } finally {
        for (const c of children) c.stdin.end();
        await Promise.all(exits);
      }
    };
    const deadPid = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString(),
    );
    const root = await mkdtemp(join(tmpdir(), 'agentgate-lock-race-'));
    try {
      // Before the fix, both processes held the store in about one race of six.
      let raced = 0;
      for (let race = 0; race < 15; race++) {
        const dir = join(root, `store${race}`);
        const stale = JSON.stringify({ pid: deadPid, host: hostname(), since: 'before the crash' });
        await mkdir(dir);
        await writeFile(join(dir, 'agentgate.lock'), stale);
        const outcomes = (await lockRace(dir)).sort();
        if (outcomes.includes('late')) continue;
        raced++;
        expect(outcomes).toEqual(['held', 'refused']);
        // No private lock files are left beside the lock.
        expect(await readdir(dir)).toEqual(['agentgate.lock']);
      }
      expect(raced).toBeGreaterThanOrEqual(8);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 90_000);
});
