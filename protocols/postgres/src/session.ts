/**
 * One client connection: startup and authentication (startup.ts), the upstream connection, then the relay
 * (relay.ts). This file only sequences the phases, queues the client's frames in order behind whatever a step
 * waits on, and ends the connection the way the server would (a FATAL ErrorResponse, then close).
 */
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import {
  CLIENT_LEFT,
  SHUTDOWN,
  causeOf,
  clientMessage,
  describeCause,
  isAgentgateError,
  type ClientInfo,
  type ConnectionControl,
  type EndCause,
  type GatedSession,
} from '@agentgate/core';
import type { SessionAnalysis } from './analysis.js';
import {
  ENCRYPTION_REFUSED,
  encodeAuthenticationCleartextPassword,
  encodeErrorResponse,
  encodeTerminate,
} from './codec/encode.js';
import { decodePassword } from './codec/frontend-decode.js';
import { FrontendReader, type FrontendFrame } from './codec/frontend-reader.js';
import { FrontendMessage } from './codec/message-types.js';
import { ClientRelay } from './client-relay.js';
import type { EngineShared } from './engine-shared.js';
import type { Relay } from './relay.js';
import { MAX_PRE_AUTH_MESSAGE_BYTES, authenticate, startupRefusal, type Login } from './startup.js';
import { connectSession } from './session-connect.js';
import { protocolViolation } from './violation.js';

export type { EngineShared } from './engine-shared.js';

/** The connection's phase; each carries what that phase holds (and what closing it must release). */
type SessionState =
  | { readonly phase: 'startup' }
  | { readonly phase: 'password'; readonly params: ReadonlyMap<string, string> }
  | { readonly phase: 'connecting'; readonly login: Login; readonly opened: OpenedResources }
  | {
      readonly phase: 'relaying';
      readonly relay: Relay;
      readonly opened: OpenedResources;
      readonly gatewayKey: { readonly processId: number; readonly secretKey: number };
    }
  | { readonly phase: 'closed' };

/** The one closed state: checked by identity on the hot path, not by reading `phase` off five shapes of state. */
const CLOSED: SessionState = { phase: 'closed' };

/** What connecting has opened so far; closing releases it. */
export interface OpenedResources {
  session?: GatedSession;
  analysis?: SessionAnalysis;
}

/** Stop reading the client while this much decoded input waits behind a pending decision. */
const INBOX_HIGH_WATER = 256 * 1024;

export class PgSession {
  private state: SessionState = { phase: 'startup' };
  /** The relay while the state is `relaying`: the per-message path reads it without looking at the state. */
  private relay: Relay | undefined;
  private readonly io: ClientRelay;
  private readonly reader: FrontendReader;
  private readonly inbox: FrontendFrame[] = [];
  private inboxBytes = 0;
  private draining = false;
  private tls: boolean;
  private loginTimer: NodeJS.Timeout | undefined;
  private done: () => void = () => undefined;
  readonly finished: Promise<void>;

  constructor(
    client: Duplex,
    private readonly info: ClientInfo,
    private readonly shared: EngineShared,
    private readonly signal: AbortSignal,
    private readonly connection?: ConnectionControl,
  ) {
    this.tls = info.tls;
    const { maxMessageBytes } = shared.listener;
    this.reader = new FrontendReader(maxMessageBytes);
    this.reader.setLimit(Math.min(MAX_PRE_AUTH_MESSAGE_BYTES, maxMessageBytes), ' before authentication');
    this.io = new ClientRelay(client, {
      data: this.onClientData,
      end: this.onClientEnd,
      error: this.onClientError,
      close: () => {
        if (!this.relay?.awaitingUpstreamEnd) this.close(CLIENT_LEFT);
      },
    });
    this.finished = new Promise((resolve) => (this.done = resolve));
  }

  /** Re-read after an await: the connection may have closed meanwhile. */
  isClosed(): boolean {
    return this.state === CLOSED;
  }

  private get log() {
    return this.shared.deps.log;
  }

  start(): void {
    this.loginTimer = setTimeout(this.onLoginTimeout, this.shared.listener.loginTimeoutMs).unref();
    // Until the session opens; from then on its `ended` signal says when and why (onSessionEnded).
    if (this.signal.aborted) this.onShutdown();
    else this.signal.addEventListener('abort', this.onShutdown, { once: true });
  }

  // ---- client input ----------------------------------------------------------------------------------------------

  private readonly onClientData = (chunk: Buffer): void => {
    try {
      if (this.state === CLOSED) return;
      this.shared.bytes.clientToUpstream += chunk.length;
      for (const frame of this.reader.push(chunk)) {
        this.inbox.push(frame);
        if (frame.kind === 'message') this.inboxBytes += frame.bytes.length;
      }
      if (this.inboxBytes > INBOX_HIGH_WATER) this.io.hold('inbox', true);
      void this.drain();
    } catch (err) {
      this.fail(err);
    }
  };

  private readonly onClientEnd = (): void => {
    try {
      this.reader.end();
    } catch (err) {
      this.log.debug('client ended mid-message', { err });
    }
    // After Terminate the answers still due are recorded even when the client no longer reads them.
    if (!this.relay?.awaitingUpstreamEnd) this.close(CLIENT_LEFT);
  };

  private readonly onClientError = (err: Error): void => {
    this.log.debug('client socket error', { err: err.message });
    // After Terminate a client that went away (a reset) only stops getting the answers; they are still recorded.
    if (this.relay?.awaitingUpstreamEnd) return;
    this.close({ kind: 'client-left', detail: 'client socket error' });
  };

  /**
   * Processes queued frames in order; one pending step holds everything behind it. What the frames forward goes
   * upstream in one write once the inbox is empty: a pipeline's Bind, Describe, Execute and Sync together, and the
   * messages forwarded before a gated one wait for its decision (a command held for approval releases them).
   */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.io.holdUpstream(true);
    try {
      for (let frame = this.inbox.shift(); frame !== undefined; frame = this.inbox.shift()) {
        if (frame.kind === 'message') this.inboxBytes -= frame.bytes.length;
        if (this.state === CLOSED) break;
        // Only Query / Execute / FunctionCall and startup steps wait on something; the rest stay synchronous.
        const pending = this.handleFrame(frame);
        if (pending) await pending;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.draining = false;
      this.io.releaseUpstream();
      // Lift the inbox hold on every way out of the loop, errors included.
      if (this.inboxBytes <= INBOX_HIGH_WATER / 2) this.io.hold('inbox', false);
    }
    // Frames queued while the last step settled must not wait for the client's next chunk.
    if (this.inbox.length > 0 && this.state !== CLOSED) void this.drain();
  }

  private handleFrame(frame: FrontendFrame): Promise<void> | void {
    const relay = this.relay;
    if (relay !== undefined) {
      if (frame.kind !== 'message') throw protocolViolation('unexpected startup packet');
      return relay.message(frame.type, frame.bytes);
    }
    const state = this.state;
    switch (state.phase) {
      case 'startup':
        return this.handleStartupFrame(frame);
      case 'password':
        if (frame.kind !== 'message' || frame.type !== FrontendMessage.Password)
          throw protocolViolation('expected a password message');
        return this.handlePassword(decodePassword(frame.bytes), state.params);
      default:
        throw protocolViolation(`unexpected message during ${state.phase}`);
    }
  }

  // ---- startup and authentication --------------------------------------------------------------------------------

  private handleStartupFrame(frame: FrontendFrame): void {
    switch (frame.kind) {
      case 'ssl-request':
        if (this.shared.tlsContext !== undefined && !this.tls)
          return this.upgradeToTls(this.shared.tlsContext);
        this.io.writeClient(ENCRYPTION_REFUSED);
        return;
      case 'gssenc-request':
        this.io.writeClient(ENCRYPTION_REFUSED);
        return;
      case 'cancel':
        this.shared.cancels.find(frame.processId, frame.secretKey)?.cancel();
        // The server closes a cancel connection without answering.
        return this.close({ kind: 'client-left', detail: 'cancel request' });
      case 'startup': {
        const refusal = startupRefusal(frame.params, {
          listener: this.shared.listener,
          client: this.info,
          tls: this.tls,
        });
        if (refusal) return this.fatal(refusal.sqlstate, refusal.message);
        this.state = { phase: 'password', params: frame.params };
        this.io.writeClient(encodeAuthenticationCleartextPassword());
        return;
      }
      default:
        throw protocolViolation('expected a startup packet');
    }
  }

  private upgradeToTls(context: tls.SecureContext): void {
    // Bytes already sent after SSLRequest would bypass TLS (CVE-2021-23214): refuse them.
    if (this.reader.pendingBytes > 0 || this.inbox.length > 0)
      throw protocolViolation('data received before the TLS handshake');
    this.io.upgradeToTls(context);
    this.tls = true;
  }

  private async handlePassword(token: string, params: ReadonlyMap<string, string>): Promise<void> {
    const ctx = { listener: this.shared.listener, client: this.info, tls: this.tls };
    const result = await authenticate(token, params, ctx, this.shared.deps);
    if (this.state.phase === 'closed') return;
    if ('refusal' in result) return this.fatal(result.refusal.sqlstate, result.refusal.message);
    this.loginCompleted();
    const opened: OpenedResources = {};
    this.state = { phase: 'connecting', login: result.login, opened };
    const connected = await connectSession({
      shared: this.shared,
      io: this.io,
      login: result.login,
      client: { ...this.info, tls: this.tls },
      signal: this.signal,
      opened,
      connection: this,
      fatal: this.fatal,
      close: (cause) => this.close(cause),
      onSessionEnded: this.onSessionEnded,
      onUpstreamClose: this.onUpstreamClose,
    });
    if (connected === undefined || this.isClosed()) return;
    this.signal.removeEventListener('abort', this.onShutdown);
    const gatewayKey = this.shared.cancels.register({ cancel: () => connected.cancel() });
    this.state = { phase: 'relaying', relay: connected, opened, gatewayKey };
    this.relay = connected;
    connected.start(gatewayKey);
  }

  /** Authenticated: the login timeout no longer applies, and messages may be as large as the listener allows. */
  private loginCompleted(): void {
    clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    this.reader.setLimit(this.shared.listener.maxMessageBytes);
    this.connection?.authenticated();
  }

  private readonly onLoginTimeout = (): void => {
    this.loginTimer = undefined;
    const phase = this.state.phase;
    if (phase !== 'startup' && phase !== 'password') return;
    const seconds = this.shared.listener.loginTimeoutMs / 1000;
    this.log.info('postgres login timed out', {
      listener: this.shared.listener.name,
      protocol: 'postgres',
      source: this.info.address,
      phase,
      timeoutSeconds: seconds,
    });
    this.fatal('08P01', `agentgate: canceling authentication due to timeout (${seconds}s)`, {
      kind: 'client-left',
      detail: 'login timed out',
    });
  };

  // ---- ending ----------------------------------------------------------------------------------------------------

  /** Gateway shutdown: a relaying connection finishes the answers still due first (Relay.shutdown). */
  private readonly onShutdown = (): void => {
    if (this.state.phase === 'relaying') this.state.relay.shutdown();
    else this.fatal('57P01', 'agentgate: the gateway is shutting down', SHUTDOWN);
  };

  /** The session must end: say why the way the server would (FATAL), once what shutdown lets finish is done. */
  private readonly onSessionEnded = (session: GatedSession): void => {
    const cause = causeOf(session.ended.reason, SHUTDOWN) as EndCause;
    switch (cause.kind) {
      case 'shutdown':
        return this.onShutdown();
      case 'credential-expired':
        return this.fatal(
          '28000',
          `agentgate: the token expired at ${cause.expiredAt}; reconnect with a fresh one`,
        );
      case 'credential-revoked':
        return this.fatal('28000', 'agentgate: the credential this session was opened with was revoked');
      case 'recording-lost':
        // COPY data is the session's only stream: when the store refuses it (failMode closed), it must not go on.
        return this.fatal('53000', 'agentgate: the transcript store cannot record this session; ending it');
      case 'terminated':
        return this.fatal('57P01', `agentgate: the session was ${describeCause(cause)}`);
      default:
        // The session's own end (the client left, a failure): it is already closing.
        return;
    }
  };

  private readonly onUpstreamClose = (): void => {
    const state = this.state;
    if (state.phase === 'closed') return;
    // The server closes after Terminate once it has sent every answer it owed: the session ends here.
    if (state.phase === 'relaying' && state.relay.terminated)
      return this.close({ kind: 'client-left', detail: 'the client terminated the session' });
    this.shared.deps.metrics.upstreamError(this.shared.listener.name, 'postgres', 'lost');
    this.fatal('08006', 'agentgate: the upstream database connection was lost');
  };

  private fail(err: unknown): void {
    if (isAgentgateError(err, 'PROTOCOL_VIOLATION')) {
      this.log.warn('postgres protocol violation', {
        listener: this.shared.listener.name,
        source: this.info.address,
        err: err.message,
      });
      return this.fatal('08P01', err.message);
    }
    this.log.error('postgres session failed', { err });
    this.fatal('XX000', clientMessage(err));
  }

  /**
   * Send a FATAL ErrorResponse (PostgreSQL docs: the server closes the connection after FATAL) and close. The
   * session ends for the cause it was told to end for, if any; otherwise for `cause` (default: this failure).
   */
  private readonly fatal = (sqlstate: string, message: string, cause?: EndCause): void => {
    if (this.state.phase === 'closed') return;
    this.io.writeClient(encodeErrorResponse('FATAL', sqlstate, message));
    this.close(cause ?? { kind: 'failed', message });
  };

  /** End the connection: the pending decision is withdrawn and the session closes with `cause`. */
  close(cause: EndCause): void {
    const state = this.state;
    if (state.phase === 'closed') return;
    this.state = CLOSED;
    this.relay = undefined;
    clearTimeout(this.loginTimer);
    this.signal.removeEventListener('abort', this.onShutdown);
    let goodbye: Buffer | undefined = encodeTerminate();
    if (state.phase === 'relaying') {
      this.shared.cancels.unregister(state.gatewayKey.processId, state.gatewayKey.secretKey);
      if (state.relay.terminated) goodbye = undefined;
    }
    this.io.close(goodbye);
    if (state.phase === 'connecting' || state.phase === 'relaying') {
      state.opened.analysis?.close();
      state.opened.session?.end(cause);
    }
    this.done();
  }
}
