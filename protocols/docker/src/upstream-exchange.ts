/**
 * One connection's link to dockerd: a unix socket kept alive across requests, each allowed request sent on it (its
 * body as read and judged, or streamed through for bulk uploads) and its answer relayed back (response-relay.ts).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AgentgateError,
  type DockerListenerConfig,
  type Logger,
  type ProtocolMetrics,
  SlabReads,
  type ValueMasker,
} from '@agentgate/core';
import { type AnswerSink, type DecidedRequest, recordAnswer } from './answer-record.js';
import {
  type BodyFraming,
  type Header,
  LAST_CHUNK,
  type RequestHead,
  encodeChunk,
  encodeRequestHead,
  headerValue,
} from './http-codec.js';
import { HttpMessageReader } from './http-message-reader.js';
import { errorStatus, replyError } from './replies.js';
import { type ResponseExchange, readAnswerHead, relayResponse } from './response-relay.js';
import type { CanonicalRequest, Route } from './routes.js';
import { RELAY_HIGH_WATER, SocketReader, writeAll } from './socket-reader.js';

/** Request headers never forwarded to dockerd: our credentials, and framing we re-derive. */
const DROPPED_REQUEST_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'content-length',
  'transfer-encoding',
  'expect',
  'keep-alive',
  'te',
  'trailer',
]);

function forwardedHeaders(head: RequestHead): Header[] {
  return head.headers.filter(([n]) => !DROPPED_REQUEST_HEADERS.has(n.toLowerCase()));
}

export type BodySource =
  | { readonly kind: 'buffered'; readonly body: Buffer }
  | { readonly kind: 'stream'; readonly framing: BodyFraming };

export interface ForwardRequest {
  readonly head: RequestHead;
  readonly req: CanonicalRequest;
  readonly route: Route | undefined;
  readonly source: BodySource;
  /** Undefined for `/_ping`. */
  readonly decided: DecidedRequest | undefined;
  readonly sink: AnswerSink | undefined;
  readonly detectors: ValueMasker | undefined;
}

export interface ExchangeContext {
  readonly client: Duplex;
  readonly clientMessages: HttpMessageReader;
  readonly listener: DockerListenerConfig;
  readonly metrics: ProtocolMetrics;
  readonly log: Logger;
  /** The request's answer is on its way (`streaming`), or the connection became a raw stream (`hijacked`). */
  phase(kind: 'streaming-response' | 'hijacked'): void;
}

/** `bodySent` of a request that was sent in full at once. */
const SENT: Promise<unknown> = Promise.resolve(undefined);

interface Upstream {
  readonly socket: net.Socket;
  readonly messages: HttpMessageReader;
}

export class UpstreamExchange {
  private upstream: Upstream | undefined;
  /** The last buffered request's head as sent to dockerd: a repeated head (same object) is not encoded again. */
  private lastSent: { head: RequestHead; bodyLength: number; bytes: Buffer } | undefined;
  /** The answer of the request in flight began to reach the client: a failure can only close from then on. */
  private responseStarted = false;
  private readonly responseStarting = (): void => {
    this.responseStarted = true;
  };
  private readonly streaming = (hijacked: boolean): void => {
    if (hijacked) this.upstream = undefined;
    this.ctx.phase(hijacked ? 'hijacked' : 'streaming-response');
  };

  constructor(private readonly ctx: ExchangeContext) {}

  /** The request in flight once its body has gone to dockerd whole (a client FIN after it is passed on). */
  private sentWhole: Upstream | undefined;

  /** Drop the dockerd connection (the client's connection ends, or a stream is cut). */
  close(): void {
    this.upstream?.socket.destroy();
    this.upstream = undefined;
  }

  /**
   * The client half-closed while its request is forwarded or answered. dockerd (Go's server) reads a FIN that
   * follows a request as the client going away and cancels the request (`wait`, `logs -f` end): it gets the FIN
   * too, after all the request's bytes, and its answer is still relayed. A FIN behind pipelined requests is not
   * theirs to pass yet: it goes with the last of them.
   */
  clientEnded(): void {
    const up = this.sentWhole;
    if (up !== undefined && this.ctx.clientMessages.socket.atEnd) up.socket.end();
  }

  /** The request's body is all with dockerd: pass the client's FIN on now if it came already. */
  private bodyDone(up: Upstream): void {
    this.sentWhole = up;
    this.clientEnded();
  }

  /** Send the request to dockerd and relay its answer; resolves true when both connections can carry another. */
  async forward(request: ForwardRequest): Promise<boolean> {
    const { head, source, decided, sink } = request;
    const { client, metrics, listener } = this.ctx;
    const headRequest = head.method === 'HEAD';
    let up: Upstream;
    try {
      up = this.reusable() ?? (await this.connect());
    } catch (err) {
      metrics.upstreamError(listener.name, 'docker', 'connect');
      if (decided && sink)
        recordAnswer(sink, decided, {
          status: 502,
          body: Buffer.from('upstream unavailable'),
          textual: true,
        });
      await replyError(client, this.ctx.log, 502, err, { close: source.kind === 'stream', headRequest });
      return source.kind !== 'stream';
    }
    this.responseStarted = false;
    this.sentWhole = undefined;
    // A buffered request usually goes out in one write taken at once: then nothing is left to wait for.
    let bodySent: Promise<unknown>;
    try {
      const sending = this.send(up, head, source);
      if (source.kind === 'buffered') this.bodyDone(up);
      bodySent =
        sending === undefined
          ? SENT
          : sending.then(
              () => undefined,
              (err: unknown) => err,
            );
    } catch (err) {
      bodySent = Promise.resolve(err);
    }
    let reusable: boolean;
    try {
      const x: ResponseExchange = {
        client,
        clientReader: this.ctx.clientMessages.socket,
        upstream: up.socket,
        upstreamMessages: up.messages,
        req: request.req,
        route: request.route,
        decided,
        sink,
        detectors: request.detectors,
        metrics,
        listener: listener.name,
        bodySent,
        responseStarting: this.responseStarting,
        streaming: this.streaming,
      };
      // The answer's head is awaited here; a whole small answer is then relayed without another promise.
      const relayed = relayResponse(x, await readAnswerHead(x));
      reusable = typeof relayed === 'boolean' ? relayed : await relayed;
    } catch (err) {
      this.ctx.log.debug('docker relay failed', { err: err instanceof Error ? err.message : String(err) });
      metrics.upstreamError(listener.name, 'docker', 'relay');
      up.socket.destroy();
      this.upstream = undefined;
      // Nothing of the answer reached the client yet: tell it why instead of just closing.
      if (!this.responseStarted) {
        const failure =
          err instanceof AgentgateError
            ? err
            : new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream failed');
        if (decided && sink) recordAnswer(sink, decided, { status: errorStatus(failure) });
        await replyError(client, this.ctx.log, errorStatus(failure), failure, { close: true, headRequest });
      }
      return false;
    }
    if (bodySent !== SENT && (await bodySent) !== undefined) {
      up.socket.destroy();
      this.upstream = undefined;
      return false;
    }
    return reusable;
  }

  /** The dockerd socket when it can carry another request (kept alive across requests). */
  private reusable(): Upstream | undefined {
    const existing = this.upstream;
    if (existing && !existing.socket.destroyed && !existing.messages.socket.atEnd && existing.socket.writable)
      return existing;
    return undefined;
  }

  private async connect(): Promise<Upstream> {
    this.upstream?.socket.destroy();
    // dockerd's answers are read into slabs (packages/core slab-reads.ts): no Readable push and no fresh buffer per read.
    const reads = new SlabReads();
    const socket = net.connect({
      path: this.ctx.listener.upstream.socket,
      allowHalfOpen: true,
      onread: reads.options,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err) =>
        reject(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream unavailable', { cause: err })),
      );
    });
    socket.on('error', (err) => this.ctx.log.debug('docker upstream socket error', { err: err.message }));
    const up = { socket, messages: new HttpMessageReader(new SocketReader(socket, reads)) };
    this.upstream = up;
    return up;
  }

  /** Send the request; nothing to wait for when a buffered one went out in one write the socket took. */
  private send(up: Upstream, head: RequestHead, source: BodySource): Promise<void> | undefined {
    if (source.kind === 'buffered') {
      const { body } = source;
      // One write: a second write racing dockerd's close (Connection: close) would fail with EPIPE and lose the
      // answer still unread in the socket.
      const headBytes = this.bufferedHead(head, body.length);
      return writeAll(up.socket, body.length === 0 ? headBytes : Buffer.concat([headBytes, body]));
    }
    return this.sendStreamed(up, head, source.framing);
  }

  private async sendStreamed(up: Upstream, head: RequestHead, framing: BodyFraming): Promise<void> {
    const headers = forwardedHeaders(head);
    // The client may be waiting for leave to send a large body (RFC 9110 §10.1.1): it has been decided now.
    if (headerValue(head.headers, 'expect')?.toLowerCase() === '100-continue')
      await writeAll(this.ctx.client, Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
    const chunked = framing.kind === 'chunked';
    const h = chunked
      ? [...headers, ['Transfer-Encoding', 'chunked'] as const]
      : [...headers, ['Content-Length', String(framing.kind === 'length' ? framing.length : 0)] as const];
    await writeAll(up.socket, encodeRequestHead(head.method, head.target, h));
    let sent = 0;
    try {
      await this.ctx.clientMessages.pumpBody(
        framing,
        (data) => {
          const writes: Promise<void>[] = [];
          for (const d of data) {
            sent += d.length;
            const written = writeAll(up.socket, chunked ? encodeChunk(d) : d, RELAY_HIGH_WATER);
            if (written) writes.push(written);
          }
          return writes.length === 0 ? undefined : Promise.all(writes).then(() => undefined);
        },
        'agentgate: connection closed inside a request body',
      );
    } catch (err) {
      // The client's body ended early (or broke its framing): dockerd gets what came and then the end, as from a
      // direct client, and answers it (an upload's `unexpected EOF`) instead of waiting for bytes that never come.
      if (!up.socket.destroyed) up.socket.end();
      throw err;
    } finally {
      this.ctx.metrics.bytes(this.ctx.listener.name, 'docker', 'client_to_upstream', sent);
    }
    if (chunked) await writeAll(up.socket, LAST_CHUNK);
    this.bodyDone(up);
  }

  /** The head sent before a buffered body of `bodyLength` bytes. */
  private bufferedHead(head: RequestHead, bodyLength: number): Buffer {
    const last = this.lastSent;
    if (last?.head === head && last.bodyLength === bodyLength) return last.bytes;
    const headers = forwardedHeaders(head);
    // Keep `Content-Length: 0` on empty POSTs: dockerd reads a missing length on /start differently.
    const needsLength = bodyLength > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(head.method);
    const h = needsLength ? [...headers, ['Content-Length', String(bodyLength)] as const] : headers;
    const bytes = encodeRequestHead(head.method, head.target, h);
    this.lastSent = { head, bodyLength, bytes };
    return bytes;
  }
}
