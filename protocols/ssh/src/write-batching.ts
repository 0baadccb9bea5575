import type { Duplex, Readable } from 'node:stream';

/**
 * One TCP read carries several SSH packets (Node reads up to 64 KiB; OpenSSH and ssh2 send channel data in 32 KiB
 * packets, RFC 4254 §5.2). ssh2 decrypts them one by one inside the reader's 'data' handler and every packet it
 * sends in response goes out through its own `socket.write()`: the relayed payloads on the other socket, and on the
 * same socket the data a window adjust released (RFC 4254 §5.2) plus our own window adjusts. One syscall per
 * packet. Corking the writers for the duration of that handler hands them to the kernel in one writev(2) each.
 *
 * Must be attached after ssh2's own 'data' listener on `reader` (listeners run in order; the cork goes first via
 * prependListener, the uncork last). Nothing is held back past the read that produced it, so flow control and
 * latency are unchanged. Returns a function that detaches both listeners.
 */
export function batchWritesPerRead(reader: Duplex, writers: readonly Duplex[]): () => void {
  let corked: readonly Duplex[] = [];
  const cork = (): void => {
    corked = corkLive(writers);
  };
  const uncork = (): void => {
    // Balance exactly the corks above: Writable counts them, and a stuck count would buffer without bound.
    const done = corked;
    corked = [];
    uncorkAll(done);
  };
  reader.prependListener('data', cork);
  reader.on('data', uncork);
  return () => {
    reader.removeListener('data', cork);
    reader.removeListener('data', uncork);
    uncork();
  };
}

/**
 * A channel paused for backpressure (the recorder waiting for commits, a full writer) keeps receiving into its
 * buffer, and when it resumes Node hands all of it out in one synchronous loop on a later tick, outside any socket
 * read's handler: without this every relayed packet would be a write(2) of its own. Corks the writers from the
 * reader's 'resume' until the next tick, which runs right after that loop. Returns a function that detaches it.
 */
export function batchWritesOnResume(reader: Readable, writers: readonly Duplex[]): () => void {
  const onResume = (): void => {
    const corked = corkLive(writers);
    if (corked.length > 0) process.nextTick(uncorkAll, corked);
  };
  reader.on('resume', onResume);
  return () => reader.removeListener('resume', onResume);
}

/** Cork the writers still open; returns those corked, each to be uncorked exactly once. */
function corkLive(writers: readonly Duplex[]): Duplex[] {
  const corked: Duplex[] = [];
  for (const w of writers) {
    if (w.destroyed || w.writableEnded) continue;
    w.cork();
    corked.push(w);
  }
  return corked;
}

function uncorkAll(corked: readonly Duplex[]): void {
  for (const w of corked) w.uncork();
}
