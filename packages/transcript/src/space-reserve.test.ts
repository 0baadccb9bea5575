import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { mkdtemp, open as openFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@agentgate/core';
import { SpaceReserve, type SpaceReserveOptions } from './space-reserve.js';

const pageSize = 4096;
let dir: string;
let file: string;
/** LMDB's last page as the fake stats report it */
let lastPage: number;
let fullChanges: boolean[];
let reserve: SpaceReserve | undefined;

function open(overrides: Partial<SpaceReserveOptions> = {}): Promise<SpaceReserve> {
  return SpaceReserve.open({
    file,
    reserveBytes: 1 << 20,
    stats: { pageSize, lastPage: () => lastPage, maxTreeDepth: () => 1 },
    log: silentLogger,
    retryMs: 10,
    onFullChanged: (full) => void fullChanges.push(full),
    ...overrides,
  }).then((opened) => (reserve = opened));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-reserve-'));
  file = join(dir, 'data.mdb');
  lastPage = 3;
  await writeFile(file, Buffer.alloc(4 * pageSize, 1)); // four pages of "LMDB data"
  fullChanges = [];
  reserve = undefined;
});
afterEach(async () => {
  await reserve?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Resolves once `done` says so (polled every few ms); throws after two seconds, so cleanup still runs. */
async function until(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Calls `before` with each write's offset and length before any FileHandle writes (the reserve's zeros go
 * through FileHandle.write); returns the function that undoes it.
 */
async function holdWrites(before: (offset: number, length: number) => Promise<void>): Promise<() => void> {
  const probe = await openFile(file, 'r');
  const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<unknown> };
  await probe.close();
  const write = proto.write;
  proto.write = async function (this: unknown, ...args: unknown[]) {
    await before(args[3] as number, args[2] as number);
    return write.apply(this, args);
  };
  return () => void (proto.write = write);
}

/** Per put, depth 1 (+1 margin): a copy and a split per level, plus a new root = 6 pages. */
const perPut = 6 * pageSize;

describe('space reserve', () => {
  it('allocates the reserve beyond the last page with zeros, leaving the data as it was', async () => {
    await open();
    const { size, blocks } = await stat(file);
    expect(size).toBe(4 * pageSize + (1 << 20));
    expect(blocks * 512).toBeGreaterThanOrEqual(size);
    const bytes = await readFile(file);
    expect(bytes.subarray(0, 4 * pageSize).every((b) => b === 1)).toBe(true);
    expect(bytes.subarray(4 * pageSize).every((b) => b === 0)).toBe(true);
  });

  it('charges small values a tree path and large ones their overflow pages too', async () => {
    await open();
    expect(reserve!.cost(40, 'x'.repeat(300))).toBe(perPut);
    // 3 × 700 UTF-8 bytes could exceed a leaf node: measured, and 700 ASCII bytes still fit.
    expect(reserve!.cost(40, 'x'.repeat(700))).toBe(perPut);
    expect(reserve!.cost(40, 'é'.repeat(1500))).toBe(Math.ceil((3000 + 16) / pageSize) * pageSize + perPut);
    expect(reserve!.cost(40, Buffer.alloc(200_000))).toBe(Math.ceil(200_016 / pageSize) * pageSize + perPut);
    expect(reserve!.recordBytes(2)).toBe(2 * perPut);
  });

  it('admits commands that fit with room for their decision and the tail; beyond it, puts are `over`', async () => {
    // Sized so that what the last command leaves is less than a command needs and more than an event does.
    const reserveBytes = (1 << 20) + (64 << 10);
    await open({ reserveBytes });
    const big = reserve!.cost(40, Buffer.alloc(100_000)); // 25 overflow pages + path
    let charged = 0;
    let commands = 0;
    while (reserve!.admit(big, true) === 'fits') {
      commands++;
      charged += big;
    }
    expect(commands).toBeGreaterThan(3);
    charged += big; // the `over` one is charged too
    // The disk may have room (the reserve could be extended): a burst is `over`, not refused.
    expect(reserve!.full).toBe(false);
    expect(reserve!.admit(perPut, false)).toBe('fits'); // events may still use the tail
    charged += perPut;
    // The commit releases what it carried; it was not clear of the allocated end, so no zeros were written during it.
    let sizeDuring = -1;
    await reserve!.commit(charged, async () => {
      sizeDuring = (await stat(file)).size;
      lastPage += 40; // the transaction added 40 pages
    });
    expect(sizeDuring).toBe((await stat(file)).size);
    expect(reserve!.admit(big, true)).toBe('fits');
    // The next commit tops the reserve up past the new last page (beside it: it is clear of the allocated end).
    await reserve!.commit(big, async () => undefined);
    await until(async () => (await stat(file)).size === (lastPage + 1) * pageSize + reserveBytes);
  });

  it('tops the reserve up beside a commit that is clear of the zeros, starting past twice what it may add', async () => {
    const reserveBytes = 1 << 20;
    await open({ reserveBytes });
    const zeros: { offset: number; length: number }[] = [];
    let letZerosGo = (): void => {};
    const held = new Promise<void>((resolve) => (letZerosGo = resolve));
    const restore = await holdWrites(async (offset, length) => {
      zeros.push({ offset, length });
      await held;
    });
    try {
      // A commit that used 64 pages: the reserve is now more than its slack short, and the next commit tops it up.
      await reserve!.commit(0, async () => void (lastPage += 64));
      const usedEnd = (lastPage + 1) * pageSize;
      const charge = reserve!.cost(40, Buffer.alloc(64 << 10));
      expect(reserve!.admit(charge, true)).toBe('fits');
      let ran = false;
      const committing = reserve!.commit(charge, async () => void (ran = true));
      // The commit runs while the zeros are still being written, and they start past twice what it may add.
      await until(async () => ran && zeros.length > 0);
      expect(zeros[0]!.offset).toBeGreaterThanOrEqual(usedEnd + 2 * charge);
      letZerosGo();
      await committing;
      await until(async () => (await stat(file)).size === usedEnd + reserveBytes);
    } finally {
      letZerosGo();
      restore();
    }
  });

  it('never writes zeros over pages a burst commit wrote past the allocated end', async () => {
    await open({ reserveBytes: 64 << 10 });
    const allocated = (await stat(file)).size;
    // A burst beyond the reserve: LMDB's transaction writes 32 pages past the allocated end.
    const burst = reserve!.cost(40, Buffer.alloc(128 << 10));
    expect(reserve!.admit(burst, true)).toBe('over');
    await reserve!.commit(burst, async () => {
      const { open: openFile } = await import('node:fs/promises');
      const fd = await openFile(file, 'r+');
      await fd.write(Buffer.alloc(32 * pageSize, 0x55), 0, 32 * pageSize, allocated);
      await fd.close();
      lastPage = allocated / pageSize + 32 - 1;
    });
    await reserve!.commit(0, async () => undefined); // tops up past the new last page
    const bytes = await readFile(file);
    expect(bytes.subarray(allocated, allocated + 32 * pageSize).every((b) => b === 0x55)).toBe(true);
    expect(bytes.length).toBe(allocated + 32 * pageSize + (64 << 10));
  });

  it('keeps charges of a failed commit until reset() (the queue is dropped, then measured again)', async () => {
    await open();
    const charge = perPut * 20;
    expect(reserve!.admit(charge, false)).toBe('fits');
    await expect(reserve!.commit(charge, () => Promise.reject(new Error('Commit failed')))).rejects.toThrow(
      'Commit failed',
    );
    expect(reserve!.admit(perPut, false)).toBe('fits');
    reserve!.reset();
    const big = reserve!.cost(40, Buffer.alloc(100_000));
    let commands = 0;
    while (reserve!.admit(big, true) === 'fits') commands++;
    expect(commands).toBeGreaterThan(3);
  });

  it('on a filesystem with no room refuses what does not fit and says so', async () => {
    const warnings: string[] = [];
    const log: Logger = { ...silentLogger, warn: (msg) => void warnings.push(msg) };
    file = '/dev/full'; // every write fails with ENOSPC
    lastPage = 0;
    await open({ log });
    expect(warnings).toEqual([
      'transcript: cannot extend the space reserve',
      'transcript: the filesystem has less room than the space reserve',
    ]);
    // The disk cannot give more: what does not fit is refused, and the store is full.
    expect(reserve!.admit(perPut, true)).toBe('full');
    expect(reserve!.admit(perPut, false)).toBe('full');
    expect(reserve!.full).toBe(true);
    expect(fullChanges).toEqual([true]);
  });
});
