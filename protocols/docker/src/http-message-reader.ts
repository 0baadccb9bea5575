/**
 * Reads HTTP/1.1 messages off one socket, for both directions: the client's requests and dockerd's responses share
 * the head reading (with the request side's timeouts) and the body pump (raw bytes for relaying, decoded data for
 * judging and recording). Framing itself is http-codec.ts; this adds only the I/O.
 */
import { AgentgateError } from '@agentgate/core';
import { BodyDecoder, type BodyFraming } from './http-codec.js';
import { SocketReader, TIMED_OUT } from './socket-reader.js';

const EMPTY = Buffer.alloc(0);

/** A head parser of http-codec.ts: the head and the bytes it used, or null while more bytes are needed. */
export type HeadParser<H> = (buf: Buffer) => { head: H; consumed: number } | null;

export interface HeadLimits {
  /**
   * Until when (ms since the epoch) the first byte may take to arrive; after that the wait is over (keep-alive
   * idle timeout). Absent: the head deadline covers the wait.
   */
  readonly idleUntil?: number | undefined;
  /** How long the head may take, counted from `startedAt` or else from its first byte. Absent: no limit. */
  readonly headMs?: number | undefined;
  /** When the head's clock starts (a new connection: its start) instead of at the first byte. */
  readonly startedAt?: number | undefined;
}

export type HeadRead<H> =
  | { readonly kind: 'head'; readonly head: H; /** the head's bytes as received */ readonly raw: Buffer }
  /** The peer closed; `partial`: inside a head. */
  | { readonly kind: 'end'; readonly partial: boolean }
  /** A limit passed; `partial`: part of a head had arrived (a slow or stalled sender), else none (idle). */
  | { readonly kind: 'timeout'; readonly partial: boolean };

/** One piece of a body: the decoded data in it, and the bytes as they came (framing included). */
export type BodyPiece = (data: readonly Buffer[], raw: Buffer) => Promise<void> | undefined;

/**
 * The last head this reader parsed: a keep-alive peer repeats the same head bytes (a client polling, dockerd's
 * answers within one second of `Date`), and identical bytes parse to the identical head, so they are not parsed
 * again. One entry per connection, a copy of the bytes (the chunk they came in is not kept alive).
 */
interface LastHead {
  readonly parse: HeadParser<unknown>;
  readonly bytes: Buffer;
  readonly head: unknown;
}

export class HttpMessageReader {
  private last: LastHead | undefined;

  constructor(readonly socket: SocketReader) {}

  /** Bytes read but not yet consumed (a pipelined next request, or body bytes that came with the head). */
  get buffered(): number {
    return this.socket.buffered;
  }

  async readHead<H>(parse: HeadParser<H>, limits: HeadLimits = {}): Promise<HeadRead<H>> {
    let buf: Buffer = EMPTY;
    let headDeadline =
      limits.headMs !== undefined && limits.startedAt !== undefined
        ? limits.startedAt + limits.headMs
        : undefined;
    for (;;) {
      const chunk = this.socket.take();
      if (chunk === undefined) {
        if (this.socket.settled() === null) return { kind: 'end', partial: buf.length > 0 };
        // Bare waits on the reader (no async read around them): a head costs one resumption of this function.
        const deadline = buf.length === 0 ? (limits.idleUntil ?? headDeadline) : headDeadline;
        if (deadline === undefined) await this.socket.arrival();
        else {
          const wait = this.socket.arrivalBefore(deadline);
          if (wait === TIMED_OUT) return { kind: 'timeout', partial: buf.length > 0 };
          await wait;
          if (this.socket.lapsed) return { kind: 'timeout', partial: buf.length > 0 };
        }
        continue;
      }
      if (buf.length === 0 && headDeadline === undefined && limits.headMs !== undefined)
        headDeadline = Date.now() + limits.headMs;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const repeated = this.repeatedHead(parse, buf);
      if (repeated > 0) {
        if (repeated < buf.length) this.socket.unshift(buf.subarray(repeated));
        return { kind: 'head', head: this.last!.head as H, raw: buf.subarray(0, repeated) };
      }
      const parsed = parse(buf);
      if (parsed) {
        if (parsed.consumed < buf.length) this.socket.unshift(buf.subarray(parsed.consumed));
        this.last = { parse, bytes: Buffer.from(buf.subarray(0, parsed.consumed)), head: parsed.head };
        return { kind: 'head', head: parsed.head, raw: buf.subarray(0, parsed.consumed) };
      }
    }
  }

  /**
   * How many bytes of `buf` are the previous head, when it starts with exactly its bytes (else 0). Those bytes end
   * at their first blank line, so the head in `buf` ends at the same place and parses the same.
   */
  private repeatedHead<H>(parse: HeadParser<H>, buf: Buffer): number {
    const last = this.last;
    if (last === undefined || last.parse !== parse) return 0;
    const n = last.bytes.length;
    if (buf.length < n || buf.compare(last.bytes, 0, n, 0, n) !== 0) return 0;
    return n;
  }

  /**
   * Read one body to its end, handing each piece to `onPiece` (awaited when it returns a promise: backpressure).
   * Bytes past the body stay for the next message. A body that ends early throws `closedInside`, except one framed
   * by the connection's close, which ends there. Returns nothing when the whole body was already here and every
   * piece was taken at once (a small answer read with its head), a promise when it had to wait.
   */
  pumpBody(framing: BodyFraming, onPiece: BodyPiece, closedInside: string): Promise<void> | undefined {
    const decoder = new BodyDecoder(framing);
    while (!decoder.done) {
      const chunk = this.socket.take();
      if (chunk === undefined) return this.pumpRest(decoder, onPiece, closedInside);
      const pending = this.feed(decoder, chunk, onPiece);
      if (pending) return pending.then(() => this.pumpRest(decoder, onPiece, closedInside));
    }
    return undefined;
  }

  private async pumpRest(decoder: BodyDecoder, onPiece: BodyPiece, closedInside: string): Promise<void> {
    while (!decoder.done) {
      const chunk = this.socket.take() ?? (await this.socket.read());
      if (chunk === null) {
        if (decoder.framing.kind === 'close') return;
        throw new AgentgateError('PROTOCOL_VIOLATION', closedInside);
      }
      const pending = this.feed(decoder, chunk, onPiece);
      if (pending) await pending;
    }
  }

  /** One chunk through the decoder: the body's part to `onPiece`, the rest back to the reader. */
  private feed(decoder: BodyDecoder, chunk: Buffer, onPiece: BodyPiece): Promise<void> | undefined {
    const step = decoder.push(chunk);
    if (step.consumed < chunk.length) this.socket.unshift(chunk.subarray(step.consumed));
    return onPiece(step.data, step.consumed === chunk.length ? chunk : chunk.subarray(0, step.consumed));
  }

  /** A whole body in memory, refused with LIMIT_EXCEEDED `tooLarge` past `limit` bytes (before reading, if it says so). */
  async readBody(
    framing: BodyFraming,
    limit: number,
    tooLarge: string,
    closedInside: string,
  ): Promise<Buffer> {
    if (framing.kind === 'length' && framing.length > limit)
      throw new AgentgateError('LIMIT_EXCEEDED', tooLarge);
    const parts: Buffer[] = [];
    let size = 0;
    await this.pumpBody(
      framing,
      (data) => {
        for (const d of data) {
          size += d.length;
          if (size > limit) throw new AgentgateError('LIMIT_EXCEEDED', tooLarge);
          parts.push(d);
        }
        return undefined;
      },
      closedInside,
    );
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}
