/**
 * Byte relays between two streams, shared by the engines that pass a stream through untouched (SSH channels and
 * forwarded ports, Docker's hijacked attach/exec streams): backpressure, an observer per chunk (recording,
 * counting), nothing buffered without bound.
 */
import type { Readable, Writable } from 'node:stream';

export interface RelayOptions {
  /** Sees every chunk before it is written (recording, parsing); a throwing observer never breaks the relay. */
  readonly observe?: (chunk: Buffer) => void;
  /**
   * Bytes `dst` may queue before `src` is paused. 0 (the default): pause as soon as `dst.write()` asks to, which is
   * what an SSH channel window needs. A socket-to-socket relay passes more, so that it does not stall on every
   * 64 KiB read when the socket's own mark is 16 KiB.
   */
  readonly highWater?: number;
  /**
   * Asked after each chunk is observed: a promise pauses `src` until it settles, whatever `dst` does (the
   * recorder's stream bytes waiting for their commit, SessionRecorder.ioBackpressure). Called again only once
   * the previous promise has settled.
   */
  readonly hold?: () => Promise<void> | undefined;
}

export interface Relay {
  /** Pass a chunk read before the relay started (bytes already taken off `src`) the same way as the rest. */
  push(chunk: Buffer): void;
}

/**
 * Copy `src` into `dst` honouring backpressure: when `dst` holds more than `highWater` bytes, `src` pauses until
 * `dst` drains (for an SSH channel this stops ssh2 from granting the sender more window, RFC 4254 §5.2). Chunks
 * written once `dst` has closed are dropped (they are still observed). Ending is the caller's: each protocol
 * propagates half-closes its own way.
 */
export function relayData(
  src: Readable,
  dst: Writable,
  options: RelayOptions | ((chunk: Buffer) => void) = {},
): Relay {
  const { observe, highWater = 0, hold } = typeof options === 'function' ? { observe: options } : options;
  // Two reasons to pause, each resumed by its own event; `src` resumes only when neither holds it.
  let waiting = false;
  let held = false;
  const onDrain = (): void => {
    waiting = false;
    if (!held) src.resume();
  };
  const release = (): void => {
    held = false;
    if (!waiting) src.resume();
  };
  const push = (chunk: Buffer): void => {
    if (observe !== undefined) {
      try {
        observe(chunk);
      } catch {
        // An observer failure must not corrupt the stream; the observers record their own errors.
      }
    }
    if (hold !== undefined && !held) {
      const until = hold();
      if (until !== undefined) {
        held = true;
        src.pause();
        until.then(release, release);
      }
    }
    if (!dst.writable) return;
    if (!dst.write(chunk) && dst.writableLength > highWater && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  };
  src.on('data', push);
  return { push };
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
