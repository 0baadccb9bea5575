/**
 * What a relayed response body passes through besides the client, as a chain of small handlers (each sees the
 * decoded data, then the end): the capped body record, the demuxed stream record, the byte count. Which of them
 * a response gets is decided once, from its route and head (`bodyHandlers`).
 */
import type { ProtocolMetrics } from '@agentgate/core';
import { type AnswerSink, type DecidedRequest, RECORDED_BODY_CAP, recordAnswer } from './answer-record.js';
import { type Header, headerValue } from './http-codec.js';
import type { Route } from './routes.js';
import { StreamDemuxer } from './stream-demux.js';

export interface BodyHandler {
  /** A piece of the decoded body (framing removed), in order. */
  onData(data: Buffer): void;
  /** The body ended; `bytes` is its decoded size. */
  onComplete(bytes: number): void;
}

/** Bulk binary bodies (tar archives): counted and capped in the result, not recorded as io. */
const BULK_ACTIONS = new Set(['container.archive', 'container.export', 'image.save']);

/** Records the first RECORDED_BODY_CAP bytes of the body with the request's result. */
export class CappedBodyRecord implements BodyHandler {
  private readonly parts: Buffer[] = [];
  private kept = 0;

  constructor(
    private readonly sink: AnswerSink,
    private readonly decided: DecidedRequest,
    private readonly answer: { readonly status: number; readonly textual: boolean },
  ) {}

  onData(data: Buffer): void {
    if (this.kept >= RECORDED_BODY_CAP) return;
    const part = data.subarray(0, RECORDED_BODY_CAP - this.kept);
    this.parts.push(part);
    this.kept += part.length;
  }

  onComplete(bytes: number): void {
    const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    // A literal, not a spread: properties defined after a spread sent V8's optimised code to its runtime each time.
    const { status, textual } = this.answer;
    recordAnswer(this.sink, this.decided, { status, textual, body, bytes });
  }
}

/**
 * A long-lived stream (logs, events, stats, pull progress): recorded as io events as it goes, dockerd's
 * stdout/stderr framing taken apart; the result says only how much went by.
 */
export class StreamIoRecord implements BodyHandler {
  private readonly demux: StreamDemuxer;

  constructor(
    private readonly sink: AnswerSink,
    private readonly decided: DecidedRequest,
    private readonly status: number,
  ) {
    this.demux = new StreamDemuxer(decided.action === 'container.logs' ? 'unknown' : 'raw');
  }

  onData(data: Buffer): void {
    const recorder = this.sink.recorder;
    this.demux.push(data, (stream, bytes) => recorder.io(stream === 'in' ? 'out' : stream, bytes));
  }

  onComplete(bytes: number): void {
    recordAnswer(this.sink, this.decided, { status: this.status, bytes });
  }
}

/** Counts the bytes that went to the client (`agentgate_bytes_total`). */
export class ByteCount implements BodyHandler {
  constructor(
    private readonly metrics: ProtocolMetrics,
    private readonly listener: string,
  ) {}

  onData(): void {}

  onComplete(bytes: number): void {
    this.metrics.bytes(this.listener, 'docker', 'upstream_to_client', bytes);
  }
}

export function isTextual(headers: readonly Header[]): boolean {
  const ct = (headerValue(headers, 'content-type') ?? '').toLowerCase();
  return ct === '' || ct.includes('json') || ct.startsWith('text/');
}

export interface HandlerContext {
  readonly route: Route | undefined;
  readonly status: number;
  /** The body is text (isTextual of the answer's headers): recorded as such, else only counted. */
  readonly textual: boolean;
  /** Absent for answers nothing decided (`/_ping`) or when the session records nothing: only counted. */
  readonly decided: DecidedRequest | undefined;
  readonly sink: AnswerSink | undefined;
  readonly metrics: ProtocolMetrics;
  readonly listener: string;
}

/** Whether a decided answer's body is recorded as io as it goes (a stream route), not capped into its result. */
function recordsIo(route: Route | undefined, decided: DecidedRequest): boolean {
  return route?.response === 'stream' && !BULK_ACTIONS.has(decided.action);
}

/** The handlers a streamed (unmasked) response body passes through. */
export function bodyHandlers(ctx: HandlerContext): BodyHandler[] {
  const handlers: BodyHandler[] = [new ByteCount(ctx.metrics, ctx.listener)];
  const { decided, sink } = ctx;
  if (decided === undefined || sink === undefined) return handlers;
  if (recordsIo(ctx.route, decided)) handlers.push(new StreamIoRecord(sink, decided, ctx.status));
  else handlers.push(new CappedBodyRecord(sink, decided, { status: ctx.status, textual: ctx.textual }));
  return handlers;
}

/**
 * A body that came whole with its head, given to what its handlers would do with it as one piece: a plain answer
 * is counted and recorded capped without building the chain; a stream route's io record goes through its chain.
 */
export function completeWholeBody(ctx: HandlerContext, body: Buffer): void {
  const { decided, sink } = ctx;
  if (decided !== undefined && sink !== undefined && recordsIo(ctx.route, decided)) {
    const chain = new HandlerChain(bodyHandlers(ctx));
    chain.onData(body);
    chain.onComplete();
    return;
  }
  ctx.metrics.bytes(ctx.listener, 'docker', 'upstream_to_client', body.length);
  if (decided === undefined || sink === undefined) return;
  // recordAnswer caps what it records; the byte count is the whole body's.
  recordAnswer(sink, decided, { status: ctx.status, textual: ctx.textual, body, bytes: body.length });
}

/** Feed every handler, counting the bytes for their ends. */
export class HandlerChain {
  private bytes = 0;

  constructor(private readonly handlers: readonly BodyHandler[]) {}

  onData(data: Buffer): void {
    this.bytes += data.length;
    for (const h of this.handlers) h.onData(data);
  }

  onComplete(): void {
    for (const h of this.handlers) h.onComplete(this.bytes);
  }
}
