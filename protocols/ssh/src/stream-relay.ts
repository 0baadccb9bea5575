import type { Readable, Writable } from 'node:stream';

/**
 * Copy `src` into `dst` honouring backpressure: when `dst.write()` returns false (its buffer, bounded by the SSH
 * channel window plus ssh2's 2 MiB highWaterMark, is full) `src` pauses, which stops ssh2 from granting the sender
 * more window (RFC 4254 §5.2). Nothing is buffered without bound. `observe` sees every chunk (recording, parsing).
 */
export function relayData(src: Readable, dst: Writable, observe?: (chunk: Buffer) => void): void {
  const onDrain = (): void => {
    src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    try {
      observe?.(chunk);
    } catch {
      // An observer failure must not corrupt the stream; the observers record their own errors.
    }
    if (!dst.writable) return;
    if (!dst.write(chunk)) {
      src.pause();
      dst.once('drain', onDrain);
    }
  });
}

/** Resolves once every chunk written to `w` so far has been handed to the transport (or `w` is gone). */
export function writesFlushed(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (!w.writable || w.writableLength === 0) {
      resolve();
      return;
    }
    // Writable calls write callbacks in order, so an empty write's callback runs after all earlier ones.
    w.write(Buffer.alloc(0), () => resolve());
    w.once('close', () => resolve());
  });
}

/** Resolves when a readable has ended (all its data consumed) or closed. */
export function ended(r: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (r.readableEnded || r.destroyed) {
      resolve();
      return;
    }
    r.once('end', () => resolve());
    r.once('close', () => resolve());
  });
}
