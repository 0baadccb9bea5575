import { describe, expect, it } from '@jest/globals';
import { oneAtATime } from './one-at-a-time.js';

/** Let every settled promise's handlers run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('oneAtATime', () => {
  it('runs once more after the running task for any number of asks meanwhile, never two at once', async () => {
    const finish: (() => void)[] = [];
    let running = 0;
    let most = 0;
    const ask = oneAtATime(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => finish.push(resolve));
      running--;
    });
    ask();
    ask();
    ask();
    expect(finish).toHaveLength(1);
    finish[0]!();
    await settle();
    expect(finish).toHaveLength(2); // the asks made while it ran: one more run, started after it ended
    finish[1]!();
    await settle();
    expect(finish).toHaveLength(2);
    expect(most).toBe(1);
  });

  it('goes on after a task that failed', async () => {
    let runs = 0;
    const ask = oneAtATime(() => {
      runs++;
      return Promise.reject(new Error('bad file'));
    });
    ask();
    await settle();
    ask();
    await settle();
    expect(runs).toBe(2);
  });
});
