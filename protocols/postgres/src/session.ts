/**
 * One client connection: startup and authentication, the upstream connection, then the relay. The relay decides
 * every Query / Execute / FunctionCall with the gate before its bytes go upstream and follows the upstream's
 * answers per Sync group to record results and to place gateway errors where the server would have put them.
 *
 * A denied command is replaced upstream by a statement that fails to parse (DENIED_PROBE_SQL), so the server treats
 * the transaction as after any error: an explicit block is aborted, an implicit one (a pipeline up to Sync) rolled
 * back, and nothing forwarded before the denied command commits behind the client's back. The probe's error is
 * replaced by the gateway's ErrorResponse — after the answers to everything forwarded earlier, exactly where the
 * server would have reported an error (PostgreSQL docs "Extended Query": after an error the server discards
 * messages until Sync).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import {
  AgentgateError,
  CLIENT_LEFT,
  causeOf,
  clientMessage,
  describeCause,
  isAgentgateError,
  SHUTDOWN,
  type ClientInfo,
  type EndCause,
  type EngineDeps,
  type GatedSession,
  type Identity,
  type PostgresCommand,
  type PostgresListenerConfig,
  type SqlStatementFacts,
  type Verdict,
} from '@agentgate/core';
import type { AnalysisProvider, SessionAnalysis } from './analysis.js';
import { BackendFramer } from './codec/backend-framer.js';
import {
  decodeBind,
  decodeCommandTag,
  decodeErrorFields,
  decodeExecute,
  decodeFunctionCallOid,
  decodeParameterStatus,
  decodeParse,
  decodeQuery,
  decodeTarget,
  type FieldDescription,
} from './codec/decode.js';
import {
  ENCRYPTION_REFUSED,
  SSL_ACCEPT,
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeCancelRequest,
  encodeParse,
  encodeQuery,
  encodeTerminate,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeReadyForQuery,
} from './codec/encode.js';
import { FrontendReader, type FrontendFrame } from './codec/frontend-reader.js';
import type { CancelRegistry } from './cancel-registry.js';
import {
  passThroughFilter,
  type ResultFilter,
  type ResultFilterFactory,
  type StatementCheckResult,
} from './result-filter.js';
import { ResultTracker } from './result-tracker.js';
import { WriteCoalescer } from './write-coalescer.js';
import { connectTcp, openUpstream, UpstreamRejected, type UpstreamConnection } from './upstream.js';

export interface EngineShared {
  readonly listener: PostgresListenerConfig;
  readonly deps: EngineDeps;
  readonly analysis: AnalysisProvider;
  readonly cancels: CancelRegistry;
  readonly tlsContext: tls.SecureContext | undefined;
  readonly resultFilter: ResultFilterFactory | undefined;
  /** Byte counts, added up here and handed to the metrics once a second (not twice per round trip). */
  readonly bytes: { clientToUpstream: number; upstreamToClient: number };
}

/** The connection's phase; each carries what that phase needs. */
type SessionState =
  | { readonly phase: 'startup' }
  | { readonly phase: 'password'; readonly params: ReadonlyMap<string, string> }
  | { readonly phase: 'connecting' }
  | { readonly phase: 'relaying' }
  | { readonly phase: 'closed' };

/** Responses of the upstream up to one ReadyForQuery (a Query, a Sync or a FunctionCall closes a group). */
interface ResponseGroup {
  readonly id: number;
  readonly entries: {
    tracker: ResultTracker;
    multiStatement: boolean;
    plan?: unknown;
    /** The failing stand-in for a denied command: its ErrorResponse is replaced by the gateway's (see deny()). */
    probe?: true;
  }[];
  index: number;
  /** The gateway's ErrorResponse for the group's denied command, sent in place of its stand-in's error. */
  injectError: Buffer | null;
  /** RowDescription from a Describe, for the Execute that follows. */
  describedFields: FieldDescription[] | null;
  /** The upstream already reported an error in this group: the server skipped the rest, so no second error. */
  upstreamError: boolean;
}

/**
 * What a portal will run. A name the gateway cannot be sure about (a statement re-Parsed after a DEALLOCATE the
 * gateway did not see, a portal re-bound under a live name the server may refuse) keeps every candidate text,
 * and the Execute is decided on all of them: uncertainty only ever adds facts, never hides one.
 */
interface PortalInfo {
  readonly texts: readonly string[];
  /** The response group the Bind belongs to: portals end with their transaction (ReadyForQuery `I`). */
  readonly groupId: number;
  readonly statementName: string;
  readonly params: unknown[];
  readonly resultFormats: number[];
}

const T = (c: string): number => c.charCodeAt(0);
const MSG = {
  Query: T('Q'),
  Parse: T('P'),
  Bind: T('B'),
  Execute: T('E'),
  Describe: T('D'),
  Close: T('C'),
  Sync: T('S'),
  Flush: T('H'),
  Terminate: T('X'),
  FunctionCall: T('F'),
  CopyData: T('d'),
  CopyDone: T('c'),
  CopyFail: T('f'),
  Password: T('p'),
};
/** Extended-query messages: their answers come after a later Sync (or a Flush), not on their own. */
const EXTENDED_MESSAGES: ReadonlySet<number> = new Set([
  MSG.Parse,
  MSG.Bind,
  MSG.Describe,
  MSG.Execute,
  MSG.Close,
  MSG.Flush,
]);
/**
 * Sent upstream in place of a denied command: it cannot parse, so it runs nothing, and the server's log shows why
 * (`syntax error at or near "agentgate"`, with this statement). In the extended protocol it is a Parse of a named
 * statement, which a failed parse never creates: the client's unnamed statement is left alone.
 */
const DENIED_PROBE_SQL = 'agentgate: denied by the gateway';
const DENIED_PROBE_QUERY = encodeQuery(DENIED_PROBE_SQL);
const DENIED_PROBE_PARSE = encodeParse('agentgate_denied', DENIED_PROBE_SQL);

/** The stand-in's error: a syntax error (42601) at its first word, which the server names in any language. */
function isProbeError(buf: Buffer, start: number, end: number): boolean {
  const fields = decodeErrorFields(buf, start, end);
  return fields.get('C') === '42601' && (fields.get('M') ?? '').includes('agentgate');
}

/** Stop reading the client while this much decoded input waits behind a pending decision. */
const INBOX_HIGH_WATER = 256 * 1024;
const IDLE = T('I');
const NO_MASKING_PLAN: StatementCheckResult = { plan: undefined };

export class PgSession {
  private state: SessionState = { phase: 'startup' };
  private client: Duplex;
  private readonly reader: FrontendReader;
  private readonly inbox: FrontendFrame[] = [];
  private inboxBytes = 0;
  private draining = false;
  private clientPaused = { inbox: false, upstream: false };
  private upstream: UpstreamConnection | undefined;
  private upstreamSocket: net.Socket | tls.TLSSocket | undefined;
  private readonly upstreamFramer = new BackendFramer();
  private identity: Identity | undefined;
  /** The recorded, gated session, from authentication on (session-lifecycle in core). */
  private session: GatedSession | undefined;
  private analysis: SessionAnalysis | undefined;
  private filter: ResultFilter = passThroughFilter;
  /** The masking generation `filter` was built for (MaskingService.generation). */
  private maskingGeneration = 0;
  /** Extended-protocol messages went upstream since the last Sync: answers to them may still come. */
  private unsynced = false;
  private database = '';
  private user = '';
  private gatewayKey: { processId: number; secretKey: number } | undefined;
  private tls: boolean;
  // Relay state.
  private readonly awaiting: ResponseGroup[] = [];
  private groupIds = 0;
  private current: ResponseGroup = this.newGroup();
  private discardUntilSync = false;
  private readonly statements = new Map<string, string[]>();
  private readonly portals = new Map<string, PortalInfo>();
  private unnamedStatement: string | undefined;
  private txStatus = IDLE;
  private deciding = false;
  private terminated = false;
  private shuttingDown = false;
  private done!: () => void;
  readonly finished: Promise<void>;

  constructor(
    client: Duplex,
    private readonly info: ClientInfo,
    private readonly shared: EngineShared,
    private readonly signal: AbortSignal,
  ) {
    this.client = client;
    this.tls = info.tls;
    this.reader = new FrontendReader(shared.listener.maxMessageBytes);
    this.finished = new Promise((resolve) => (this.done = resolve));
  }

  private get log() {
    return this.shared.deps.log;
  }

  start(): void {
    this.attachClient(this.client);
    // Until the session opens; from then on its `ended` signal says when and why (onSessionEnded).
    if (this.signal.aborted) this.onShutdown();
    else this.signal.addEventListener('abort', this.onShutdown, { once: true });
  }

  // ---- client socket -------------------------------------------------------------------------------------------

  private attachClient(socket: Duplex): void {
    socket.on('data', this.onClientData);
    socket.on('end', this.onClientEnd);
    socket.on('error', this.onClientError);
    socket.on('close', this.onClientClose);
    socket.on('drain', this.onClientDrain);
  }

  private detachClient(socket: Duplex): void {
    socket.off('data', this.onClientData);
    socket.off('end', this.onClientEnd);
    socket.off('error', this.onClientError);
    socket.off('close', this.onClientClose);
    socket.off('drain', this.onClientDrain);
  }

  private readonly onClientData = (chunk: Buffer): void => {
    try {
      if (this.state.phase === 'closed') return;
      this.shared.bytes.clientToUpstream += chunk.length;
      const frames = this.reader.push(chunk);
      for (const frame of frames) {
        this.inbox.push(frame);
        if (frame.kind === 'message') this.inboxBytes += frame.bytes.length;
      }
      if (this.inboxBytes > INBOX_HIGH_WATER) this.holdClient('inbox', true);
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
    this.close(CLIENT_LEFT);
  };

  private readonly onClientError = (err: Error): void => {
    this.log.debug('client socket error', { err: err.message });
    this.close({ kind: 'client-left', detail: 'client socket error' });
  };

  private readonly onClientClose = (): void => this.close(CLIENT_LEFT);

  private readonly onClientDrain = (): void => {
    if (this.state.phase === 'relaying') this.upstreamSocket?.resume();
  };

  /** Gateway shutdown: a pending decision is withdrawn (by the session), the answers still due are relayed. */
  private readonly onShutdown = (): void => {
    this.shuttingDown = true;
    if (this.state.phase !== 'relaying' || (this.awaiting.length === 0 && !this.deciding)) {
      this.fatal('57P01', 'agentgate: the gateway is shutting down', SHUTDOWN);
    }
  };

  /** The session must end: say why the way the server would (FATAL), once what shutdown lets finish is done. */
  private readonly onSessionEnded = (): void => {
    const cause = causeOf(this.session?.ended.reason, SHUTDOWN) as EndCause;
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

  /** Writes of one tick go out together (see WriteCoalescer); backpressure pauses the other side. */
  private readonly clientOut = new WriteCoalescer(
    () => (this.client.destroyed ? undefined : this.client),
    () => {
      // The client cannot keep up: stop reading the upstream until the client drains (onClientDrain). Only
      // while a 'drain' is still due: a buffer already emptied again would never emit one.
      if (!this.client.writableNeedDrain) return;
      if (this.upstreamSocket && !this.upstreamSocket.isPaused()) this.upstreamSocket.pause();
    },
  );

  private readonly upstreamOut = new WriteCoalescer(
    () => this.upstreamSocket,
    () => {
      const up = this.upstreamSocket;
      if (!up || this.clientPaused.upstream) return;
      // write() said false, but the buffer may be empty again by now (no 'drain' would follow): check, don't wait.
      if (!up.writableNeedDrain) return;
      this.holdClient('upstream', true);
      const release = (): void => {
        up.off('drain', release);
        up.off('close', release);
        this.holdClient('upstream', false);
      };
      up.on('drain', release);
      up.on('close', release);
    },
  );

  /**
   * The one place that pauses and resumes reading the client: it reads again only when no reason to hold it is
   * left (a full inbox behind a pending decision, an upstream that has not drained), whatever order they clear in.
   */
  private holdClient(reason: 'inbox' | 'upstream', hold: boolean): void {
    if (this.clientPaused[reason] === hold) return;
    this.clientPaused[reason] = hold;
    if (hold) this.client.pause();
    else if (!this.clientPaused.inbox && !this.clientPaused.upstream && this.state.phase !== 'closed')
      this.client.resume();
  }

  private writeClient(buf: Buffer): void {
    if (this.state.phase === 'closed') return;
    this.clientOut.write(buf);
  }

  private writeUpstream(buf: Buffer): void {
    this.upstreamOut.write(buf);
  }

  // ---- frame processing ----------------------------------------------------------------------------------------

  /** Processes queued frames in order; one pending decision holds everything behind it. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.inbox.length > 0 && this.state.phase !== 'closed') {
        const frame = this.inbox.shift()!;
        if (frame.kind === 'message') this.inboxBytes -= frame.bytes.length;
        // Only Query / Execute / FunctionCall and startup steps wait on something; the rest stay synchronous.
        const pending = this.handleFrame(frame);
        if (pending) await pending;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.draining = false;
      // Lift the inbox hold on every way out of the loop, errors included.
      if (this.inboxBytes <= INBOX_HIGH_WATER / 2) this.holdClient('inbox', false);
    }
    // Frames queued while the last step settled must not wait for the client's next chunk.
    if (this.inbox.length > 0 && this.state.phase !== 'closed') void this.drain();
  }

  private handleFrame(frame: FrontendFrame): Promise<void> | void {
    const state = this.state;
    switch (state.phase) {
      case 'startup':
        return this.handleStartupFrame(frame);
      case 'password':
        if (frame.kind !== 'message' || frame.type !== MSG.Password)
          throw violation('expected a password message');
        return this.handlePassword(frame.bytes, state.params);
      case 'relaying':
        if (frame.kind !== 'message') throw violation('unexpected startup packet');
        return this.relayClientMessage(frame.type, frame.bytes);
      default:
        throw violation(`unexpected message during ${state.phase}`);
    }
  }

  private async handleStartupFrame(frame: FrontendFrame): Promise<void> {
    switch (frame.kind) {
      case 'ssl-request':
        if (this.shared.tlsContext && !this.tls) return this.upgradeToTls();
        this.client.write(ENCRYPTION_REFUSED);
        return;
      case 'gssenc-request':
        this.client.write(ENCRYPTION_REFUSED);
        return;
      case 'cancel':
        this.handleCancelRequest(frame.processId, frame.secretKey);
        return;
      case 'startup':
        return this.handleStartup(frame.params);
      default:
        throw violation('expected a startup packet');
    }
  }

  private async upgradeToTls(): Promise<void> {
    // Bytes already sent after SSLRequest would bypass TLS (CVE-2021-23214): refuse them.
    if (this.reader.pendingBytes > 0 || this.inbox.length > 0)
      throw violation('data received before the TLS handshake');
    const plain = this.client;
    this.detachClient(plain);
    plain.write(SSL_ACCEPT);
    const secure = new tls.TLSSocket(plain as net.Socket, {
      isServer: true,
      secureContext: this.shared.tlsContext!,
    });
    this.client = secure;
    this.tls = true;
    this.attachClient(secure);
    plain.on('error', this.onClientError);
  }

  private handleCancelRequest(processId: number, secretKey: number): void {
    this.shared.cancels.find(processId, secretKey)?.cancel();
    // The server closes a cancel connection without answering.
    this.close({ kind: 'client-left', detail: 'cancel request' });
  }

  private async handleStartup(params: ReadonlyMap<string, string>): Promise<void> {
    for (const name of ['options', 'replication']) {
      if (params.has(name)) {
        return this.fatal(
          '0A000',
          `agentgate: startup parameter "${name}" is not allowed through the gateway`,
        );
      }
    }
    const encoding = params.get('client_encoding');
    if (encoding !== undefined && !/^(utf-?8|unicode)$/i.test(encoding.replace(/['"]/g, ''))) {
      return this.fatal(
        '0A000',
        `agentgate: client_encoding "${encoding}" is not supported (the gateway analyses SQL as UTF8)`,
      );
    }
    const scs = params.get('standard_conforming_strings');
    if (scs !== undefined && !/^(on|true|yes|1)$/i.test(scs)) {
      return this.fatal(
        '0A000',
        'agentgate: standard_conforming_strings must stay on (the gateway analyses SQL as the server splits it)',
      );
    }
    if (!this.tls && !this.info.local && !this.shared.listener.allowCleartext) {
      return this.fatal(
        '28000',
        'agentgate: refusing a cleartext password over a non-TLS connection; connect with sslmode=require',
      );
    }
    this.state = { phase: 'password', params };
    this.client.write(encodeAuthenticationCleartextPassword());
  }

  private async handlePassword(message: Buffer, params: ReadonlyMap<string, string>): Promise<void> {
    const token = message.toString('utf8', 5, message.length - 1);
    let identity: Identity;
    try {
      identity = await this.shared.deps.identity.verifyToken(token);
    } catch (err) {
      this.log.info('postgres authentication failed', {
        listener: this.shared.listener.name,
        err: clientMessage(err),
      });
      return this.fatal(
        '28P01',
        `agentgate: password authentication failed for user "${params.get('user') ?? ''}"`,
      );
    }
    if (!this.shared.deps.identity.isAllowed(identity, this.shared.listener.allow)) {
      return this.fatal(
        '28000',
        `agentgate: identity "${identity.name}" is not allowed on listener ${this.shared.listener.name}`,
      );
    }
    this.identity = identity;
    const upstreamCfg = this.shared.listener.upstream;
    const requestedDb = params.get('database');
    if (
      upstreamCfg.database !== undefined &&
      requestedDb !== undefined &&
      requestedDb !== upstreamCfg.database &&
      requestedDb !== params.get('user')
    ) {
      return this.fatal(
        '3D000',
        `agentgate: listener ${this.shared.listener.name} serves database "${upstreamCfg.database}" only`,
      );
    }
    this.database = upstreamCfg.database ?? requestedDb ?? upstreamCfg.user;
    this.user = params.get('user') ?? identity.name;
    this.state = { phase: 'connecting' };
    await this.connect(params);
  }

  private async connect(params: ReadonlyMap<string, string>): Promise<void> {
    const { listener, deps } = this.shared;
    try {
      this.session = deps.sessions.open({
        listener: listener.name,
        protocol: 'postgres',
        identity: this.identity!,
        client: { ...this.info, tls: this.tls },
        detail: {
          database: this.database,
          user: this.user,
          application_name: params.get('application_name') ?? null,
        },
        signal: this.signal,
        log: this.log,
      });
    } catch (err) {
      this.log.error('cannot open a transcript session', { err });
      return this.fatal('53000', 'agentgate: the transcript store is unavailable; refusing the session');
    }
    this.signal.removeEventListener('abort', this.onShutdown);
    this.session.ended.addEventListener('abort', this.onSessionEnded, { once: true });
    const filter = this.buildFilter();
    if (!filter) return;
    this.filter = filter;
    this.analysis = await this.shared.analysis.openSession({
      upstream: listener.upstream,
      database: this.database,
      log: this.log,
    });

    const startup: Record<string, string> = { database: this.database };
    for (const [name, value] of params) if (name !== 'user' && name !== 'database') startup[name] = value;
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    this.signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.upstream = await openUpstream(listener.upstream, startup, abort.signal);
    } catch (err) {
      deps.metrics.upstreamError(listener.name, 'postgres', 'connect');
      if (err instanceof UpstreamRejected) {
        this.writeClient(err.errorMessage);
        return this.close({ kind: 'failed', message: `upstream refused: ${err.message}` });
      }
      this.log.warn('upstream connection failed', { err: (err as Error).message });
      return this.fatal('08006', 'agentgate: cannot connect to the upstream database');
    } finally {
      this.signal.removeEventListener('abort', onAbort);
    }
    if (this.state.phase === 'closed') {
      this.upstream.socket.destroy();
      return;
    }
    const socket = this.upstream.socket;
    this.upstreamSocket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onUpstreamData);
    socket.on('error', this.onUpstreamError);
    socket.on('close', this.onUpstreamClose);
    if (!(await this.prepareFilter(this.filter))) return;
    this.gatewayKey = this.shared.cancels.register({ cancel: () => this.cancel() });
    this.writeClient(encodeAuthenticationOk());
    for (const status of this.upstream.parameterStatus) {
      this.writeClient(this.filter.active ? this.filter.filter(0x53, status, { fields: null }) : status);
    }
    this.writeClient(encodeBackendKeyData(this.gatewayKey.processId, this.gatewayKey.secretKey));
    this.writeClient(encodeReadyForQuery(IDLE));
    this.state = { phase: 'relaying' };
    if (this.upstream.leftover) this.onUpstreamData(this.upstream.leftover);
    socket.resume();
  }

  /**
   * The result filter for this session's masker, as the masking rules stand now; undefined when the session was
   * ended because masking applies but cannot be done here.
   */
  private buildFilter(): ResultFilter | undefined {
    const { listener, deps } = this.shared;
    this.maskingGeneration = deps.masking.generation ?? 0;
    const masker = deps.masking.forSession(this.identity!, listener.name);
    if (!masker.active) return passThroughFilter;
    if (!this.shared.resultFilter) {
      this.fatal('0A000', 'agentgate: masking applies to this session but is not available for postgres');
      return undefined;
    }
    return this.shared.resultFilter({ masker, listener: listener.name, database: this.database });
  }

  /** Awaits the filter's preparation (its catalog); false when that failed and the session was ended. */
  private async prepareFilter(filter: ResultFilter): Promise<boolean> {
    if (filter.prepare) {
      try {
        await filter.prepare();
      } catch (err) {
        this.log.error('preparing result masking failed', { err });
        this.fatal('XX000', 'agentgate: masking could not be prepared for this session');
        return false;
      }
    }
    return !this.isClosed();
  }

  /**
   * Masking rules changed by a reload reach an open session here, before the first message sent once no answer
   * is outstanding: the old filter may hold state for answers still to come (row descriptions, plans), so it is
   * never swapped under them. A session that keeps a pipeline always busy picks the change up at its next pause.
   */
  private async refreshFilter(): Promise<void> {
    const filter = this.buildFilter();
    if (!filter || !(await this.prepareFilter(filter))) return;
    this.filter = filter;
    this.log.debug('masking rules changed: the session filters with the new ones', {
      session: this.session?.info.id,
    });
  }

  private get maskingChanged(): boolean {
    return (this.shared.deps.masking.generation ?? 0) !== this.maskingGeneration;
  }

  /** No answer from the upstream is still to come: every Query and Sync answered, no extended message since. */
  private get upstreamIdle(): boolean {
    return this.awaiting.length === 0 && this.current.entries.length === 0 && !this.unsynced;
  }

  /** A CancelRequest with this session's gateway key: withdraw a pending decision, cancel the running query. */
  private cancel(): void {
    if (this.deciding) this.session?.withdrawPending({ kind: 'cancelled' });
    const up = this.upstream;
    // Nothing forwarded is still running: a cancel sent upstream now would hit the client's next statement.
    if (!up || (this.awaiting.length === 0 && this.current.entries.length === 0)) return;
    const target = this.shared.listener.upstream;
    const controller = new AbortController();
    connectTcp(target.host, target.port, controller.signal)
      .then((socket) => {
        socket.on('error', () => socket.destroy());
        socket.end(encodeCancelRequest(up.processId, up.secretKey));
      })
      .catch((err: unknown) =>
        this.log.warn('forwarding a cancel request failed', { err: (err as Error).message }),
      );
  }

  // ---- relay: client → upstream --------------------------------------------------------------------------------

  private relayClientMessage(type: number, bytes: Buffer): Promise<void> | void {
    if (this.maskingChanged && this.upstreamIdle && type !== MSG.Terminate)
      return this.refreshFilter().then(() => {
        if (!this.isClosed()) return this.forwardClientMessage(type, bytes);
      });
    return this.forwardClientMessage(type, bytes);
  }

  private forwardClientMessage(type: number, bytes: Buffer): Promise<void> | void {
    if (type === MSG.Sync) this.unsynced = false;
    else if (EXTENDED_MESSAGES.has(type)) this.unsynced = true;
    if (this.discardUntilSync && type !== MSG.Sync) return;
    switch (type) {
      case MSG.Query:
        return this.onQuery(bytes);
      case MSG.Parse: {
        const parse = decodeParse(bytes);
        // A named statement cannot be redefined (the server answers 42P05), so the first text stays the decided one.
        if (parse.statementName === '') this.unnamedStatement = parse.text;
        else {
          const texts = this.statements.get(parse.statementName);
          if (texts === undefined) this.statements.set(parse.statementName, [parse.text]);
          else if (!texts.includes(parse.text)) texts.push(parse.text);
        }
        this.writeUpstream(bytes);
        return;
      }
      case MSG.Bind: {
        const bind = decodeBind(bytes);
        const unnamed = this.unnamedStatement;
        const texts =
          bind.statementName === ''
            ? unnamed === undefined
              ? []
              : [unnamed]
            : (this.statements.get(bind.statementName) ?? []);
        const live = bind.portal === '' ? undefined : this.portals.get(bind.portal);
        const merged = live === undefined ? texts : [...new Set([...live.texts, ...texts])];
        this.portals.set(bind.portal, {
          texts: merged,
          groupId: this.current.id,
          statementName: bind.statementName,
          params: bind.params,
          resultFormats: bind.resultFormats,
        });
        this.writeUpstream(bytes);
        return;
      }
      case MSG.Execute:
        return this.onExecute(bytes);
      case MSG.Close: {
        const { target, name } = decodeTarget(bytes);
        if (target === 'S') {
          if (name === '') this.unnamedStatement = undefined;
          else this.statements.delete(name);
        } else this.portals.delete(name);
        this.writeUpstream(bytes);
        return;
      }
      case MSG.Sync:
        this.discardUntilSync = false;
        this.closeGroup();
        this.writeUpstream(bytes);
        return;
      case MSG.Describe:
      case MSG.Flush:
      case MSG.CopyDone:
      case MSG.CopyFail:
        this.writeUpstream(bytes);
        return;
      case MSG.CopyData:
        this.session?.recorder.io('in', bytes.subarray(5), 'copy');
        this.writeUpstream(bytes);
        return;
      case MSG.FunctionCall:
        return this.onFunctionCall(bytes);
      case MSG.Terminate:
        this.terminated = true;
        this.writeUpstream(bytes);
        this.close({ kind: 'client-left', detail: 'the client terminated the session' });
        return;
      default:
        throw violation(`unexpected message type '${String.fromCharCode(type)}'`);
    }
  }

  private async onQuery(bytes: Buffer): Promise<void> {
    const text = decodeQuery(bytes);
    const { command, secrets } = await this.buildCommand([text], {});
    if (this.isClosed()) return;
    const verdict = await this.decide(command);
    if (verdict.allowed) {
      const check = this.filter.active ? await this.checkMasking([text]) : NO_MASKING_PLAN;
      if ('refusal' in check)
        return this.deny(
          { allowed: false, code: 'DENIED', message: check.refusal, commandSeq: verdict.commandSeq },
          true,
        );
      this.current.entries.push({
        tracker: new ResultTracker(verdict.commandSeq, this.shared.listener.recordRows, [], secrets),
        multiStatement: true,
        plan: check.plan,
      });
      this.closeGroup();
      this.writeUpstream(bytes);
    } else this.deny(verdict, true);
  }

  private async onExecute(bytes: Buffer): Promise<void> {
    const { portal } = decodeExecute(bytes);
    const info = this.portals.get(portal);
    const detail: Record<string, unknown> = {
      portal,
      statementName: info?.statementName ?? null,
      params: info?.params ?? [],
    };
    const { command, secrets } =
      info === undefined || info.texts.length === 0
        ? {
            command: this.unanalysableCommand(
              `Execute of unknown portal "${portal}"`,
              `EXECUTE PORTAL ${portal}`,
              detail,
            ),
            secrets: [],
          }
        : await this.buildCommand(info.texts, detail);
    if (this.isClosed()) return;
    const verdict = await this.decide(command);
    if (verdict.allowed) {
      const check = this.filter.active ? await this.checkMasking(info?.texts ?? []) : NO_MASKING_PLAN;
      if ('refusal' in check)
        return this.deny(
          { allowed: false, code: 'DENIED', message: check.refusal, commandSeq: verdict.commandSeq },
          false,
        );
      this.current.entries.push({
        tracker: new ResultTracker(
          verdict.commandSeq,
          this.shared.listener.recordRows,
          info?.resultFormats ?? [],
          secrets,
        ),
        multiStatement: false,
        plan: check.plan,
      });
      this.writeUpstream(bytes);
    } else this.deny(verdict, false);
  }

  /**
   * Fastpath FunctionCall carries only a function OID and opaque arguments, so it cannot be analysed like SQL.
   * It is put to the gate as a `FUNCTION CALL` statement naming the OID; it goes through only when an explicit
   * allow rule matched. When the gate allowed it merely by default, it is asked again as unanalysable, so the
   * gate records (and counts) the denial itself: deny-by-default for an opaque call, decided in one place.
   */
  private async onFunctionCall(bytes: Buffer): Promise<void> {
    const oid = String(decodeFunctionCallOid(bytes));
    const statement: SqlStatementFacts = {
      command: 'FUNCTION CALL',
      tables: [],
      functions: [oid],
      unfilteredWrite: false,
      text: `FUNCTION CALL ${oid}`,
      dynamic: false,
    };
    const command: PostgresCommand = {
      protocol: 'postgres',
      text: statement.text,
      statements: [statement],
      detail: this.detail({ functionOid: oid }),
    };
    let verdict = await this.decide(command);
    if (verdict.allowed && verdict.rule === undefined && verdict.approvalId === undefined) {
      verdict = await this.decide({
        ...command,
        unanalysable: 'fastpath FunctionCall: arguments are opaque; only an explicit allow rule admits it',
      });
    }
    if (verdict.allowed) {
      this.current.entries.push({
        tracker: new ResultTracker(verdict.commandSeq, this.shared.listener.recordRows),
        multiStatement: false,
      });
      this.closeGroup();
      this.writeUpstream(bytes);
    } else this.deny(verdict, true);
  }

  /** The masking filter's say on an allowed statement: a refusal, or the plan for its results. */
  private async checkMasking(texts: readonly string[]): Promise<StatementCheckResult> {
    const check = this.filter.checkStatement;
    if (!this.filter.active || !check) return { plan: undefined };
    // A prepared name the gateway is unsure of carries every text it has seen: the filter merges all their plans
    // conservatively (an array), so whichever text the server runs, its masked outputs are covered.
    const plans: unknown[] = [];
    for (const text of texts) {
      let result: StatementCheckResult;
      try {
        result = await check.call(this.filter, text);
      } catch (err) {
        this.log.error('masking check failed', { err });
        return { refusal: 'agentgate: refused: the result could not be checked for masked columns' };
      }
      if ('refusal' in result) return result;
      plans.push(result.plan);
    }
    return { plan: plans.length <= 1 ? plans[0] : plans };
  }

  private detail(extra: Record<string, unknown>): Record<string, unknown> {
    return { database: this.database, user: this.user, ...extra };
  }

  /**
   * The command for `texts` (Bind `params` in `extra`), analysed, with what the record carries of it, and the
   * credential values it holds (its recorded results leave them out).
   */
  private async buildCommand(
    texts: readonly string[],
    extra: Record<string, unknown>,
  ): Promise<{ command: PostgresCommand; secrets: readonly string[] }> {
    const params = extra['params'] as readonly unknown[] | undefined;
    const a = await this.analysis!.analyze(texts, params, this.current.id);
    const command: PostgresCommand = {
      protocol: 'postgres',
      text: texts.join(';\n'),
      statements: a.statements,
      unknownMatchesAll: this.shared.listener.dynamicSql === 'match-all',
      detail: this.detail(a.recordedParams === undefined ? extra : { ...extra, params: a.recordedParams }),
      ...(a.recordedText === undefined ? {} : { recordedText: a.recordedText }),
      ...(a.unanalysable === undefined ? {} : { unanalysable: a.unanalysable }),
    };
    return { command, secrets: a.secrets ?? [] };
  }

  private unanalysableCommand(reason: string, text: string, extra: Record<string, unknown>): PostgresCommand {
    return { protocol: 'postgres', text, statements: [], unanalysable: reason, detail: this.detail(extra) };
  }

  /** Ask the gate; the client's later messages wait in the inbox meanwhile (a CancelRequest withdraws it). */
  private async decide(command: PostgresCommand): Promise<Verdict> {
    this.deciding = true;
    try {
      return await this.session!.decide(command);
    } finally {
      this.deciding = false;
    }
  }

  /**
   * Replace the denied message with the failing stand-in, whose error the gateway's replaces (relayUpstreamRegion).
   * In the extended protocol the client's messages up to its own Sync are discarded, as the server does after an
   * error.
   */
  private deny(verdict: Extract<Verdict, { allowed: false }>, closesGroup: boolean): void {
    const code = refusalSqlState(verdict);
    const error = encodeErrorResponse('ERROR', code, verdict.message);
    if (verdict.commandSeq !== undefined) {
      try {
        this.session?.recorder.append('result', {
          commandSeq: verdict.commandSeq,
          error: { code, message: verdict.message },
        });
      } catch (err) {
        this.log.warn('recording a denial result failed', { err });
      }
    }
    if (this.current.injectError === null) this.current.injectError = error;
    this.current.entries.push({
      tracker: new ResultTracker(undefined, 0),
      multiStatement: false,
      probe: true,
    });
    if (closesGroup) {
      this.closeGroup();
      this.writeUpstream(DENIED_PROBE_QUERY);
    } else {
      this.writeUpstream(DENIED_PROBE_PARSE);
      this.discardUntilSync = true;
    }
  }

  /** Re-reads the state after an await (the connection may have closed meanwhile). */
  private isClosed(): boolean {
    return this.state.phase === 'closed';
  }

  private newGroup(): ResponseGroup {
    return newGroupWithId(++this.groupIds);
  }

  private closeGroup(): void {
    this.awaiting.push(this.current);
    this.current = this.newGroup();
  }

  // ---- relay: upstream → client --------------------------------------------------------------------------------

  private readonly onUpstreamData = (chunk: Buffer): void => {
    try {
      const region = this.upstreamFramer.push(chunk);
      if (region === null) return;
      this.shared.bytes.upstreamToClient += region.length;
      this.relayUpstreamRegion(region);
    } catch (err) {
      this.log.error('upstream relay failed', { err });
      this.fatal('08006', 'agentgate: invalid data from the upstream database');
    }
  };

  /**
   * Scans the complete messages in place; forwards the region with as few writes as possible (split only where a
   * message is rewritten or a gateway message is inserted).
   */
  private relayUpstreamRegion(region: Buffer): void {
    let pending = 0; // start of bytes not yet written
    let offset = 0;
    const filtering = this.filter.active;
    while (offset < region.length) {
      const type = region[offset]!;
      const end = offset + 1 + region.readInt32BE(offset + 1);
      const group = this.awaiting[0] ?? this.current;
      const entry = group.entries[group.index];
      if (type === 0x45 && entry?.probe && isProbeError(region, offset, end)) {
        // 'E' of the stand-in for a denied command, where the command stood: the client gets the gateway's error.
        // (An error of the client's own, e.g. a Parse failing between an answered Execute and the denied one, is
        // relayed as it is: the server then skipped the stand-in, as it would have skipped the denied command.)
        if (offset > pending) this.writeClient(region.subarray(pending, offset));
        if (group.injectError !== null) this.writeClient(group.injectError);
        group.injectError = null;
        pending = end;
        group.index++;
        offset = end;
        continue;
      }
      if (filtering && isFilteredType(type)) {
        const original = region.subarray(offset, end);
        const out = this.filter.filter(type, original, {
          fields: entry?.tracker.currentFields ?? group.describedFields,
          plan: entry?.plan,
        });
        if (out !== original) {
          if (offset > pending) this.writeClient(region.subarray(pending, offset));
          this.writeClient(out);
          pending = end;
          this.observe(type, out, 0, out.length, group);
          offset = end;
          continue;
        }
      }
      if (type === 0x5a && group.injectError !== null && !group.upstreamError) {
        // 'Z' closing a group whose denied command's stand-in never answered (not expected; kept as a safety net):
        // the gateway's error still goes before it.
        if (offset > pending) this.writeClient(region.subarray(pending, offset));
        this.writeClient(group.injectError);
        pending = offset;
      }
      this.observe(type, region, offset, end, group);
      offset = end;
    }
    if (pending < region.length) this.writeClient(pending === 0 ? region : region.subarray(pending));
  }

  /** Bookkeeping for one upstream message: results, transaction status, groups. */
  private observe(type: number, buf: Buffer, start: number, end: number, group: ResponseGroup): void {
    const entry = group.entries[group.index];
    switch (type) {
      case 0x44: // 'D' DataRow — the hot path: only counted once the recording cap is reached
        entry?.tracker.dataRow(buf, start);
        return;
      case 0x54: // 'T' RowDescription
        if (entry) entry.tracker.setRowDescription(buf, start, end);
        else {
          const probe = new ResultTracker(undefined, 0);
          probe.setRowDescription(buf, start, end);
          group.describedFields = probe.currentFields;
        }
        return;
      case 0x43: // 'C' CommandComplete
        this.finishEntry(group, { commandTag: decodeCommandTag(buf, start, end) });
        return;
      case 0x49: // 'I' EmptyQueryResponse
        this.finishEntry(group, { commandTag: '' });
        return;
      case 0x73: // 's' PortalSuspended
        this.finishEntry(group, { suspended: true });
        return;
      case 0x56: // 'V' FunctionCallResponse
        this.finishEntry(group, {});
        return;
      case 0x45: {
        // 'E' ErrorResponse
        const fields = decodeErrorFields(buf, start, end);
        group.upstreamError = true;
        this.finishEntry(group, { error: { code: fields.get('C') ?? '', message: fields.get('M') ?? '' } });
        // In the extended protocol the server now skips the group's remaining Executes.
        if (entry && !entry.multiStatement) group.index = group.entries.length;
        return;
      }
      case 0x64: // 'd' CopyData (COPY TO STDOUT)
        this.session?.recorder.io('out', buf.subarray(start + 5, end), 'copy');
        return;
      case 0x5a: // 'Z' ReadyForQuery
        this.txStatus = buf[start + 5]!;
        if (this.txStatus === IDLE) this.analysis?.transactionEnded(group.id);
        if (this.txStatus === IDLE && this.portals.size > 0) {
          // The transaction ended, and with it every portal bound up to this group (docs "Extended Query").
          for (const [name, portal] of this.portals)
            if (portal.groupId <= group.id) this.portals.delete(name);
        }
        if (this.awaiting.length > 0) this.awaiting.shift();
        if (this.shuttingDown && this.awaiting.length === 0 && !this.deciding) {
          process.nextTick(() => this.fatal('57P01', 'agentgate: the gateway is shutting down', SHUTDOWN));
        }
        return;
      case 0x53: {
        // 'S' ParameterStatus: a server-side change of how text is split would invalidate the analysis.
        const [name, value] = decodeParameterStatus(buf, start, end);
        if (
          (name === 'client_encoding' && value.toUpperCase() !== 'UTF8') ||
          (name === 'standard_conforming_strings' && value !== 'on')
        ) {
          process.nextTick(() =>
            this.fatal(
              '0A000',
              `agentgate: ${name} changed to ${value}; the session cannot be analysed safely`,
            ),
          );
        }
        return;
      }
      default:
        return;
    }
  }

  private finishEntry(group: ResponseGroup, outcome: Parameters<ResultTracker['finish']>[4]): void {
    const entry = group.entries[group.index];
    if (!entry || !this.session) return;
    if (!entry.multiStatement) entry.tracker.adoptFields(group.describedFields);
    entry.tracker.finish(
      this.session.recorder,
      this.shared.deps.metrics,
      this.shared.listener.name,
      this.log,
      outcome,
    );
    if (!entry.multiStatement) {
      group.index++;
      group.describedFields = null;
    }
  }

  private readonly onUpstreamError = (err: Error): void => {
    this.log.warn('upstream socket error', { err: err.message });
  };

  private readonly onUpstreamClose = (): void => {
    if (this.state.phase === 'closed' || this.terminated) return;
    this.shared.deps.metrics.upstreamError(this.shared.listener.name, 'postgres', 'lost');
    this.fatal('08006', 'agentgate: the upstream database connection was lost');
  };

  // ---- ending ----------------------------------------------------------------------------------------------------

  private fail(err: unknown): void {
    if (isAgentgateError(err, 'PROTOCOL_VIOLATION')) {
      this.log.info('protocol violation', { listener: this.shared.listener.name, err: err.message });
      return this.fatal('08P01', err.message);
    }
    this.log.error('postgres session failed', { err });
    this.fatal('XX000', clientMessage(err));
  }

  /**
   * Send a FATAL ErrorResponse (PostgreSQL docs: the server closes the connection after FATAL) and close. The
   * session ends for the cause it was told to end for, if any; otherwise for `cause` (default: this failure).
   */
  private fatal(sqlstate: string, message: string, cause?: EndCause): void {
    if (this.state.phase === 'closed') return;
    this.writeClient(encodeErrorResponse('FATAL', sqlstate, message));
    this.close(cause ?? { kind: 'failed', message });
  }

  /** End the connection: the pending decision is withdrawn and the session closes with `cause`. */
  close(cause: EndCause): void {
    if (this.state.phase === 'closed') return;
    this.state = { phase: 'closed' };
    this.signal.removeEventListener('abort', this.onShutdown);
    if (this.gatewayKey) this.shared.cancels.unregister(this.gatewayKey.processId, this.gatewayKey.secretKey);
    const up = this.upstreamSocket;
    if (up) {
      this.upstreamOut.flush();
      up.off('close', this.onUpstreamClose);
      if (!this.terminated && !up.destroyed) up.end(encodeTerminate());
      else up.end();
      setTimeout(() => up.destroy(), 1000).unref();
    }
    this.analysis?.close();
    this.clientOut.flush();
    this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.session?.end(cause);
    this.done();
  }
}

function newGroupWithId(id: number): ResponseGroup {
  return { id, entries: [], index: 0, injectError: null, describedFields: null, upstreamError: false };
}

/** RowDescription, DataRow, CopyData, ErrorResponse, NoticeResponse, NotificationResponse, ParameterStatus. */
function isFilteredType(type: number): boolean {
  return (
    type === 0x54 ||
    type === 0x44 ||
    type === 0x64 ||
    type === 0x45 ||
    type === 0x4e ||
    type === 0x41 ||
    type === 0x53
  );
}

function violation(message: string): AgentgateError {
  return new AgentgateError('PROTOCOL_VIOLATION', `agentgate: protocol violation: ${message}`);
}

/**
 * A refusal's SQLSTATE: a store that cannot record is 53100 disk_full or 58030 io_error, never a policy denial
 * (42501 insufficient_privilege).
 */
function refusalSqlState(verdict: Extract<Verdict, { allowed: false }>): string {
  if (verdict.code === 'INTERNAL') return 'XX000';
  if (verdict.code !== 'RECORDING_FAILED') return '42501';
  return verdict.recordingFailure === 'disk-full' ? '53100' : '58030';
}
