/**
 * One client connection of the Docker listener. Requests are served strictly one at a time in arrival order
 * (pipelined requests wait in the socket, unread), each through an explicit state:
 * reading-head → reading-body → deciding → forwarding → streaming-response → (next request | hijacked | closed).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AgentgateError,
  CLIENT_LEFT,
  causeOf,
  credentialLapse,
  type ClientInfo,
  type DockerListenerConfig,
  type EndCause,
  type EngineDeps,
  type GatedSession,
  type HttpResultBody,
  type Identity,
  type SessionMasker,
  type SessionRecorder,
  type Verdict,
} from '@agentgate/core';
import type { UpstreamLookup } from './body-facts.js';
import { buildDockerCommand } from './docker-command.js';
import { ENV_REPLACEMENT, maskInspectEnv } from './env-masking.js';
import {
  BodyDecoder,
  type BodyFraming,
  type Header,
  LAST_CHUNK,
  type RequestHead,
  type ResponseHead,
  encodeChunk,
  encodeRequestHead,
  encodeResponseHead,
  headerValue,
  headerValues,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  wantsConnectionClose,
} from './http-codec.js';
import { type CanonicalRequest, type Route, canonicalizeTarget, classifyRoute } from './routes.js';
import { RELAY_HIGH_WATER, SocketReader, writeAll } from './socket-reader.js';
import { type DemuxedStream, StreamDemuxer } from './stream-demux.js';

export type ConnectionState =
  | { readonly kind: 'reading-head' }
  | { readonly kind: 'reading-body'; readonly request: string }
  | { readonly kind: 'deciding'; readonly request: string }
  | { readonly kind: 'forwarding'; readonly request: string }
  | { readonly kind: 'streaming-response'; readonly request: string }
  | { readonly kind: 'hijacked'; readonly request: string }
  | { readonly kind: 'closed' };

/** Recorded response bodies are capped; the byte count is always recorded. */
export const RECORDED_BODY_CAP = 64 * 1024;
/** Inspect responses are buffered to mask them; anything larger is refused rather than passed unmasked. */
const MASKED_BODY_CAP = 32 * 1024 * 1024;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** Bulk binary bodies (tar archives): counted and capped in the result, not recorded as io. */
const BULK_ACTIONS = new Set(['container.archive', 'container.export', 'image.save']);

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

function verdictStatus(v: Extract<Verdict, { allowed: false }>): number {
  return v.code === 'RECORDING_FAILED' ? 503 : v.code === 'INTERNAL' ? 500 : 403;
}

function errorStatus(err: unknown): number {
  if (err instanceof AgentgateError) {
    switch (err.code) {
      case 'AUTH_FAILED':
        return 401;
      case 'NOT_ALLOWED':
      case 'FORBIDDEN':
      case 'DENIED':
        return 403;
      case 'LIMIT_EXCEEDED':
        return 413;
      case 'UPSTREAM_UNAVAILABLE':
        return 502;
      case 'RECORDING_FAILED':
        return 503;
      case 'BAD_REQUEST':
      case 'PROTOCOL_VIOLATION':
        return 400;
      default:
        return 500;
    }
  }
  return 500;
}

function isStreamContentType(headers: readonly Header[]): boolean {
  const ct = (headerValue(headers, 'content-type') ?? '').toLowerCase();
  return (
    ct.startsWith('application/vnd.docker.raw-stream') ||
    ct.startsWith('application/vnd.docker.multiplexed-stream')
  );
}

function isTextual(headers: readonly Header[]): boolean {
  const ct = (headerValue(headers, 'content-type') ?? '').toLowerCase();
  return ct === '' || ct.includes('json') || ct.startsWith('text/');
}

export interface SessionContext {
  readonly listener: DockerListenerConfig;
  readonly deps: EngineDeps;
  readonly lookup: UpstreamLookup;
  readonly info: ClientInfo;
  readonly signal: AbortSignal;
}

/** One answer as `recordResult` records it. */
interface RecordedAnswer {
  readonly commandSeq: number | undefined;
  readonly req: CanonicalRequest;
  readonly action: string;
  readonly status: number;
  /** The body the client got (capped, masked for the record); absent when none is recorded. */
  readonly body?: Buffer;
  /** The body is text (JSON, plain text): recorded as such, else only counted. */
  readonly textual?: boolean;
  readonly maskedValues?: number;
  /** The body's full size when more went by than `body` holds. */
  readonly bytes?: number;
}

interface Upstream {
  readonly socket: net.Socket;
  readonly reader: SocketReader;
}

export class DockerConnection {
  state: ConnectionState = { kind: 'reading-head' };
  private readonly reader: SocketReader;
  private upstream: Upstream | undefined;
  /** The recorded, gated session of the identity the requests authenticate as (session-lifecycle in core). */
  private session: GatedSession | undefined;
  private masker: SessionMasker | undefined;
  /** The identity `masker` was built for. */
  private maskedFor: Identity | undefined;
  /** The masking generation `masker` was built for (MaskingService.generation). */
  private maskerGeneration = 0;
  /** The last verified `Authorization` header of this connection, its token and identity. */
  private cachedToken: { header: string; token: string; identity: Identity } | undefined;
  private allowedIdentity: Identity | undefined;
  private socketIdentity: Identity | undefined;
  private clientClosed = false;
  /** Aborts when the client goes away: a held decision is withdrawn. */
  private readonly clientGone = new AbortController();
  /** Whether any byte of the current answer went to the client (after that, failures can only close). */
  private responseStarted = false;

  constructor(
    private readonly client: Duplex,
    private readonly ctx: SessionContext,
  ) {
    this.reader = new SocketReader(client);
    client.on('close', () => {
      this.clientClosed = true;
      this.clientGone.abort(CLIENT_LEFT);
    });
    // A client that goes away while its request is held for approval withdraws it. With allowHalfOpen a FIN only
    // shows as 'end', so while deciding that counts too (docker clients never half-close before the answer).
    client.on('end', () => {
      if (this.state.kind === 'deciding') this.clientGone.abort(CLIENT_LEFT);
    });
    client.on('error', () => {});
  }

  private get log() {
    return this.ctx.deps.log;
  }

  async run(): Promise<void> {
    const onShutdown = (): void => {
      // Idle connections close at once; a request in flight finishes first (checked after each response).
      if (this.state.kind === 'reading-head' && this.reader.buffered === 0) {
        // With allowHalfOpen our FIN alone would not end the wait for the next request: close once flushed.
        void endAndFlush(this.client).then(() => this.client.destroy());
      }
      if (this.state.kind === 'hijacked') this.client.destroy();
    };
    this.ctx.signal.addEventListener('abort', onShutdown, { once: true });
    try {
      for (;;) {
        if (this.ctx.signal.aborted) break;
        this.state = { kind: 'reading-head' };
        let head: RequestHead | null;
        try {
          head = await this.readRequestHead();
        } catch (err) {
          await this.respondError(
            err instanceof AgentgateError && err.code === 'LIMIT_EXCEEDED' ? 431 : errorStatus(err),
            err,
            true,
          );
          break;
        }
        if (!head) break;
        const keepAlive = await this.serve(head);
        // A session told to end (its credential lapsed, an administrator) closes between requests; the connection
        // may go on, and its next request authenticates and opens a session of its own.
        if (this.session?.ended.aborted === true) this.endSession();
        if (!keepAlive) break;
      }
    } catch (err) {
      this.log.warn('docker connection failed', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.ctx.signal.removeEventListener('abort', onShutdown);
      this.state = { kind: 'closed' };
      this.upstream?.socket.destroy();
      this.upstream = undefined;
      await endAndFlush(this.client);
      this.endSession();
    }
  }

  private endSession(cause: EndCause = CLIENT_LEFT): void {
    this.session?.end(cause);
    this.session = undefined;
  }

  private get recorder(): SessionRecorder | undefined {
    return this.session?.recorder;
  }

  private async readRequestHead(): Promise<RequestHead | null> {
    let buf: Buffer = Buffer.alloc(0);
    for (;;) {
      const chunk = this.reader.take() ?? (await this.reader.read());
      if (chunk === null) {
        if (buf.length > 0)
          throw new AgentgateError(
            'PROTOCOL_VIOLATION',
            'agentgate: connection closed inside a request head',
          );
        return null;
      }
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const parsed = parseRequestHead(buf);
      if (parsed) {
        this.reader.unshift(buf.subarray(parsed.consumed));
        return parsed.head;
      }
    }
  }

  /** Serve one request; resolves true when the connection may carry another. */
  private async serve(head: RequestHead): Promise<boolean> {
    const label = `${head.method} ${head.target}`;
    let framing: BodyFraming;
    let req: CanonicalRequest;
    try {
      framing = requestFraming(head);
      req = canonicalizeTarget(head.method, head.target);
    } catch (err) {
      await this.respondError(errorStatus(err), err, true);
      return false;
    }
    const wantsClose = head.version === '1.0' || wantsConnectionClose(head.headers);

    // `/_ping` is answered straight from dockerd: never authenticated, decided or held (the CLI gives it 2 s).
    if (req.path === '/_ping' && (req.method === 'GET' || req.method === 'HEAD')) {
      const ok = await this.forward(
        head,
        req,
        undefined,
        { kind: 'buffered', body: Buffer.alloc(0) },
        undefined,
        label,
      );
      return ok && !wantsClose;
    }

    try {
      const verifying = this.authenticate(head);
      if (verifying) await verifying;
    } catch (err) {
      await this.respondError(errorStatus(err), err, true);
      return false;
    }

    const route = classifyRoute(req);
    const contentType = (headerValue(head.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (framing.kind !== 'none' && contentType === 'application/x-www-form-urlencoded') {
      // Go's ParseForm would read such a body as form values ahead of the query: refuse rather than guess.
      await this.respondError(
        400,
        new AgentgateError('BAD_REQUEST', 'agentgate: form-encoded request bodies are not accepted'),
        true,
      );
      return false;
    }

    // Bulk uploads (build context, image load, archive PUT) stream through; every other body is read and judged.
    const streamBody = route?.response === 'stream' && framing.kind !== 'none';
    let body: Buffer | undefined;
    if (!streamBody && framing.kind !== 'none') {
      this.state = { kind: 'reading-body', request: label };
      try {
        if (headerValue(head.headers, 'expect')?.toLowerCase() === '100-continue') {
          await writeAll(this.client, Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
        }
        body = await this.readBody(framing, this.ctx.listener.maxBodyBytes);
      } catch (err) {
        await this.respondError(errorStatus(err), err, true);
        return false;
      }
    }

    this.state = { kind: 'deciding', request: label };
    const session = this.session!;
    const command = await buildDockerCommand({
      request: req,
      route,
      body,
      listener: this.ctx.listener,
      lookup: this.ctx.lookup,
    });
    const verdict = await session.decide(command, this.clientGone.signal);
    if (!verdict.allowed) {
      const status = verdictStatus(verdict);
      this.recordResult({
        commandSeq: verdict.commandSeq,
        req,
        action: command.action,
        status,
        body: Buffer.from(JSON.stringify({ message: verdict.message })),
        textual: true,
      });
      // An unread streamed body cannot be skipped safely: close after answering.
      const close = wantsClose || (streamBody && framing.kind !== 'none') || this.clientClosed;
      await this.respondJson(status, verdict.message, close);
      return !close;
    }

    const started = process.hrtime.bigint();
    const source: BodySource = streamBody
      ? { kind: 'stream', framing }
      : { kind: 'buffered', body: body ?? Buffer.alloc(0) };
    const ok = await this.forward(
      head,
      req,
      route,
      source,
      { commandSeq: verdict.commandSeq, action: command.action },
      label,
    );
    this.ctx.deps.metrics.commandCompleted(
      this.ctx.listener.name,
      'docker',
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    return ok && !wantsClose && !this.ctx.signal.aborted;
  }

  /**
   * Authenticate one request. Synchronous (returns undefined) when the connection already verified the same
   * `Authorization` header and it has not expired, which is every request after the first on a keep-alive
   * connection; a new or changed token is verified asynchronously.
   */
  private authenticate(head: RequestHead): Promise<void> | undefined {
    const { listener, info } = this.ctx;
    if (listener.identity !== undefined && info.address === 'unix') {
      this.socketIdentity ??= {
        name: listener.identity,
        groups: listener.identityGroups ?? [],
        source: 'socket',
      };
      this.admit(this.socketIdentity);
      return undefined;
    }
    const auth = headerValues(head.headers, 'authorization');
    const cached = this.cachedToken;
    if (
      cached &&
      auth.length === 1 &&
      auth[0] === cached.header &&
      credentialLapse(cached.identity, Date.now()) === undefined
    ) {
      this.admit(cached.identity);
      return undefined;
    }
    const m = auth.length === 1 ? /^Bearer +(\S+)$/i.exec(auth[0]!) : null;
    if (!m) throw new AgentgateError('AUTH_FAILED', 'agentgate: a Bearer token is required');
    return this.verifyToken(auth[0]!, m[1]!).then((identity) => this.admit(identity));
  }

  private async verifyToken(header: string, token: string): Promise<Identity> {
    const cached = this.cachedToken;
    if (cached && cached.token === token && credentialLapse(cached.identity, Date.now()) === undefined) {
      this.cachedToken = { header, token, identity: cached.identity };
      return cached.identity;
    }
    let identity: Identity;
    try {
      identity = await this.ctx.deps.identity.verifyToken(token);
    } catch (err) {
      const why =
        err instanceof AgentgateError && err.expose ? `: ${err.message.replace(/^agentgate: /, '')}` : '';
      throw new AgentgateError('AUTH_FAILED', `agentgate: authentication failed${why}`, { cause: err });
    }
    this.cachedToken = { header, token, identity };
    return identity;
  }

  /** Check the identity against the listener's `allow` and open (or switch) the recorded session. */
  private admit(identity: Identity): void {
    const { listener, deps, info } = this.ctx;
    // The allow list is fixed per listener: an identity object already admitted needs no second look.
    if (this.allowedIdentity !== identity) {
      if (!deps.identity.isAllowed(identity, listener.allow)) {
        throw new AgentgateError(
          'NOT_ALLOWED',
          `agentgate: ${identity.name} may not use listener ${listener.name}`,
        );
      }
      this.allowedIdentity = identity;
    }
    const current = this.session;
    if (current && (current.ended.aborted || current.info.identity.name !== identity.name))
      this.endSession({ kind: 'client-left', detail: 'the client authenticated as another identity' });
    if (!this.session) {
      this.session = deps.sessions.open({
        listener: listener.name,
        protocol: 'docker',
        identity,
        client: info,
        signal: this.ctx.signal,
        log: this.log,
      });
      this.session.ended.addEventListener('abort', this.onSessionEnded, { once: true });
    } else {
      // Same name, new token (refreshed, or other groups): decide with what this request presented, and the
      // session lives as long as that credential.
      this.session.continueAs(identity);
    }
    // Asked again when the identity or the masking rules (a reload) changed; each request is masked on its own.
    const generation = deps.masking.generation ?? 0;
    if (!this.masker || this.maskedFor !== identity || this.maskerGeneration !== generation) {
      this.masker = deps.masking.forSession(identity, listener.name);
      this.maskerGeneration = generation;
    }
    this.maskedFor = identity;
  }

  /**
   * The session must end (its credential expired or was revoked, the store refuses its bytes, an administrator):
   * a long-lived answer (attach, exec, `logs -f`, `events`) is cut now, anything else finishes its request and the
   * session closes before the next one. Shutdown has its own course (run()).
   */
  private readonly onSessionEnded = (): void => {
    const cause = causeOf(this.session?.ended.reason);
    if (cause.kind === 'shutdown' || this.streamingRequest === undefined) return;
    this.log.info('docker stream ended', { request: this.streamingRequest, cause: cause.kind });
    this.cutStream();
  };

  /** The request whose answer is a stream in progress (attach, exec, `logs -f`, `events`), if any. */
  private get streamingRequest(): string | undefined {
    const state = this.state;
    return state.kind === 'hijacked' || state.kind === 'streaming-response' ? state.request : undefined;
  }

  /** End a streaming answer: both sockets go, and the connection's loop ends the session. */
  private cutStream(): void {
    this.client.destroy();
    this.upstream?.socket.destroy();
  }

  private async readBody(framing: BodyFraming, limit: number): Promise<Buffer> {
    if (framing.kind === 'length' && framing.length > limit) {
      throw new AgentgateError('LIMIT_EXCEEDED', `agentgate: request body larger than ${limit} bytes`);
    }
    const decoder = new BodyDecoder(framing);
    const parts: Buffer[] = [];
    let size = 0;
    while (!decoder.done) {
      const chunk = await this.reader.read();
      if (chunk === null)
        throw new AgentgateError('PROTOCOL_VIOLATION', 'agentgate: connection closed inside a request body');
      const step = decoder.push(chunk);
      for (const d of step.data) {
        size += d.length;
        if (size > limit)
          throw new AgentgateError('LIMIT_EXCEEDED', `agentgate: request body larger than ${limit} bytes`);
        parts.push(d);
      }
      this.reader.unshift(chunk.subarray(step.consumed));
    }
    return Buffer.concat(parts);
  }

  /** The connection's dockerd socket when it can carry another request (kept alive across requests). */
  private reusableUpstream(): Upstream | undefined {
    const existing = this.upstream;
    if (existing && !existing.socket.destroyed && !existing.reader.atEnd && existing.socket.writable)
      return existing;
    return undefined;
  }

  private async connectUpstream(): Promise<Upstream> {
    this.upstream?.socket.destroy();
    const socket = net.connect({ path: this.ctx.listener.upstream.socket, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err) =>
        reject(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream unavailable', { cause: err })),
      );
    });
    socket.on('error', (err) => this.log.debug('docker upstream socket error', { err: err.message }));
    const up = { socket, reader: new SocketReader(socket) };
    this.upstream = up;
    return up;
  }

  /**
   * Send the request to dockerd and relay its answer. Resolves true when both connections can carry another
   * request. `decided` is absent for `/_ping`.
   */
  private async forward(
    head: RequestHead,
    req: CanonicalRequest,
    route: Route | undefined,
    source: BodySource,
    decided: { commandSeq: number; action: string } | undefined,
    label: string,
  ): Promise<boolean> {
    this.state = { kind: 'forwarding', request: label };
    this.responseStarted = false;
    let up: Upstream;
    try {
      up = this.reusableUpstream() ?? (await this.connectUpstream());
    } catch (err) {
      this.ctx.deps.metrics.upstreamError(this.ctx.listener.name, 'docker', 'connect');
      if (decided)
        this.recordResult({
          commandSeq: decided.commandSeq,
          req,
          action: decided.action,
          status: 502,
          body: Buffer.from('upstream unavailable'),
          textual: true,
        });
      await this.respondError(502, err, source.kind === 'stream');
      return source.kind !== 'stream';
    }
    const headers: Header[] = head.headers.filter(([n]) => !DROPPED_REQUEST_HEADERS.has(n.toLowerCase()));
    const sendBody = async (): Promise<void> => {
      if (source.kind === 'buffered') {
        // Keep `Content-Length: 0` on empty POSTs: dockerd reads a missing length on /start differently.
        const needsLength =
          source.body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(head.method);
        const h = needsLength
          ? [...headers, ['Content-Length', String(source.body.length)] as const]
          : headers;
        // One write: a second write racing dockerd's close (Connection: close) would fail with EPIPE and lose the
        // answer still unread in the socket.
        const headBytes = encodeRequestHead(head.method, head.target, h);
        const written = writeAll(
          up.socket,
          source.body.length === 0 ? headBytes : Buffer.concat([headBytes, source.body]),
        );
        if (written) await written;
        return;
      }
      const framing = source.framing;
      // The client may be waiting for leave to send a large body (RFC 9110 §10.1.1): it has been decided now.
      if (headerValue(head.headers, 'expect')?.toLowerCase() === '100-continue') {
        await writeAll(this.client, Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
      }
      const chunked = framing.kind === 'chunked';
      const h = chunked
        ? [...headers, ['Transfer-Encoding', 'chunked'] as const]
        : [...headers, ['Content-Length', String(framing.kind === 'length' ? framing.length : 0)] as const];
      await writeAll(up.socket, encodeRequestHead(head.method, head.target, h));
      const decoder = new BodyDecoder(framing);
      let sent = 0;
      while (!decoder.done) {
        const chunk = await this.reader.read();
        if (chunk === null)
          throw new AgentgateError(
            'PROTOCOL_VIOLATION',
            'agentgate: connection closed inside a request body',
          );
        const step = decoder.push(chunk);
        this.reader.unshift(chunk.subarray(step.consumed));
        for (const d of step.data) {
          sent += d.length;
          const w = writeAll(up.socket, chunked ? encodeChunk(d) : d, RELAY_HIGH_WATER);
          if (w) await w;
        }
      }
      if (chunked) await writeAll(up.socket, LAST_CHUNK);
      this.ctx.deps.metrics.bytes(this.ctx.listener.name, 'docker', 'client_to_upstream', sent);
    };
    const bodySent = sendBody().then(
      () => undefined,
      (err: unknown) => err,
    );
    let ok: boolean;
    try {
      ok = await this.relayResponse(head, req, route, up, decided, label, bodySent);
    } catch (err) {
      this.log.debug('docker relay failed', { err: err instanceof Error ? err.message : String(err) });
      this.ctx.deps.metrics.upstreamError(this.ctx.listener.name, 'docker', 'relay');
      up.socket.destroy();
      this.upstream = undefined;
      // Nothing of the answer reached the client yet: tell it why instead of just closing.
      if (!this.responseStarted) {
        const failure =
          err instanceof AgentgateError
            ? err
            : new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream failed');
        if (decided)
          this.recordResult({
            commandSeq: decided.commandSeq,
            req,
            action: decided.action,
            status: errorStatus(failure),
          });
        await this.respondError(errorStatus(failure), failure, true);
      }
      return false;
    }
    const bodyErr = await bodySent;
    if (bodyErr !== undefined) {
      up.socket.destroy();
      this.upstream = undefined;
      return false;
    }
    return ok;
  }

  private async readResponseHead(up: Upstream): Promise<{ head: ResponseHead; raw: Buffer }> {
    let buf: Buffer = Buffer.alloc(0);
    for (;;) {
      const chunk = up.reader.take() ?? (await up.reader.read());
      if (chunk === null)
        throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream closed before answering');
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const parsed = parseResponseHead(buf);
      if (parsed) {
        up.reader.unshift(buf.subarray(parsed.consumed));
        return { head: parsed.head, raw: buf.subarray(0, parsed.consumed) };
      }
    }
  }

  private async relayResponse(
    _reqHead: RequestHead,
    req: CanonicalRequest,
    route: Route | undefined,
    up: Upstream,
    decided: { commandSeq: number; action: string } | undefined,
    label: string,
    bodySent: Promise<unknown>,
  ): Promise<boolean> {
    let { head, raw } = await this.readResponseHead(up);
    // Interim 1xx answers other than 101 are passed on; the final answer follows (RFC 9110 §15.2).
    while (head.status >= 100 && head.status < 200 && head.status !== 101) {
      this.responseStarted = true;
      await writeAll(this.client, raw);
      ({ head, raw } = await this.readResponseHead(up));
    }
    this.state = { kind: 'streaming-response', request: label };
    const action = decided?.action ?? 'system.ping';
    const hijack =
      head.status === 101 ||
      (route?.response === 'hijack' && head.status === 200 && isStreamContentType(head.headers));
    if (hijack) {
      await bodySent;
      this.responseStarted = true;
      await writeAll(this.client, raw);
      if (decided) this.recordResult({ commandSeq: decided.commandSeq, req, action, status: head.status });
      await this.relayHijacked(up, label);
      return false;
    }

    const framing = responseFraming(req.method, head);
    const masking =
      (route?.response === 'mask-container' || route?.response === 'mask-image') &&
      head.status === 200 &&
      framing.kind !== 'none';
    if (masking) {
      const body = await this.readUpstreamBody(up, framing, MASKED_BODY_CAP);
      const masked = maskInspectEnv(body, this.masker?.detectors);
      if (masked.masked > 0) this.ctx.deps.metrics.maskedValues('docker-env', 'env', masked.masked);
      const headers = head.headers.filter(
        ([n]) => !['content-length', 'transfer-encoding'].includes(n.toLowerCase()),
      );
      this.responseStarted = true;
      await writeAll(this.client, [
        encodeResponseHead(head.status, head.reason, [
          ...headers,
          ['Content-Length', String(masked.body.length)],
        ]),
        masked.body,
      ]);
      this.ctx.deps.metrics.bytes(this.ctx.listener.name, 'docker', 'upstream_to_client', masked.body.length);
      if (decided)
        this.recordResult({
          commandSeq: decided.commandSeq,
          req,
          action,
          status: head.status,
          body: masked.body,
          textual: true,
          maskedValues: masked.masked,
        });
      return framing.kind !== 'close' && !wantsConnectionClose(head.headers);
    }

    // Head and the body bytes already here go out in one segment; a head whose body comes later is sent at once.
    const corked = up.reader.buffered > 0;
    this.responseStarted = true;
    if (corked) this.client.cork();
    const headWrite = writeAll(this.client, raw);
    if (!corked && headWrite) await headWrite;
    let uncorkPending = corked;
    const recordAsIo = route?.response === 'stream' && !BULK_ACTIONS.has(action) && decided !== undefined;
    const demux = recordAsIo ? new StreamDemuxer(action === 'container.logs' ? 'unknown' : 'raw') : undefined;
    const textual = isTextual(head.headers);
    const recorded: Buffer[] = [];
    let recordedBytes = 0;
    let total = 0;
    const decoder = new BodyDecoder(framing);
    while (!decoder.done) {
      const chunk = up.reader.take() ?? (await up.reader.read());
      if (chunk === null) {
        decoder.end();
        break;
      }
      const step = decoder.push(chunk);
      up.reader.unshift(chunk.subarray(step.consumed));
      const rawPart = chunk.subarray(0, step.consumed);
      for (const d of step.data) {
        total += d.length;
        if (demux && this.recorder) {
          const recorder = this.recorder;
          demux.push(d, (s: DemuxedStream, data: Buffer) => recorder.io(s === 'in' ? 'out' : s, data));
        } else if (recordedBytes < RECORDED_BODY_CAP) {
          const part = d.subarray(0, RECORDED_BODY_CAP - recordedBytes);
          recorded.push(part);
          recordedBytes += part.length;
        }
      }
      if (rawPart.length > 0) {
        const w = writeAll(this.client, rawPart, RELAY_HIGH_WATER);
        if (uncorkPending) {
          uncorkPending = false;
          this.client.uncork();
        }
        if (w) await w;
      }
    }
    if (uncorkPending) this.client.uncork();
    this.ctx.deps.metrics.bytes(this.ctx.listener.name, 'docker', 'upstream_to_client', total);
    if (decided) {
      const body = recordAsIo ? undefined : Buffer.concat(recorded);
      this.recordResult({
        commandSeq: decided.commandSeq,
        req,
        action,
        status: head.status,
        ...(body === undefined ? {} : { body }),
        textual,
        bytes: total,
      });
    }
    return framing.kind !== 'close' && !wantsConnectionClose(head.headers) && !this.clientClosed;
  }

  private async readUpstreamBody(up: Upstream, framing: BodyFraming, cap: number): Promise<Buffer> {
    const decoder = new BodyDecoder(framing);
    const parts: Buffer[] = [];
    let size = 0;
    while (!decoder.done) {
      const chunk = await up.reader.read();
      if (chunk === null) {
        decoder.end();
        break;
      }
      const step = decoder.push(chunk);
      up.reader.unshift(chunk.subarray(step.consumed));
      for (const d of step.data) {
        size += d.length;
        if (size > cap)
          throw new AgentgateError('LIMIT_EXCEEDED', 'agentgate: inspect response too large to mask');
        parts.push(d);
      }
    }
    return Buffer.concat(parts);
  }

  /**
   * Attach / exec start after the 101 (or the legacy 200 + raw stream): bytes flow both ways untouched, with
   * backpressure, each direction half-closed on its own (`docker exec` without -i closes its side first and still
   * reads the output), and recorded as io events.
   */
  private async relayHijacked(up: Upstream, label: string): Promise<void> {
    this.state = { kind: 'hijacked', request: label };
    const recorder = this.recorder;
    const fromClient = this.reader.detach();
    const fromUpstream = up.reader.detach();
    this.upstream = undefined;
    const client = this.client;
    const upstream = up.socket;
    const demux = new StreamDemuxer('unknown');
    const metrics = this.ctx.deps.metrics;
    const listener = this.ctx.listener.name;
    let inBytes = 0;
    let outBytes = 0;
    await new Promise<void>((resolve) => {
      let settled = false;
      let clientWaiting = false;
      let upstreamWaiting = false;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        resolve();
      };
      const toUpstream = (chunk: Buffer): void => {
        inBytes += chunk.length;
        recorder?.io('in', chunk);
        if (!upstream.write(chunk) && upstream.writableLength > RELAY_HIGH_WATER && !clientWaiting) {
          clientWaiting = true;
          client.pause();
          upstream.once('drain', () => {
            clientWaiting = false;
            client.resume();
          });
        }
      };
      const toClient = (chunk: Buffer): void => {
        outBytes += chunk.length;
        if (recorder) demux.push(chunk, (s, data) => recorder.io(s === 'in' ? 'out' : s, data));
        if (!client.write(chunk) && client.writableLength > RELAY_HIGH_WATER && !upstreamWaiting) {
          upstreamWaiting = true;
          upstream.pause();
          client.once('drain', () => {
            upstreamWaiting = false;
            upstream.resume();
          });
        }
      };
      // The client half-closing (docker exec without -i) only ends stdin; output keeps flowing.
      const clientEnded = (): void => {
        if (!upstream.destroyed) upstream.end();
      };
      // dockerd closing its side ends the exec or attach.
      const upstreamEnded = (): void => {
        if (!client.destroyed && !client.writableEnded) client.end();
        settle();
      };
      for (const c of fromClient.pending) toUpstream(c);
      for (const c of fromUpstream.pending) toClient(c);
      client.on('data', toUpstream);
      upstream.on('data', toClient);
      client.on('end', clientEnded);
      upstream.on('end', upstreamEnded);
      upstream.on('close', upstreamEnded);
      client.on('close', () => {
        upstream.destroy();
        settle();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('error', () => client.destroy());
      if (fromClient.ended) clientEnded();
      if (fromUpstream.ended) upstreamEnded();
      client.resume();
      upstream.resume();
    });
    upstream.destroy();
    metrics.bytes(listener, 'docker', 'client_to_upstream', inBytes);
    metrics.bytes(listener, 'docker', 'upstream_to_client', outBytes);
    try {
      recorder?.append('result', { event: 'stream.end', bytesIn: inBytes, bytesOut: outBytes });
    } catch (err) {
      this.log.warn('docker record failed', { err: String(err) });
    }
  }

  private recordResult(result: RecordedAnswer): void {
    const { commandSeq, req, action, status, body, textual = false, maskedValues = 0, bytes } = result;
    const recorder = this.recorder;
    if (!recorder) return;
    const rec: { -readonly [K in keyof HttpResultBody]: HttpResultBody[K] } = {
      method: req.method,
      path: req.path,
      action,
      status,
    };
    if (commandSeq !== undefined) rec.commandSeq = commandSeq;
    if (body !== undefined) {
      const capped = body.subarray(0, RECORDED_BODY_CAP);
      if (textual) {
        let text = capped.toString('utf8');
        const detectors = this.masker?.active ? this.masker.detectors : undefined;
        if (detectors) text = detectors.mask(text);
        rec.body = text;
      }
      rec.bodyBytes = bytes ?? body.length;
      if (body.length > RECORDED_BODY_CAP || (bytes ?? 0) > RECORDED_BODY_CAP) rec.truncated = true;
    } else if (bytes !== undefined) rec.bodyBytes = bytes;
    if (maskedValues > 0) rec.maskedValues = maskedValues;
    try {
      recorder.append('result', rec);
    } catch (err) {
      this.log.warn('docker record failed', { err: String(err) });
    }
  }

  private async respondJson(status: number, message: string, close: boolean): Promise<void> {
    if (this.client.destroyed || this.client.writableEnded) return;
    const body = Buffer.from(JSON.stringify({ message }) + '\n', 'utf8');
    const headers: Header[] = [
      ['Content-Type', 'application/json'],
      ['Content-Length', String(body.length)],
    ];
    if (close) headers.push(['Connection', 'close']);
    try {
      await writeAll(this.client, [
        encodeResponseHead(status, STATUS_TEXT[status] ?? 'Error', headers),
        body,
      ]);
    } catch {
      // the client is gone; nothing to tell it
    }
  }

  private async respondError(status: number, err: unknown, close: boolean): Promise<void> {
    const message = err instanceof AgentgateError && err.expose ? err.message : 'agentgate: internal error';
    if (!(err instanceof AgentgateError))
      this.log.error('docker request failed', { err: err instanceof Error ? err.message : String(err) });
    await this.respondJson(status, message, close);
  }
}

/** End our side and wait until the bytes are flushed: the root destroys the socket once `handle` resolves. */
export function endAndFlush(stream: Duplex, timeoutMs = 10_000): Promise<void> {
  if (stream.destroyed || stream.writableFinished) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done(): void {
      clearTimeout(timer);
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

type BodySource =
  | { readonly kind: 'buffered'; readonly body: Buffer }
  | { readonly kind: 'stream'; readonly framing: BodyFraming };

export { ENV_REPLACEMENT };
