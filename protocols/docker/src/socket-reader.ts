/**
 * Pull-style reading from a stream with backpressure: the stream only flows while someone awaits `read()`, so a
 * request held for a decision or an approval stops the client (TCP flow control) instead of buffering it.
 */
import type { Duplex } from 'node:stream';
import type { SlabReads } from '@agentgate/core';

/** What `readBefore` returns when its deadline passed with nothing read. */
export const TIMED_OUT = Symbol('timed out');

export class SocketReader {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** The deadline `readBefore` waits for now (Infinity: none), and whether it passed. */
  private deadline = Infinity;
  private timedOut = false;
  /**
   * One timer behind every deadline, left running across waits: a keep-alive connection waits with a deadline
   * before each request, and arming a timer of a new length each time cost about as much as parsing the head. It is
   * moved only for an earlier deadline; when it fires for a later one it re-arms for the rest.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerDue = Infinity;
    if (this.deadline === Infinity) return;
    const now = Date.now();
    if (now < this.deadline) this.armTimer(this.deadline, now);
    else {
      this.timedOut = true;
      this.notify();
    }
  };
  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    if (!this.wake) this.stream.pause();
    this.notify();
  };
  /** A socket read through `onread` (packages/core slab-reads.ts): returning false stops its reads until `resume`. */
  private detached = false;
  private readonly onRead = (chunk: Buffer): boolean => {
    // Detached (a hijacked stream): the socket's own Readable takes the bytes, as it would have without onread.
    if (this.detached) return this.stream.push(chunk);
    this.queue.push(chunk);
    const waited = this.wake !== undefined;
    this.notify();
    return waited || (this.readAhead > 0 && this.buffered < this.readAhead);
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.stopTimer();
    this.notify();
  };
  private readonly onError = (err: Error): void => {
    this.failure = err;
    this.notify();
  };

  /**
   * `slab`: the stream is a socket read through its `onread` options, and reads arrive through it, not 'data'.
   * `readAhead`: with `slab`, how many bytes to keep reading while nobody waits. A paused Readable socket goes on
   * reading up to its high-water mark, so it sees a peer's FIN or reset while a request is decided; a client's
   * socket keeps that (the connection's 'end' and 'close' withdraw a held request), 0 stops at once.
   */
  constructor(
    private readonly stream: Duplex,
    slab?: SlabReads,
    private readonly readAhead = 0,
  ) {
    stream.pause();
    if (slab) this.queue.push(...slab.attach(this.onRead));
    else stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  get atEnd(): boolean {
    return (this.ended || this.failure !== undefined) && this.queue.length === 0;
  }

  get buffered(): number {
    let n = 0;
    for (const b of this.queue) n += b.length;
    return n;
  }

  private notify(): void {
    // A wait ends here, whatever woke it: the timer left running no longer counts for it.
    this.deadline = Infinity;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /**
   * A chunk that is already here, without waiting: the request path takes buffered bytes synchronously and only
   * awaits (and resumes the stream) when it has to.
   */
  take(): Buffer | undefined {
    return this.queue.shift();
  }

  /**
   * What an empty queue means now: null once the stream has ended, undefined while more may come; throws the
   * stream's failure. Callers that find nothing to `take` ask this before they wait.
   */
  settled(): null | undefined {
    if (this.failure) throw this.failure;
    return this.ended ? null : undefined;
  }

  /**
   * Settles when there is something to look at (bytes, the end, a failure): one bare promise per wait, so a
   * caller's loop of `take`, `settled` and `arrival` waits without an async function of this reader around it.
   */
  arrival(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.stream.resume();
    });
  }

  /**
   * Like `arrival`, but also settles at `deadline` (ms since the epoch, `Date.now()`); TIMED_OUT without waiting
   * when it has passed. After it settles, `lapsed` says whether the deadline ended the wait.
   */
  arrivalBefore(deadline: number): Promise<void> | typeof TIMED_OUT {
    const now = Date.now();
    if (deadline <= now) return TIMED_OUT;
    this.deadline = deadline;
    this.timedOut = false;
    this.armTimer(deadline, now);
    return this.arrival();
  }

  /** The last `arrivalBefore` ended at its deadline with nothing queued. */
  get lapsed(): boolean {
    return this.timedOut && this.queue.length === 0;
  }

  /** The next bytes, or null once the stream has ended. */
  async read(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) return chunk;
      if (this.settled() === null) return null;
      await this.arrival();
    }
  }

  /**
   * Like `read`, but gives up at `deadline` (ms since the epoch, `Date.now()`) when nothing arrived by then: the
   * timeouts of a connection that sends nothing, or too little.
   */
  async readBefore(deadline: number): Promise<Buffer | null | typeof TIMED_OUT> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) return chunk;
      if (this.settled() === null) return null;
      const wait = this.arrivalBefore(deadline);
      if (wait === TIMED_OUT) return TIMED_OUT;
      await wait;
      if (this.lapsed) return TIMED_OUT;
    }
  }

  private armTimer(due: number, now: number): void {
    if (this.timer !== undefined) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    // Unreferenced: the socket keeps the process alive while it is open, a timer left running must not.
    this.timer = setTimeout(this.onTimer, due - now).unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }

  /** Give bytes back (the part of a chunk that belongs to the next message). */
  unshift(chunk: Buffer): void {
    if (chunk.length > 0) this.queue.unshift(chunk);
  }

  /** Stop reading through this object; returns what was buffered and whether the stream had already ended. */
  detach(): { pending: Buffer[]; ended: boolean } {
    this.stopTimer();
    this.detached = true;
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    const pending = this.queue.splice(0);
    return { pending, ended: this.ended };
  }
}

/**
 * How many bytes a relay lets queue in a socket before it stops reading the other side. Sockets signal
 * backpressure at 16 KiB, less than one 64 KiB read: waiting for 'drain' at every chunk would stall a bulk stream
 * on each read, so relays wait only past this bound (still bounded memory per connection).
 */
export const RELAY_HIGH_WATER = 1024 * 1024;

/**
 * Write with backpressure: resolves once the stream can take more, rejects if it closes first. `highWater` lets
 * a relay keep writing until that many bytes are queued.
 */
export function writeAll(
  stream: Duplex,
  data: Buffer | readonly Buffer[],
  highWater = 0,
): Promise<void> | undefined {
  let ok = true;
  if (Buffer.isBuffer(data)) ok = stream.write(data);
  else for (const d of data) ok = stream.write(d) && ok;
  if (ok || stream.writableLength <= highWater) return undefined;
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      stream.off('error', onErr);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new Error('stream closed while writing'));
    const onErr = (e: Error): void => done(e);
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', onErr);
  });
}

/**
 * End our side and wait until the bytes are flushed: the root destroys the socket once `handle` resolves.
 * `timeoutMs` bounds the wait where nothing of value is queued (an idle connection closed at shutdown). Without it
 * the wait lasts as long as the client holds its connection open: a slow or paused reader still gets the tail of an
 * answer, as it would from dockerd, and shutdown's grace ends the wait by destroying the socket.
 */
export function endAndFlush(stream: Duplex, timeoutMs?: number): Promise<void> {
  if (stream.destroyed || stream.writableFinished) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
    function done(): void {
      if (timer !== undefined) clearTimeout(timer);
      stream.off('finish', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    }
    stream.on('finish', done);
    stream.on('close', done);
    stream.on('error', done);
    if (!stream.writableEnded) stream.end();
  });
}
