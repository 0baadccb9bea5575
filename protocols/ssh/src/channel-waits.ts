/**
 * What a session channel's relay waits for before it reads or writes on: an upstream that takes more input, and
 * two reasons to pause output (the terminal emulator, the recorder) together.
 */
import type { ClientChannel } from 'ssh2';

/** Resolves once the upstream channel takes more input (or is gone). */
export function upstreamDrained(upstream: ClientChannel): Promise<void> {
  if (!upstream.writableNeedDrain || !upstream.writable) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      upstream.off('drain', done);
      upstream.off('close', done);
      resolve();
    };
    upstream.once('drain', done);
    upstream.once('close', done);
  });
}

/** Settles once both have (either may be absent); undefined when neither is there. */
export function bothSettled(
  a: Promise<void> | undefined,
  b: Promise<void> | undefined,
): Promise<void> | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Promise.all([a, b]).then(() => undefined);
}
