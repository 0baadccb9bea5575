/**
 * A store that cannot grow. lmdb-js grows its map on demand, so a small map size cannot stand in for a full
 * disk; instead a child process runs under `ulimit -f` (RLIMIT_FSIZE), so writes past the limit fail with EFBIG
 * exactly as they would on a full disk. failMode closed refuses before that (the space reserve runs out first);
 * failMode open writes until a commit fails.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeTempStore, type TempStore } from '../test/test-store.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('../test/fill-until-failure.js', import.meta.url));

interface ChildReport {
  appended: number;
  refusedCode?: string;
  openSessionCode?: string;
  health: { writable: boolean; lastError?: string; dropped: number; writeErrors: number };
  writeErrors: number;
  writableChanges: boolean[];
  lastReturnedSeq: number;
  resumedSeq?: number;
}

let temp: TempStore;
beforeEach(async () => {
  temp = await makeTempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

async function fillUntilFailure(failMode: 'closed' | 'open'): Promise<ChildReport> {
  const keyFile = join(temp.dir, 'keys', 'signing-key.json');
  // 1 MiB file size limit (bash counts ulimit -f in 1024-byte blocks).
  const { stdout } = await run(
    'bash',
    ['-c', 'ulimit -f 1024 && exec "$0" "$@"', process.execPath, child, temp.storePath, keyFile, failMode],
    {
      timeout: 30_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildReport;
}

describe('fail modes when the disk is full', () => {
  it('closed: the store refuses before the disk is full; every admitted event is on disk', async () => {
    const report = await fillUntilFailure('closed');
    expect(report.appended).toBeGreaterThan(20);
    expect(report.refusedCode).toBe('RECORDING_FAILED');
    expect(report.openSessionCode).toBe('RECORDING_FAILED');
    expect(report.health.writable).toBe(false);
    expect(report.health.lastError).toBe('the transcript store is full');
    expect(report.writeErrors).toBe(0); // no commit failed: the reserve refused first
    expect(report.writableChanges).toEqual([false]);

    // Without the limit: every event the store accepted was committed, and recovery ends the session.
    const store = await temp.open();
    const before = await store.verify();
    expect(before).toMatchObject({ ok: true, sessions: 1, events: report.appended + 1 });
    expect(await store.recoverInterrupted()).toBe(1);
    const after = await store.verify();
    expect(after).toMatchObject({ ok: true, events: before.events + 1, checkpoints: 1 });
    await store.close();
  });

  it('open: appends never throw while unwritable; dropped events are counted', async () => {
    const report = await fillUntilFailure('open');
    expect(report.refusedCode).toBeUndefined();
    expect(report.openSessionCode).toBeUndefined();
    expect(report.health.writable).toBe(false);
    expect(report.health.dropped).toBeGreaterThanOrEqual(10);
    const store = await temp.open({ readOnly: true });
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });

  it('closed: accepts commands again once the reserve can be extended', async () => {
    const keyFile = join(temp.dir, 'keys', 'signing-key.json');
    const proc = spawn(
      'bash',
      [
        '-c',
        'ulimit -S -f 1024 && exec "$0" "$@"',
        process.execPath,
        child,
        temp.storePath,
        keyFile,
        'closed',
        'recover',
      ],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    for await (const line of createInterface({ input: proc.stdout })) {
      lines.push(line);
      // The disk has room again: lift the file size limit of the running process.
      if (line.startsWith('FAILED '))
        await run('prlimit', ['--pid', line.slice(7), '--fsize=unlimited:unlimited']);
    }
    expect(await exited).toBe(0);
    const report = JSON.parse(lines.at(-1)!) as ChildReport;
    expect(report.refusedCode).toBe('RECORDING_FAILED');
    expect(report.writableChanges).toEqual([false, true]);
    expect(report.health.writable).toBe(true);

    const store = await temp.open({ readOnly: true });
    const verified = await store.verify();
    expect(verified).toMatchObject({ ok: true, sessions: 1, checkpoints: 1 });
    // Nothing accepted was lost, so the chain goes on without a gap.
    const tail = [...store.events('FILL')].slice(-3);
    expect(tail.map((e) => e.type)).toEqual(['result', 'result', 'session.end']);
    expect(tail[1]).toMatchObject({ seq: report.resumedSeq, after: 'recovery' });
    expect(report.resumedSeq).toBe(report.lastReturnedSeq + 1);
    await store.close();
  });
});
