import { describe, it, expect, beforeEach, afterEach, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { TranscriptEvent } from '@agentgate/core';
import { exportAsciicast, exportJsonl } from './exporters.js';
import { ioMaxBytes, ioMaxDelayMs } from './session-recorder.js';
import { CLIENT_LEFT_END, makeTempStore, sessionInfo, type TempStore } from '../test/test-store.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await makeTempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

function ioEvents(events: readonly TranscriptEvent[]): TranscriptEvent[] {
  return events.filter((e) => e.type === 'io');
}

describe('io coalescing', () => {
  it('coalesces chunks by stream, size and time, keeping per-chunk timings and order', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    // 100 small chunks in one burst: one event.
    for (let i = 0; i < 100; i++) recorder.io('out', Buffer.from(`line ${i}\n`), '0');
    // A direction change closes the pending event.
    recorder.io('in', Buffer.from('ls\n'), '0');
    await sleep(40); // the 10 ms timer flushes
    recorder.io('out', Buffer.from('late\n'), '0');
    // Size: 3 chunks of 30 KiB cross 64 KiB on the third.
    const big = Buffer.alloc(30 * 1024, 0x61);
    recorder.io('out', big, '1');
    recorder.io('out', big, '1');
    recorder.io('out', big, '1');
    recorder.io('out', Buffer.from('tail'), '1');
    // An appended event keeps its place after the bytes that came before it.
    recorder.append('result', { event: 'exit', exitStatus: 0 });
    recorder.io('err', Buffer.from('bye\n'), '0');
    recorder.end(CLIENT_LEFT_END);
    await store.flush();

    const events = [...store.events(info.id)];
    expect(events.map((e) => e.type)).toEqual([
      'session.start',
      'io',
      'io',
      'io',
      'io',
      'io',
      'result',
      'io',
      'session.end',
    ]);
    const io = ioEvents(events);
    const decoded = io.map((e) => Buffer.from(String(e['data']), 'base64'));
    expect(io[0]).toMatchObject({ direction: 'out', channel: '0', bytes: decoded[0]!.length });
    expect(decoded[0]!.toString()).toBe(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
    // One timing entry per millisecond the burst spanned, covering every byte.
    const timings = io[0]!['chunks'] as [number, number][];
    expect(timings.reduce((sum, [, n]) => sum + n, 0)).toBe(decoded[0]!.length);
    for (let i = 1; i < timings.length; i++) expect(timings[i]![0]).toBeGreaterThan(timings[i - 1]![0]);
    expect(io[1]).toMatchObject({ direction: 'in', data: Buffer.from('ls\n').toString('base64') });
    expect(io[2]).toMatchObject({ direction: 'out', data: Buffer.from('late\n').toString('base64') });
    expect(io[3]).toMatchObject({ direction: 'out', channel: '1', bytes: 3 * 30 * 1024 });
    expect(io[3]!['bytes']).toBeGreaterThanOrEqual(ioMaxBytes);
    expect(io[4]).toMatchObject({ bytes: 4 });
    expect(io[5]).toMatchObject({ direction: 'err', data: Buffer.from('bye\n').toString('base64') });
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });
});

describe('io flush timer', () => {
  it('is not set and cleared for every event of a fast stream, and still flushes an event begun after it', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    const setTimer = jest.spyOn(globalThis, 'setTimeout');
    const clearTimer = jest.spyOn(globalThis, 'clearTimeout');
    let ioTimers: number;
    try {
      // 1 MiB in 32 KiB chunks: 16 events flushed by size, each followed by a new pending one.
      const chunk = Buffer.alloc(32 * 1024, 0x61);
      for (let i = 0; i < 32; i++) recorder.io('out', chunk, '0');
      ioTimers =
        setTimer.mock.calls.filter(([, ms]) => ms === ioMaxDelayMs).length + clearTimer.mock.calls.length;
    } finally {
      setTimer.mockRestore();
      clearTimer.mockRestore();
    }
    expect(ioTimers).toBeLessThanOrEqual(1);
    // The timer armed above outlives the flushed events; one begun later is flushed by it in its own time.
    recorder.append('result', { event: 'mark' });
    await sleep(ioMaxDelayMs / 2);
    recorder.io('out', Buffer.from('late\n'), '0');
    await sleep(4 * ioMaxDelayMs);
    await store.flush();
    const last = [...store.events(info.id)].pop()!;
    expect(last).toMatchObject({ type: 'io', data: Buffer.from('late\n').toString('base64') });
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });
});

describe('io timings', () => {
  it('keeps one timing entry per millisecond, so pieces that came together play as one frame', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    const realNow = Date.now;
    let now = realNow();
    Date.now = () => now;
    try {
      // A stream redactor releases a held word and the bytes after it as separate pieces of one arrival.
      recorder.io('out', Buffer.from('got 12 '), '0');
      recorder.io('out', Buffer.from('chars'), '0');
      recorder.io('out', Buffer.from('\r\n'), '0');
      now += 3;
      recorder.io('out', Buffer.from('$ '), '0');
    } finally {
      Date.now = realNow;
    }
    await sleep(40); // the 10 ms timer flushes
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    const events = [...store.events(info.id)];
    expect(ioEvents(events).map((e) => e['chunks'])).toEqual([
      [
        [0, 14],
        [3, 2],
      ],
    ]);
    const frames = exportAsciicast(events)
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => (JSON.parse(line) as [number, string, string])[2]);
    expect(frames).toEqual(['got 12 chars\r\n', '$ ']);
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });
});

describe('io bytes joined in reused slabs (io-slab-pool.ts)', () => {
  it('stores every event with its own bytes while slabs are reused across many commits', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    const sent: Buffer[] = [];
    // 40 turns of 6 events, each joined from two 40 KiB chunks: many batches, each releasing slabs the next
    // reuses. A slab handed out before its transaction settled would store other bytes than the event hashed.
    for (let turn = 0; turn < 40; turn++) {
      for (let i = 0; i < 6; i++) {
        const a = randomBytes(40 * 1024);
        const b = randomBytes(40 * 1024);
        sent.push(Buffer.concat([a, b]));
        recorder.io('out', a, '0');
        recorder.io('out', b, '0');
      }
      await nextTurn();
    }
    recorder.end(CLIENT_LEFT_END);
    await store.flush();

    const io = ioEvents([...store.events(info.id)]);
    expect(io).toHaveLength(sent.length);
    io.forEach((event, i) =>
      expect(Buffer.from(String(event['data']), 'base64').equals(sent[i]!)).toBe(true),
    );
    const report = await store.verify();
    expect(report.ok).toBe(true);
    expect(store.health.dropped).toBe(0);
    await store.close();
  });

  it("records the bytes as they were when io() was called: the caller's buffer is not held", async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    // One buffer reused for every chunk, as a reader with a fixed read buffer does; small and slab-sized events,
    // and a chunk larger than a slab (recorded alone); both buffers are overwritten before the commit reads them.
    const reused = Buffer.alloc(40 * 1024);
    const sent: Buffer[] = [];
    for (const size of [5, 40 * 1024, 40 * 1024, 40 * 1024, 300]) {
      reused.fill(sent.length + 1, 0, size);
      sent.push(Buffer.from(reused.subarray(0, size)));
      recorder.io('out', reused.subarray(0, size), '0');
    }
    const large = randomBytes(100 * 1024);
    recorder.io('out', large, '0');
    const largeSent = Buffer.from(large);
    reused.fill(0xee);
    large.fill(0xee);
    recorder.end(CLIENT_LEFT_END);
    await store.flush();

    const recorded = Buffer.concat(
      ioEvents([...store.events(info.id)]).map((e) => Buffer.from(String(e['data']), 'base64')),
    );
    expect(recorded.equals(Buffer.concat([...sent, largeSent]))).toBe(true);
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });
});

describe('exporters', () => {
  it('exports asciicast v2 with the pty size, output frames and real timings', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    recorder.append('notice', {
      event: 'channel.request',
      request: 'pty-req',
      cols: 132,
      rows: 43,
      term: 'xterm-256color',
    });
    recorder.io('out', Buffer.from('$ '), '0');
    recorder.io('in', Buffer.from('echo hé\r'), '0');
    await sleep(60);
    const accented = Buffer.from('hé\r\n');
    // The two bytes of 'é' split across chunks must not be mangled.
    recorder.io('out', accented.subarray(0, 2), '0');
    await sleep(5); // a later millisecond: its own frame
    recorder.io('out', accented.subarray(2), '0');
    recorder.io('err', Buffer.from('warn\n'), '0');
    recorder.io('out', Buffer.from('other channel'), '1');
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    const events = [...store.events(info.id)];

    const cast = exportAsciicast(events, { channel: '0' })
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
    expect(cast[0]).toEqual({
      version: 2,
      width: 132,
      height: 43,
      timestamp: Math.floor(events[0]!.ts / 1000),
      env: { TERM: 'xterm-256color' },
    });
    const frames = cast.slice(1) as [number, string, string][];
    expect(frames.map((f) => f[1])).toEqual(['o', 'o', 'o', 'o']);
    expect(frames.map((f) => f[2]).join('')).toBe('$ hé\r\nwarn\n');
    expect(frames[2]![2]).toBe('é\r\n');
    for (let i = 1; i < frames.length; i++) expect(frames[i]![0]).toBeGreaterThanOrEqual(frames[i - 1]![0]);
    expect(frames[1]![0] - frames[0]![0]).toBeGreaterThanOrEqual(0.05);

    const all = exportAsciicast(events).trimEnd().split('\n');
    expect(all.at(-1)).toContain('other channel');
    expect(JSON.parse(exportAsciicast([], { width: 100, height: 30 }))).toEqual({
      version: 2,
      width: 100,
      height: 30,
    });

    const lines = [...exportJsonl(store.events(info.id))];
    expect(lines).toHaveLength(events.length);
    for (const [i, line] of lines.entries()) {
      expect(line.endsWith('\n')).toBe(true);
      expect(JSON.parse(line)).toEqual(events[i]);
    }
    await store.close();
  });

  it('shows an SSH exec command as a prompt line before its output, per channel', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    for (const [channel, text] of [
      ['0', 'uname -a'],
      ['1', 'printf "a\\nb"'],
    ] as const) {
      recorder.append('command', {
        protocol: 'ssh',
        kind: 'exec',
        text,
        simpleCommands: [],
        detail: { channel },
      });
      recorder.io('out', Buffer.from(`out of ${channel}\n`), channel);
    }
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    const events = [...store.events(info.id)];
    const output = (cast: string): string =>
      cast
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((line) => (JSON.parse(line) as [number, string, string])[2])
        .join('');
    expect(output(exportAsciicast(events, { channel: '0' }))).toBe('$ uname -a\r\nout of 0\n');
    expect(output(exportAsciicast(events))).toBe('$ uname -a\r\nout of 0\n$ printf "a\\nb"\r\nout of 1\n');
    await store.close();
  });
});
