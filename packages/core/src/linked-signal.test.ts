import { describe, expect, it } from '@jest/globals';
import { linkSignals } from './linked-signal.js';

describe('linkSignals', () => {
  it('aborts with the reason of whichever source aborts first', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkSignals(a.signal, b.signal);
    expect(linked.signal.aborted).toBe(false);
    b.abort('second');
    a.abort('first');
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('second');
  });

  it('starts aborted when a source already is', () => {
    const a = new AbortController();
    a.abort('gone');
    const linked = linkSignals(new AbortController().signal, a.signal);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('gone');
    linked.unlink();
  });

  it('no longer follows its sources once unlinked', () => {
    const a = new AbortController();
    const b = new AbortController();
    const linked = linkSignals(a.signal, b.signal);
    linked.unlink();
    a.abort('late');
    expect(linked.signal.aborted).toBe(false);
  });

  it('leaves nothing on a long-lived source after many links (AbortSignal.any keeps one entry per call)', () => {
    const session = new AbortController();
    const connection = new AbortController();
    let listeners = 0;
    const count = (signal: AbortSignal): void => {
      const add = signal.addEventListener.bind(signal);
      const remove = signal.removeEventListener.bind(signal);
      signal.addEventListener = ((...args: Parameters<typeof add>) => {
        listeners++;
        add(...args);
      }) as typeof signal.addEventListener;
      signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
        listeners--;
        remove(...args);
      }) as typeof signal.removeEventListener;
    };
    count(session.signal);
    count(connection.signal);
    for (let i = 0; i < 1000; i++) linkSignals(session.signal, connection.signal).unlink();
    expect(listeners).toBe(0);
  });
});
