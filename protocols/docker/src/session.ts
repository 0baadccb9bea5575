/**
 * One client connection of the Docker listener. Requests are served strictly one at a time in arrival order
 * (pipelined requests wait in the socket, unread), each through an explicit state:
 * reading-head → reading-body → deciding → forwarding → streaming-response → (next request | hijacked | closed).
 * The pieces: request-auth.ts (who the request acts as), session-groups.ts (the recorded session it joins),
 * http-message-reader.ts (heads and bodies), upstream-exchange.ts (dockerd and the answer), replies.ts (refusals).
 */
import type { Duplex } from 'node:stream';
import {
  AgentgateError,
  CLIENT_LEFT,
  causeOf,
  type ClientInfo,
  type ConnectionControl,
  type DockerCommand,
  type DockerListenerConfig,
  type EngineDeps,
  type GatedSession,
  type Identity,
  type SessionMasker,
  type SlabReads,
} from '@agentgate/core';
import { type AnswerSink, AnswerTextMemo, recordAnswer } from './answer-record.js';
import type { UpstreamLookup } from './body-facts.js';
import { buildDockerCommand } from './docker-command.js';
import {
  type BodyFraming,
  type RequestHead,
  headerValue,
  parseRequestHead,
  requestFraming,
  wantsConnectionClose,
} from './http-codec.js';
import { type HeadLimits, type HeadRead, HttpMessageReader } from './http-message-reader.js';
import { errorStatus, replyError, replyJson, verdictStatus } from './replies.js';
import { RequestAuthenticator } from './request-auth.js';
import { type CanonicalRequest, type Route, canonicalizeTarget, classifyRoute } from './routes.js';
import type { SessionGroups, SessionLease } from './session-groups.js';
import { SocketReader, endAndFlush, writeAll } from './socket-reader.js';
import { UpstreamExchange } from './upstream-exchange.js';

export type ConnectionState =
  | { readonly kind: 'reading-head' }
  | { readonly kind: 'reading-body'; readonly request: string }
  | { readonly kind: 'deciding'; readonly request: string }
  | { readonly kind: 'forwarding'; readonly request: string }
  | { readonly kind: 'streaming-response'; readonly request: string }
  | { readonly kind: 'hijacked'; readonly request: string }
  | { readonly kind: 'closed' };

export interface SessionContext {
  readonly listener: DockerListenerConfig;
  readonly deps: EngineDeps;
  readonly lookup: UpstreamLookup;
  readonly info: ClientInfo;
  readonly signal: AbortSignal;
  readonly groups: SessionGroups;
  /** The listener's limits on unauthenticated connections, told when this one authenticated. */
  readonly connection?: ConnectionControl;
}

const EMPTY = Buffer.alloc(0);
/** How long an idle connection closed at shutdown waits for its FIN to flush. */
const IDLE_CLOSE_MS = 10_000;
const READING_HEAD: ConnectionState = { kind: 'reading-head' };

/** What serve() works out from a request head alone (factsOf). */
interface HeadFacts {
  readonly head: RequestHead;
  readonly framing: BodyFraming;
  readonly req: CanonicalRequest;
  readonly route: Route | undefined;
  readonly wantsClose: boolean;
  /** `GET`/`HEAD /_ping`: relayed without authentication, decision or record. */
  readonly ping: boolean;
  /** A form-encoded body, refused (Go's ParseForm would read it ahead of the query). */
  readonly formBody: boolean;
  /** The connection's states while serving this head, each naming it as `METHOD target` (one object per head). */
  readonly states: { readonly [K in ServingKind]: ConnectionState };
}

type ServingKind = Exclude<ConnectionState['kind'], 'reading-head' | 'closed'>;

/** What an authenticated request decides and records with. */
interface Bound {
  readonly session: GatedSession;
  readonly masker: SessionMasker;
}

export class DockerConnection {
  state: ConnectionState = { kind: 'reading-head' };
  private readonly messages: HttpMessageReader;
  private readonly auth: RequestAuthenticator;
  private readonly exchange: UpstreamExchange;
  private lease: SessionLease | undefined;
  /** The session's masker, the identity and masking generation (MaskingService.generation) it was built for. */
  private masking: { masker: SessionMasker; identity: Identity; generation: number } | undefined;
  private clientClosed = false;
  private lastFacts: HeadFacts | undefined;
  private lastCommand: { facts: HeadFacts; command: DockerCommand } | undefined;
  private readonly lastAnswerText = new AnswerTextMemo();
  /** The last request's session and masker, and where its answer was recorded (reused while they hold). */
  private bound: Bound | undefined;
  private sink: AnswerSink | undefined;
  /** Aborts when the client goes away: a held decision is withdrawn. */
  private readonly clientGone = new AbortController();

  /** `clientReads`: `client` was adopted to read into slabs (index.ts); it keeps reading ahead as a Readable would. */
  constructor(
    private readonly client: Duplex,
    private readonly ctx: SessionContext,
    clientReads?: SlabReads,
  ) {
    this.messages = new HttpMessageReader(
      new SocketReader(client, clientReads, clientReads ? client.readableHighWaterMark : 0),
    );
    this.auth = new RequestAuthenticator(ctx.listener, ctx.info, ctx.deps);
    this.exchange = new UpstreamExchange({
      client,
      clientMessages: this.messages,
      listener: ctx.listener,
      metrics: ctx.deps.metrics,
      log: ctx.deps.log,
      phase: (kind) => {
        const facts = this.lastFacts;
        if (facts && this.state.kind !== 'closed' && 'request' in this.state) this.state = facts.states[kind];
      },
    });
    client.on('close', () => {
      this.clientClosed = true;
      this.clientGone.abort(CLIENT_LEFT);
      // Nothing can reach the client any more: dockerd sees it gone, as it would a direct client's close.
      if (this.state.kind === 'forwarding' || this.state.kind === 'streaming-response') this.exchange.close();
    });
    // A client that goes away while its request is held for approval withdraws it. With allowHalfOpen a FIN only
    // shows as 'end', so while deciding that counts too (docker clients never half-close before the answer).
    // A request already with dockerd is not cut: the FIN goes on to dockerd behind it (UpstreamExchange).
    client.on('end', () => {
      if (this.state.kind === 'deciding') this.clientGone.abort(CLIENT_LEFT);
      else if (this.state.kind === 'forwarding' || this.state.kind === 'streaming-response')
        this.exchange.clientEnded();
    });
    client.on('error', () => {});
  }

  private get log() {
    return this.ctx.deps.log;
  }

  async run(): Promise<void> {
    const onShutdown = (): void => {
      // Idle connections close at once; a request in flight finishes first (checked after each response).
      if (this.state.kind === 'reading-head' && this.messages.buffered === 0) {
        // With allowHalfOpen our FIN alone would not end the wait for the next request: close once flushed.
        void endAndFlush(this.client, IDLE_CLOSE_MS).then(() => this.client.destroy());
      }
      if (this.state.kind === 'hijacked') this.client.destroy();
    };
    this.ctx.signal.addEventListener('abort', onShutdown, { once: true });
    const connectedAt = Date.now();
    try {
      for (let first = true; !this.ctx.signal.aborted; first = false) {
        this.state = READING_HEAD;
        // The head read is awaited here, with no async layer around it; what is not a head ends the connection.
        let read: HeadRead<RequestHead>;
        try {
          read = await this.messages.readHead(
            parseRequestHead,
            this.headLimits(first ? connectedAt : undefined),
          );
        } catch (err) {
          await this.headRefused(err);
          break;
        }
        if (read.kind !== 'head') {
          await this.noHead(read, first ? connectedAt : undefined);
          break;
        }
        const keepAlive = await this.serve(read.head);
        // A session told to end (its credential lapsed, an administrator) closes between requests; the connection
        // may go on, and its next request authenticates and opens a session of its own.
        if (this.lease?.session.ended.aborted === true) this.leaveSession();
        if (!keepAlive) break;
      }
    } catch (err) {
      this.log.warn('docker connection failed', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.ctx.signal.removeEventListener('abort', onShutdown);
      this.state = { kind: 'closed' };
      this.exchange.close();
      await endAndFlush(this.client);
      this.leaveSession();
    }
  }

  /**
   * The limits on the next head: the keep-alive idle timeout before its first byte (not on a new connection), then
   * the head timeout, counted from the connection's start for its first request.
   */
  private headLimits(connectedAt: number | undefined): HeadLimits {
    const { headersTimeoutMs, keepAliveTimeoutMs } = this.ctx.listener;
    return {
      headMs: headersTimeoutMs > 0 ? headersTimeoutMs : undefined,
      startedAt: connectedAt,
      idleUntil:
        connectedAt === undefined && keepAliveTimeoutMs > 0 ? Date.now() + keepAliveTimeoutMs : undefined,
    };
  }

  /**
   * The connection ended or timed out instead of sending a head (closed by the client, idle past the keep-alive
   * timeout, too slow to send a head): a client waiting for an answer gets 400 or 408.
   */
  private async noHead(
    read: Exclude<HeadRead<RequestHead>, { kind: 'head' }>,
    connectedAt: number | undefined,
  ): Promise<void> {
    const fail = { close: true, headRequest: false };
    try {
      if (read.kind === 'end') {
        if (read.partial) {
          const err = new AgentgateError(
            'PROTOCOL_VIOLATION',
            'agentgate: connection closed inside a request head',
          );
          await replyError(this.client, this.log, 400, err, fail);
        }
        return;
      }
      const waited = connectedAt === undefined && !read.partial ? 'keep-alive' : 'request-head';
      this.log.info('docker connection timed out', {
        source: this.ctx.info.address,
        waited,
        partial: read.partial,
      });
      if (read.partial || connectedAt !== undefined)
        await replyJson(this.client, 408, 'agentgate: request head not received in time', fail);
    } catch (err) {
      this.log.debug('docker reply failed', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  /** A head refused while reading it (431 too large, 400 malformed). */
  private async headRefused(err: unknown): Promise<void> {
    const status = err instanceof AgentgateError && err.code === 'LIMIT_EXCEEDED' ? 431 : errorStatus(err);
    await replyError(this.client, this.log, status, err, { close: true, headRequest: false });
  }

  /**
   * What a request head alone says: its framing, canonical target and route. The reader hands back the same head
   * object for repeated head bytes (a client polling), so those are worked out once for them. Throws for a head
   * to refuse.
   */
  private factsOf(head: RequestHead): HeadFacts {
    const last = this.lastFacts;
    if (last?.head === head) return last;
    const framing = requestFraming(head);
    const req = canonicalizeTarget(head.method, head.target);
    const contentType = (headerValue(head.headers, 'content-type') ?? '').split(';')[0] ?? '';
    const label = `${head.method} ${head.target}`;
    const facts: HeadFacts = {
      head,
      framing,
      req,
      route: classifyRoute(req),
      wantsClose: head.version === '1.0' || wantsConnectionClose(head.headers),
      ping: req.path === '/_ping' && (req.method === 'GET' || req.method === 'HEAD'),
      formBody:
        framing.kind !== 'none' && contentType.trim().toLowerCase() === 'application/x-www-form-urlencoded',
      states: {
        'reading-body': { kind: 'reading-body', request: label },
        deciding: { kind: 'deciding', request: label },
        forwarding: { kind: 'forwarding', request: label },
        'streaming-response': { kind: 'streaming-response', request: label },
        hijacked: { kind: 'hijacked', request: label },
      },
    };
    this.lastFacts = facts;
    return facts;
  }

  /** Serve one request; resolves true when the connection may carry another. */
  private async serve(head: RequestHead): Promise<boolean> {
    const headRequest = head.method === 'HEAD';
    let facts: HeadFacts;
    try {
      facts = this.factsOf(head);
    } catch (err) {
      return this.refuse(errorStatus(err), err, headRequest);
    }
    const { framing, req, route, wantsClose, states } = facts;
    this.state = states.forwarding;

    // `/_ping` is answered straight from dockerd: never authenticated, decided or held (the CLI gives it 2 s).
    if (facts.ping) {
      const source = { kind: 'buffered', body: EMPTY } as const;
      const ok = await this.exchange.forward({
        head,
        req,
        route: undefined,
        source,
        decided: undefined,
        sink: undefined,
        detectors: undefined,
      });
      return ok && !wantsClose;
    }

    let bound: Bound;
    try {
      const binding = this.bind(head);
      bound = binding instanceof Promise ? await binding : binding;
    } catch (err) {
      return this.refuse(errorStatus(err), err, headRequest);
    }

    if (facts.formBody) {
      // Go's ParseForm would read such a body as form values ahead of the query: refuse rather than guess.
      return this.refuse(
        400,
        new AgentgateError('BAD_REQUEST', 'agentgate: form-encoded request bodies are not accepted'),
        headRequest,
      );
    }

    // Bulk uploads (build context, image load, archive PUT) stream through; every other body is read and judged.
    const streamBody = route?.response === 'stream' && framing.kind !== 'none';
    let body: Buffer | undefined;
    if (!streamBody && framing.kind !== 'none') {
      this.state = states['reading-body'];
      const limit = this.ctx.listener.maxBodyBytes;
      try {
        if (headerValue(head.headers, 'expect')?.toLowerCase() === '100-continue')
          await writeAll(this.client, Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1'));
        body = await this.messages.readBody(
          framing,
          limit,
          `agentgate: request body larger than ${limit} bytes`,
          'agentgate: connection closed inside a request body',
        );
      } catch (err) {
        return this.refuse(errorStatus(err), err, headRequest);
      }
    }

    this.state = states.deciding;
    const { listener, deps } = this.ctx;
    const building = this.commandFor(facts, body);
    const command = building instanceof Promise ? await building : building;
    const verdict = await bound.session.decide(command, this.clientGone.signal);
    const sink = this.sinkFor(bound);
    const decided = { req, commandSeq: verdict.commandSeq, action: command.action };
    if (!verdict.allowed) {
      const status = verdictStatus(verdict);
      const message = Buffer.from(JSON.stringify({ message: verdict.message }));
      recordAnswer(sink, decided, { status, body: message, textual: true });
      // An unread streamed body cannot be skipped safely: close after answering.
      const close = wantsClose || streamBody || this.clientClosed;
      await replyJson(this.client, status, verdict.message, { close, headRequest });
      return !close;
    }

    this.state = states.forwarding;
    const started = performance.now();
    const ok = await this.exchange.forward({
      head,
      req,
      route,
      source: streamBody ? { kind: 'stream', framing } : { kind: 'buffered', body: body ?? EMPTY },
      decided,
      sink,
      detectors: bound.masker.detectors,
    });
    deps.metrics.commandCompleted(listener.name, 'docker', (performance.now() - started) / 1e3);
    return ok && !wantsClose && !this.clientClosed && !this.ctx.signal.aborted;
  }

  private async refuse(status: number, err: unknown, headRequest: boolean): Promise<false> {
    await replyError(this.client, this.log, status, err, { close: true, headRequest });
    return false;
  }

  /** Where the answer is recorded: the same object while the session and its detectors stay the same. */
  private sinkFor(bound: Bound): AnswerSink {
    const recorder = bound.session.recorder;
    const detectors = bound.masker.active ? bound.masker.detectors : undefined;
    const last = this.sink;
    if (last?.recorder === recorder && last.detectors === detectors) return last;
    const sink = { recorder, detectors, log: this.log, lastText: this.lastAnswerText };
    this.sink = sink;
    return sink;
  }

  /**
   * The command the gate decides on. Without a body it depends on the head alone (nothing is looked up in dockerd),
   * so a repeated head reuses the command built for it; it is still decided and recorded every time.
   */
  private commandFor(facts: HeadFacts, body: Buffer | undefined): DockerCommand | Promise<DockerCommand> {
    const last = this.lastCommand;
    if (body === undefined && last?.facts === facts) return last.command;
    return this.buildCommand(facts, body);
  }

  private async buildCommand(facts: HeadFacts, body: Buffer | undefined): Promise<DockerCommand> {
    const { listener, lookup } = this.ctx;
    const { req, route } = facts;
    if (body !== undefined) return buildDockerCommand({ request: req, route, body, listener, lookup });
    const command = await buildDockerCommand({ request: req, route, body, listener, lookup });
    this.lastCommand = { facts, command };
    return command;
  }

  /**
   * Authenticate the request and join the recorded session of its identity (session-groups.ts); synchronous when
   * nothing needs verifying (request-auth.ts). Throws (or rejects) as `authenticate` does.
   */
  private bind(head: RequestHead): Bound | Promise<Bound> {
    const verified = this.auth.authenticate(head.headers);
    return verified instanceof Promise
      ? verified.then((identity) => this.join(identity))
      : this.join(verified);
  }

  private join(identity: Identity): Bound {
    this.ctx.connection?.authenticated();
    let lease = this.lease;
    if (lease) {
      const current = lease.session.info.identity;
      if (
        lease.session.ended.aborted ||
        current.name !== identity.name ||
        current.source !== identity.source
      ) {
        this.leaveSession();
        lease = undefined;
      } else if (current !== identity) {
        // Same name, new token (refreshed, or other groups): decide with what this request presented.
        lease.session.continueAs(identity);
      }
    }
    if (!lease) {
      lease = this.ctx.groups.acquire(identity, this.ctx.info, this.ctx.signal, this.onSessionEnded);
      this.lease = lease;
    }
    const masker = this.maskerFor(identity);
    const last = this.bound;
    if (last?.session === lease.session && last.masker === masker) return last;
    const bound = { session: lease.session, masker };
    this.bound = bound;
    return bound;
  }

  /** Built again when the identity or the masking rules (a reload) changed; each request is masked on its own. */
  private maskerFor(identity: Identity): SessionMasker {
    const masking = this.ctx.deps.masking;
    const generation = masking.generation ?? 0;
    const current = this.masking;
    if (current && current.identity === identity && current.generation === generation) return current.masker;
    const masker = masking.forSession(identity, this.ctx.listener.name);
    this.masking = { masker, identity, generation };
    return masker;
  }

  private leaveSession(): void {
    const lease = this.lease;
    if (!lease) return;
    this.lease = undefined;
    lease.release();
  }

  /**
   * The session must end (its credential expired or was revoked, the store refuses its bytes, an administrator):
   * a long-lived answer (attach, exec, `logs -f`, `events`) is cut now, anything else finishes its request and the
   * session closes before the next one. Shutdown has its own course (run()).
   */
  private readonly onSessionEnded = (): void => {
    const cause = causeOf(this.lease?.session.ended.reason);
    const state = this.state;
    if (cause.kind === 'shutdown' || (state.kind !== 'hijacked' && state.kind !== 'streaming-response'))
      return;
    this.log.info('docker stream ended', { request: state.request, cause: cause.kind });
    this.client.destroy();
    this.exchange.close();
  };
}
