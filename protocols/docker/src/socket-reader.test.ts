import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { SocketReader, TIMED_OUT } from './socket-reader.js';

describe('SocketReader deadlines', () => {
  it('times out a later wait at its own deadline, not at an earlier wait', async () => {
    const input = new PassThrough();
    const reader = new SocketReader(input);
    // A first wait with a near deadline, answered before it passes: the timer stays armed for it.
    const first = reader.readBefore(Date.now() + 60);
    input.write('a');
    expect((await first) as Buffer).toEqual(Buffer.from('a'));
    // The next wait's deadline is later: the timer firing for the first one must not end it.
    const started = Date.now();
    const second = await reader.readBefore(started + 250);
    const waited = Date.now() - started;
    expect(second).toBe(TIMED_OUT);
    expect(waited).toBeGreaterThanOrEqual(240);
    input.destroy();
  });

  it('moves the timer for an earlier deadline', async () => {
    const input = new PassThrough();
    const reader = new SocketReader(input);
    const first = reader.readBefore(Date.now() + 10_000);
    input.write('a');
    await first;
    const started = Date.now();
    expect(await reader.readBefore(started + 50)).toBe(TIMED_OUT);
    expect(Date.now() - started).toBeLessThan(5_000);
    input.destroy();
  });

  it('returns data that arrives before the deadline, and null once the stream ended', async () => {
    const input = new PassThrough();
    const reader = new SocketReader(input);
    const read = reader.readBefore(Date.now() + 5_000);
    setTimeout(() => input.write('late but in time'), 20);
    expect(((await read) as Buffer).toString()).toBe('late but in time');
    input.end();
    expect(await reader.readBefore(Date.now() + 5_000)).toBeNull();
  });
});
