/**
 * dockerd's answer to one forwarded request, relayed to the client in one of three ways chosen from the route and
 * the response head: a hijacked stream (attach, exec start), a buffered inspect body with its environment masked,
 * or a body streamed through as it comes with the handler chain watching (response-handlers.ts).
 */
import type { Duplex } from 'node:stream';
import { AgentgateError, type ProtocolMetrics, type ValueMasker } from '@agentgate/core';
import type { AnswerSink, DecidedRequest } from './answer-record.js';
import { recordAnswer } from './answer-record.js';
import { maskInspectEnv } from './env-masking.js';
import { relayHijacked } from './hijacked-stream.js';
import {
  type BodyFraming,
  type Header,
  type ResponseHead,
  encodeResponseHead,
  headerValue,
  parseResponseHead,
  responseFraming,
  wantsConnectionClose,
} from './http-codec.js';
import type { HeadRead, HttpMessageReader } from './http-message-reader.js';
import {
  HandlerChain,
  type HandlerContext,
  bodyHandlers,
  completeWholeBody,
  isTextual,
} from './response-handlers.js';
import type { CanonicalRequest, Route } from './routes.js';
import { RELAY_HIGH_WATER, type SocketReader, writeAll } from './socket-reader.js';

/** Inspect responses are buffered to mask them; anything larger is refused rather than passed unmasked. */
const MASKED_BODY_CAP = 32 * 1024 * 1024;

export interface ResponseExchange {
  readonly client: Duplex;
  readonly clientReader: SocketReader;
  readonly upstream: Duplex;
  readonly upstreamMessages: HttpMessageReader;
  readonly req: CanonicalRequest;
  readonly route: Route | undefined;
  /** Absent for `/_ping`, which nothing decided and nothing records. */
  readonly decided: DecidedRequest | undefined;
  readonly sink: AnswerSink | undefined;
  /** The session's content detectors for env values (masking applies even when nothing is recorded). */
  readonly detectors: ValueMasker | undefined;
  readonly metrics: ProtocolMetrics;
  readonly listener: string;
  /** Settles once the request body went upstream (a hijack waits for it before relaying raw bytes). */
  readonly bodySent: Promise<unknown>;
  /** Called before the first byte of the answer goes to the client: from then on, failures can only close. */
  responseStarting(): void;
  /** The answer's head arrived; `hijacked`: the connection is a raw stream from now on. */
  streaming(hijacked: boolean): void;
}

function isStreamContentType(headers: readonly Header[]): boolean {
  const ct = (headerValue(headers, 'content-type') ?? '').toLowerCase();
  return (
    ct.startsWith('application/vnd.docker.raw-stream') ||
    ct.startsWith('application/vnd.docker.multiplexed-stream')
  );
}

/** What an answer head implies for relaying it. */
interface AnswerHeadFacts {
  readonly framing: BodyFraming;
  /** The connection to dockerd can carry another request after this answer. */
  readonly reusable: boolean;
  readonly streamContentType: boolean;
  /** The body is text (JSON, plain text): recorded as such. */
  readonly textual: boolean;
}

/**
 * Worked out once per head object: the reader hands back the same object for repeated head bytes (dockerd answers
 * a polling client with the same head for a second). An answer to HEAD is framed differently, so not kept.
 */
const answerHeadFacts = new WeakMap<ResponseHead, AnswerHeadFacts>();

function factsOf(requestMethod: string, head: ResponseHead): AnswerHeadFacts {
  const known = requestMethod === 'HEAD' ? undefined : answerHeadFacts.get(head);
  if (known) return known;
  const framing = responseFraming(requestMethod, head);
  const facts: AnswerHeadFacts = {
    framing,
    reusable: framing.kind !== 'close' && !wantsConnectionClose(head.headers),
    streamContentType: isStreamContentType(head.headers),
    textual: isTextual(head.headers),
  };
  if (requestMethod !== 'HEAD') answerHeadFacts.set(head, facts);
  return facts;
}

function answerHead(read: HeadRead<ResponseHead>): { head: ResponseHead; raw: Buffer } {
  if (read.kind !== 'head')
    throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream closed before answering');
  return read;
}

/** The head of dockerd's answer, read for `relayResponse`. */
export function readAnswerHead(x: ResponseExchange): Promise<HeadRead<ResponseHead>> {
  return x.upstreamMessages.readHead(parseResponseHead);
}

/**
 * Relay the answer whose head `read` is; true when both connections can carry another request. Synchronous when
 * the whole answer went out at once (a small answer that came with its head), a promise when it has to wait.
 */
export function relayResponse(x: ResponseExchange, read: HeadRead<ResponseHead>): boolean | Promise<boolean> {
  const { head, raw } = answerHead(read);
  // Interim 1xx answers other than 101 are passed on; the final answer follows (RFC 9110 §15.2).
  if (head.status >= 100 && head.status < 200 && head.status !== 101) return relayInterim(x, raw);
  const facts = factsOf(x.req.method, head);
  const hijack =
    head.status === 101 || (x.route?.response === 'hijack' && head.status === 200 && facts.streamContentType);
  x.streaming(hijack);
  if (hijack) return relayHijack(x, head, raw);
  const { framing, reusable } = facts;
  const masking =
    (x.route?.response === 'mask-container' || x.route?.response === 'mask-image') &&
    head.status === 200 &&
    framing.kind !== 'none';
  if (masking) return relayMasked(x, head, framing).then(() => reusable);
  const relayed = relayStreamed(x, head, facts, raw);
  if (relayed) return relayed.then(() => reusable && !x.client.destroyed);
  return reusable && !x.client.destroyed;
}

async function relayInterim(x: ResponseExchange, raw: Buffer): Promise<boolean> {
  x.responseStarting();
  await writeAll(x.client, raw);
  return relayResponse(x, await readAnswerHead(x));
}

/** Attach and exec start: the connection is a raw stream both ways from here, never reused. */
async function relayHijack(x: ResponseExchange, head: ResponseHead, raw: Buffer): Promise<false> {
  await x.bodySent;
  x.responseStarting();
  await writeAll(x.client, raw);
  if (x.decided && x.sink) recordAnswer(x.sink, x.decided, { status: head.status });
  const { bytesIn, bytesOut } = await relayHijacked(
    {
      client: x.client,
      clientReader: x.clientReader,
      upstream: x.upstream,
      upstreamReader: x.upstreamMessages.socket,
    },
    { recorder: x.sink?.recorder, metrics: x.metrics, listener: x.listener },
  );
  const sink = x.sink;
  try {
    sink?.recorder.append('result', { event: 'stream.end', bytesIn, bytesOut });
  } catch (err) {
    sink?.log.warn('docker record failed', { err: String(err) });
  }
  return false;
}

/** An inspect answer: read whole, `Env` values masked, sent with its new length. */
async function relayMasked(x: ResponseExchange, head: ResponseHead, framing: BodyFraming): Promise<void> {
  const body = await x.upstreamMessages.readBody(
    framing,
    MASKED_BODY_CAP,
    'agentgate: inspect response too large to mask',
    'agentgate: connection closed inside a message body',
  );
  const masked = maskInspectEnv(body, x.detectors);
  if (masked.masked > 0) x.metrics.maskedValues('docker-env', 'env', masked.masked);
  const headers = head.headers.filter(
    ([n]) => !['content-length', 'transfer-encoding'].includes(n.toLowerCase()),
  );
  x.responseStarting();
  await writeAll(x.client, [
    encodeResponseHead(head.status, head.reason, [
      ...headers,
      ['Content-Length', String(masked.body.length)],
    ]),
    masked.body,
  ]);
  x.metrics.bytes(x.listener, 'docker', 'upstream_to_client', masked.body.length);
  if (x.decided && x.sink)
    recordAnswer(x.sink, x.decided, {
      status: head.status,
      body: masked.body,
      textual: true,
      maskedValues: masked.masked,
    });
}

/**
 * Any other answer: passed through as it arrives, framing untouched, the handler chain watching. Returns nothing
 * when it is done already (the whole answer came with its head).
 */
function relayStreamed(
  x: ResponseExchange,
  head: ResponseHead,
  facts: AnswerHeadFacts,
  raw: Buffer,
): Promise<void> | undefined {
  const handling: HandlerContext = {
    route: x.route,
    status: head.status,
    textual: facts.textual,
    decided: x.decided,
    sink: x.sink,
    metrics: x.metrics,
    listener: x.listener,
  };
  const { framing } = facts;
  const body = framing.kind === 'length' ? wholeBody(x.upstreamMessages.socket, framing.length) : undefined;
  if (body === undefined) return relayPieces(x, handling, framing, raw);
  // The common small answer: head and body out in one write, then counted and recorded, with no chain or pump.
  x.responseStarting();
  const written = writeJoined(x.client, raw, body);
  if (written === undefined) {
    completeWholeBody(handling, body);
    return undefined;
  }
  return written.then(() => completeWholeBody(handling, body));
}

/**
 * A body of `length` bytes when all of it is in the reader's first queued chunk (taken, what follows it given
 * back), else undefined and the reader untouched.
 */
function wholeBody(reader: SocketReader, length: number): Buffer | undefined {
  const chunk = reader.take();
  if (chunk === undefined) return undefined;
  if (chunk.length < length) {
    reader.unshift(chunk);
    return undefined;
  }
  if (chunk.length > length) reader.unshift(chunk.subarray(length));
  return chunk.length === length ? chunk : chunk.subarray(0, length);
}

/** A head and the first bytes after it to the client in one write. */
function writeJoined(client: Duplex, first: Buffer, rest: Buffer): Promise<void> | undefined {
  if (adjacent(first, rest))
    return writeAll(
      client,
      Buffer.from(first.buffer, first.byteOffset, first.length + rest.length),
      RELAY_HIGH_WATER,
    );
  client.cork();
  const written = writeAll(client, [first, rest], RELAY_HIGH_WATER);
  client.uncork();
  return written;
}

/** An answer whose body comes in pieces (or is framed otherwise): pumped through the handler chain. */
async function relayPieces(
  x: ResponseExchange,
  handling: HandlerContext,
  framing: BodyFraming,
  raw: Buffer,
): Promise<void> {
  const { client } = x;
  // Head and the body bytes already here go out in one write; a head whose body comes later is sent at once.
  let pendingHead: Buffer | undefined = x.upstreamMessages.buffered > 0 ? raw : undefined;
  x.responseStarting();
  if (pendingHead === undefined) {
    const headWrite = writeAll(client, raw);
    if (headWrite) await headWrite;
  }
  const chain = new HandlerChain(bodyHandlers(handling));
  try {
    const pumped = x.upstreamMessages.pumpBody(
      framing,
      (data, rawPart) => {
        for (const d of data) chain.onData(d);
        if (rawPart.length === 0) return undefined;
        const first = pendingHead;
        if (first === undefined) return writeAll(client, rawPart, RELAY_HIGH_WATER);
        pendingHead = undefined;
        return writeJoined(client, first, rawPart);
      },
      'agentgate: connection closed inside a message body',
    );
    if (pumped) await pumped;
  } finally {
    // The body failed before any of it came: the head still goes out (the connection closes after it).
    if (pendingHead) client.write(pendingHead);
  }
  chain.onComplete();
}

/** Whether `b` follows `a` in the same memory (a head and the body bytes read with it): one view covers both. */
function adjacent(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}
