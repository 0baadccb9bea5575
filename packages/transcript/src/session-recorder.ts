/**
 * The per-session recorder handed to engines. `append` is synchronous (chain + queue); stream bytes go through
 * `io`, which coalesces chunks by size and time into one `io` event, because one event per chunk costs most of a
 * relay's throughput.
 */
import type {
  IoDirection,
  Redactor,
  SessionRecorder,
  StreamRedactor,
  TranscriptEvent,
  TranscriptEventType,
} from '@agentgate/core';
import { sha256HexOfBytes } from './event-codec.js';
import { slabBytes, type IoSlabPool } from './io-slab-pool.js';

/** Flush an io event once this many bytes are pending. */
export const ioMaxBytes = 64 * 1024;
/** …or once the oldest pending chunk is this old. */
export const ioMaxDelayMs = 10;

export type AppendableType = Exclude<
  TranscriptEventType,
  'session.start' | 'session.end' | 'io' | 'checkpoint'
>;

/** What the recorder needs from the store. */
export interface RecorderHost {
  appendToSession(
    session: LiveSession,
    type: TranscriptEventType,
    body: Record<string, unknown> | undefined,
    /** JSON members written after the body as they are (see encodeEvent) */
    rawMembers?: string,
  ): TranscriptEvent;
  /** appendToSession answering only the event's seq (no event object). */
  appendSeq(
    session: LiveSession,
    type: TranscriptEventType,
    body: Record<string, unknown> | undefined,
  ): number;
  /**
   * Append an `io` event whose JSON members (after the header) are `members`, and store `data` raw under the
   * event's key in the same transaction.
   */
  appendIo(session: LiveSession, members: string, data: Buffer): void;
  /** Where io bytes are collected; `appendIo` and the commit return the slabs. */
  readonly ioSlabs: IoSlabPool;
  /** Append `session.end`, write the summary and sign the final checkpoint. */
  endSession(session: LiveSession, body: Record<string, unknown> | undefined): void;
  /** An io flush failed (store not writable): count it, never throw into a stream handler. */
  ioDropped(session: LiveSession, err: unknown): void;
  /** Applied to every body and every stream byte before it is recorded (docs/configuration.md, `redact`). */
  readonly redactor: Redactor;
  /** See SessionRecorder.committed. */
  committed(session: LiveSession): Promise<void> | undefined;
  /** See SessionRecorder.ioBackpressure. */
  ioBackpressure(session: LiveSession): Promise<void> | undefined;
}

/** Chain state of an open session. */
export interface LiveSession {
  readonly id: string;
  /** JSON.stringify(id), written into every event */
  readonly quotedId: string;
  /** seq of the next event */
  nextSeq: number;
  /** hash of the last event ('' before the first); set it with setHead() */
  head: string;
  /** JSON.stringify(head), written as the next event's `prev` */
  quotedHead: string;
  commands: number;
  denied: number;
  /** seq named by the last checkpoint, -1 if none */
  checkpointedSeq: number;
  ended: boolean;
  /** something appended since the session's last command is not vouched for by the space reserve */
  unguaranteed?: boolean;
  recorder?: StoreSessionRecorder;
}

/** Chain state for a session with no events yet (or, with `fields`, one picked up from the store). */
export function newLiveSession(
  id: string,
  fields: Partial<Omit<LiveSession, 'id' | 'quotedId'>> = {},
): LiveSession {
  return {
    id,
    quotedId: JSON.stringify(id),
    nextSeq: 0,
    head: '',
    quotedHead: '""',
    commands: 0,
    denied: 0,
    checkpointedSeq: -1,
    ended: false,
    ...fields,
  };
}

/** Point the session's chain at `hash` (a hash read back from the store, so possibly anything). */
export function setHead(session: LiveSession, hash: string): void {
  session.head = hash;
  session.quotedHead = JSON.stringify(hash);
}

interface PendingIo {
  readonly direction: IoDirection;
  readonly channel: string | undefined;
  readonly startTs: number;
  /**
   * The bytes so far, copied in as they come into a slab from the pool: the caller's chunk is never held past the
   * call (it may be a view of a whole socket read, which would then outlive the young generation, or be reused
   * by the caller before the commit reads it).
   */
  readonly data: Buffer;
  /**
   * `[ms since startTs, byte length]` per millisecond that bytes came in, as JSON text without the last entry,
   * built as chunks come (no array per chunk): lets asciicast export replay at the recorded pace. Chunks of the
   * same millisecond are one entry, so a stream redactor's held word and the bytes after it do not become two
   * frames a player cannot tell apart anyway.
   */
  timings: string;
  /** The last entry, still growing while chunks come in the same millisecond. */
  lastOffset: number;
  lastBytes: number;
  bytes: number;
  /** Redaction entries that fired in these bytes (JSON string members), '' when none. */
  redacted: string;
}

/**
 * An event with fewer bytes than this is stored from a copy of its own and its slab goes back to the pool at once:
 * the commit queue then never holds a whole slab for a keystroke's echo.
 */
const smallIoBytes = slabBytes / 4;

const NO_NAMES: readonly string[] = [];

export class StoreSessionRecorder implements SessionRecorder {
  private pending: PendingIo | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly lost = new AbortController();
  /** Per `direction + channel`: the stream's redactor, while it holds bytes or a secret is in progress. */
  private readonly streams = new Map<string, StreamRedactor>();

  constructor(
    private readonly host: RecorderHost,
    private readonly session: LiveSession,
  ) {}

  get sessionId(): string {
    return this.session.id;
  }

  get recordingLost(): AbortSignal {
    return this.lost.signal;
  }

  append(type: AppendableType, body: Record<string, unknown>): TranscriptEvent {
    // Keep order: bytes that arrived before this event are recorded before it (except a tail that may still be
    // part of a secret, which the stream's redactor holds until it is decided).
    this.flushIo();
    return this.host.appendToSession(this.session, type, this.redactBody(body));
  }

  appendSeq(type: AppendableType, body: Record<string, unknown>): number {
    this.flushIo();
    return this.host.appendSeq(this.session, type, this.redactBody(body));
  }

  committed(): Promise<void> | undefined {
    return this.host.committed(this.session);
  }

  ioBackpressure(): Promise<void> | undefined {
    return this.host.ioBackpressure(this.session);
  }

  io(direction: IoDirection, data: Buffer, channel?: string): void {
    if (this.session.ended || data.length === 0) return;
    const redactor = this.host.redactor;
    if (!redactor.active) {
      this.enqueue(direction, channel, data, NO_NAMES);
      return;
    }
    const key = channel === undefined ? direction : direction + '\u0000' + channel;
    let stream = this.streams.get(key);
    if (stream === undefined) {
      stream = redactor.stream();
      this.streams.set(key, stream);
    }
    const released = stream.push(data);
    if (stream.settled) this.streams.delete(key);
    for (const piece of released.pieces) this.enqueue(direction, channel, piece, released.fired);
  }

  end(body?: Record<string, unknown>): void {
    if (this.session.ended) return;
    for (const [key, stream] of this.streams) {
      const separator = key.indexOf('\u0000');
      const direction = (separator < 0 ? key : key.slice(0, separator)) as IoDirection;
      const channel = separator < 0 ? undefined : key.slice(separator + 1);
      const released = stream.release('end');
      for (const piece of released.pieces) this.enqueue(direction, channel, piece, released.fired);
    }
    this.streams.clear();
    this.flushIo();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.host.endSession(this.session, body === undefined ? undefined : this.redactBody(body));
  }

  private redactBody(body: Record<string, unknown>): Record<string, unknown> {
    return redactBody(this.host.redactor, body);
  }

  private enqueue(
    direction: IoDirection,
    channel: string | undefined,
    data: Buffer,
    fired: readonly string[],
  ): void {
    const length = data.length;
    if (length === 0) return;
    const now = Date.now();
    let pending = this.pending;
    if (
      pending &&
      (pending.direction !== direction ||
        pending.channel !== channel ||
        pending.bytes + length > pending.data.length)
    ) {
      this.flushIo();
      pending = undefined;
    }
    if (!pending) {
      // A chunk larger than a slab is recorded alone, from a copy of its own.
      const into = length > slabBytes ? Buffer.allocUnsafeSlow(length) : this.host.ioSlabs.take();
      data.copy(into, 0);
      pending = {
        direction,
        channel,
        startTs: now,
        data: into,
        timings: '',
        lastOffset: 0,
        lastBytes: length,
        bytes: length,
        redacted: '',
      };
      this.pending = pending;
    } else {
      data.copy(pending.data, pending.bytes);
      const offset = now - pending.startTs;
      if (offset === pending.lastOffset) {
        pending.lastBytes += length;
      } else {
        pending.timings += '[' + pending.lastOffset + ',' + pending.lastBytes + '],';
        pending.lastOffset = offset;
        pending.lastBytes = length;
      }
      pending.bytes += length;
    }
    for (const name of fired) {
      const member = JSON.stringify(name);
      if (!pending.redacted.includes(member))
        pending.redacted += (pending.redacted === '' ? '' : ',') + member;
    }
    if (pending.bytes >= ioMaxBytes) {
      this.flushIo();
    } else if (!this.timer) {
      this.armTimer(ioMaxDelayMs);
    }
  }

  /**
   * The timer outlives the event it was armed for: a stream flushed by size starts an event every fraction of a
   * millisecond, and a timer set and cleared for each would cost more than the one wake per `ioMaxDelayMs`.
   */
  private armTimer(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }

  /** Flush the pending event once its first chunk is `ioMaxDelayMs` old (a younger one waits the rest). */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    const pending = this.pending;
    if (pending === undefined) return;
    // Bounded: a wall clock set back must not hold the event longer.
    const rest = Math.min(pending.startTs + ioMaxDelayMs - Date.now(), ioMaxDelayMs);
    if (rest > 0) this.armTimer(rest);
    else this.flushIo();
  };

  /**
   * Write pending stream bytes as one `io` event. Never throws (it runs from timers and stream handlers).
   *
   * The bytes never become base64 or JSON here: they are stored raw in the `iodata` db under the event's key, and
   * the event carries their SHA-256 (`dataSha256`, hashed over the Buffer itself), so the hash chain covers them.
   * The event's members are written as JSON text directly (every value is a number, a hex, or a string that
   * is JSON.stringify'd), in this order: direction, channel?, bytes, startTs, chunks, dataSha256, redacted?.
   */
  flushIo(): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    let data = pending.bytes === pending.data.length ? pending.data : pending.data.subarray(0, pending.bytes);
    if (pending.bytes < smallIoBytes) {
      data = Buffer.from(data);
      this.host.ioSlabs.release(pending.data);
    }
    const members =
      ',"direction":' +
      JSON.stringify(pending.direction) +
      (pending.channel === undefined ? '' : ',"channel":' + JSON.stringify(pending.channel)) +
      ',"bytes":' +
      pending.bytes +
      ',"startTs":' +
      pending.startTs +
      ',"chunks":[' +
      pending.timings +
      '[' +
      pending.lastOffset +
      ',' +
      pending.lastBytes +
      ']],"dataSha256":"' +
      sha256HexOfBytes(data) +
      '"' +
      (pending.redacted === '' ? '' : ',"redacted":[' + pending.redacted + ']');
    try {
      this.host.appendIo(this.session, members, data);
    } catch (err) {
      // appendIo throws only when the store refuses (failMode closed): the engine must stop the stream.
      this.host.ioDropped(this.session, err);
      if (!this.lost.signal.aborted) this.lost.abort(err);
    }
  }
}

/** The body with its secrets replaced and `redacted` naming the entries that fired (merged with any given). */
export function redactBody(redactor: Redactor, body: Record<string, unknown>): Record<string, unknown> {
  if (!redactor.active) return body;
  const { value, fired } = redactor.body(body);
  if (fired.length === 0) return body;
  const given = Array.isArray(body['redacted']) ? (body['redacted'] as unknown[]) : [];
  const names = [...given.filter((n): n is string => typeof n === 'string')];
  for (const name of fired) if (!names.includes(name)) names.push(name);
  return { ...value, redacted: names };
}
