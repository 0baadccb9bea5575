/**
 * The relaying phase of a connection: every Query, Execute (by its portal's texts, with its Bind parameters) and
 * FunctionCall is put to the gate before its bytes go upstream; the upstream's answers are followed per response
 * group (response-groups.ts) to record results and to put the gateway's refusals where the server would have put
 * its errors.
 */
import {
  SHUTDOWN,
  appendedSeq,
  type ApprovalWait,
  type DecisionHooks,
  type EndCause,
  type GatedSession,
  type SqlResultBody,
  type Verdict,
} from '@agentgate/core';
import type { SessionAnalysis } from './analysis.js';
import { BackendFramer } from './codec/backend-framer.js';
import {
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeCancelRequest,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeReadyForQuery,
} from './codec/encode.js';
import {
  decodeBind,
  decodeExecute,
  decodeFunctionCallOid,
  decodeParse,
  decodeQuery,
  decodeTarget,
} from './codec/frontend-decode.js';
import { BackendMessage, FrontendMessage, TransactionStatus } from './codec/message-types.js';
import type { ClientRelay } from './client-relay.js';
import {
  FASTPATH_UNANALYSABLE,
  analysedCommand,
  fastpathCommand,
  refusalSqlState,
  unknownPortalCommand,
  type AnalysedCommand,
  type CommandContext,
  type PortalDetail,
} from './commands.js';
import type { EngineShared } from './engine-shared.js';
import { ExtendedQueryState } from './extended-query.js';
import {
  DENIED_PROBE_PARSE,
  DENIED_PROBE_QUERY,
  ResponseGroups,
  type ResponseSink,
  type ResultOutcome,
} from './response-groups.js';
import type { ResultFilter, StatementCheckResult } from './result-filter.js';
import { ResultTracker } from './result-tracker.js';
import type { SessionMasking } from './session-masking.js';
import type { Login } from './startup.js';
import { connectTcp, type UpstreamConnection } from './upstream.js';
import { protocolViolation } from './violation.js';

/** What the relay needs of the session around it. */
export interface RelayContext {
  readonly shared: EngineShared;
  readonly io: ClientRelay;
  readonly session: GatedSession;
  readonly analysis: SessionAnalysis;
  readonly masking: SessionMasking;
  readonly upstream: UpstreamConnection;
  readonly login: Login;
  /** End the connection with a FATAL (`cause` defaults to a failure with this message). */
  fatal(sqlstate: string, message: string, cause?: EndCause): void;
  close(cause: EndCause): void;
  /** Asked after every await: the connection may have closed meanwhile. */
  readonly connection: { isClosed(): boolean };
}

const NO_PLAN: StatementCheckResult = { plan: undefined };
const NO_FORMATS: readonly number[] = [];
type Denial = Extract<Verdict, { allowed: false }>;

export class Relay implements ResponseSink {
  private readonly groups: ResponseGroups;
  private readonly extended = new ExtendedQueryState();
  private readonly framer = new BackendFramer();
  private readonly commands: CommandContext;
  private deciding = false;
  private shuttingDown = false;
  /** Result bodies of statements finished in the region being relayed, appended after the client's write. */
  private results: SqlResultBody[] = [];
  /**
   * The client sent Terminate. The server answers everything read before it and then closes: the session ends at
   * that close (PgSession.onUpstreamClose), so those answers still reach the client and the record.
   */
  terminated = false;

  constructor(private readonly ctx: RelayContext) {
    this.commands = {
      analysis: ctx.analysis,
      unknownMatchesAll: ctx.shared.listener.dynamicSql === 'match-all',
      database: ctx.login.database,
      user: ctx.login.user,
    };
    // The relay is the groups' sink: its methods are shared by every session, so V8's optimised code for the
    // groups does not depend on one session's closures (a closure per session made it deoptimise on the next).
    this.groups = new ResponseGroups(this);
  }

  // ---- the response groups' sink (ResponseSink) ------------------------------------------------------------------

  get filter(): ResultFilter {
    return this.ctx.masking.filter;
  }

  writeClient(buf: Buffer): void {
    this.ctx.io.writeClient(buf);
  }

  finished(tracker: ResultTracker, outcome: ResultOutcome): void {
    const { shared } = this.ctx;
    this.results.push(tracker.complete(shared.deps.metrics, shared.listener.name, outcome));
  }

  copyOut(data: Buffer): void {
    // Recorded in the order received: a finished statement's result before the next one's copy data.
    this.recordResults();
    this.ctx.session.recorder.io('out', data, 'copy');
    this.waitForCommits('upstream');
  }

  readyForQuery(status: number, groupId: number): void {
    if (status === TransactionStatus.Idle) {
      this.ctx.analysis.transactionEnded(groupId);
      // The transaction ended, and with it every portal bound up to this group (docs "Extended Query").
      this.extended.transactionEnded(groupId);
    }
    if (this.shuttingDown && this.quiet) process.nextTick(() => this.endForShutdown());
  }

  parameterChanged(name: string, value: string): void {
    // A server-side change of how text is split would invalidate the analysis.
    if (
      (name === 'client_encoding' && value.toUpperCase() !== 'UTF8') ||
      (name === 'standard_conforming_strings' && value !== 'on')
    ) {
      process.nextTick(() =>
        this.ctx.fatal(
          '0A000',
          `agentgate: ${name} changed to ${value}; the session cannot be analysed safely`,
        ),
      );
    }
  }

  /** Tell the client it is in (the upstream's settings, the gateway's cancel key) and start relaying. */
  start(gatewayKey: { readonly processId: number; readonly secretKey: number }): void {
    const { io, upstream, masking } = this.ctx;
    io.writeClient(encodeAuthenticationOk());
    const filter = masking.filter;
    for (const status of upstream.parameterStatus)
      io.writeClient(
        filter.active ? filter.filter(BackendMessage.ParameterStatus, status, { fields: null }) : status,
      );
    io.writeClient(encodeBackendKeyData(gatewayKey.processId, gatewayKey.secretKey));
    io.writeClient(encodeReadyForQuery(TransactionStatus.Idle));
    if (upstream.leftover) this.ctx.shared.bytes.upstreamToClient += this.upstreamData(upstream.leftover);
    io.startUpstream();
  }

  /** Terminated and waiting for the server's close; a shutdown does not wait for it. */
  get awaitingUpstreamEnd(): boolean {
    return this.terminated && !this.shuttingDown;
  }

  /** No answer is due and no decision pending: a shutdown can end the connection now. */
  private get quiet(): boolean {
    return this.groups.pendingGroups === 0 && !this.deciding;
  }

  /** Gateway shutdown: the pending decision is withdrawn (by the session), the answers still due are relayed. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.quiet) this.endForShutdown();
  }

  private endForShutdown(): void {
    this.ctx.fatal('57P01', 'agentgate: the gateway is shutting down', SHUTDOWN);
  }

  /**
   * Bytes from the upstream: complete messages are relayed, in one client write at the end of the read, and a
   * partial one waits for the rest. The results they finish are recorded once that write is out, so recording them
   * is not part of the client's wait.
   */
  upstreamData(chunk: Buffer): number {
    const region = this.framer.push(chunk);
    if (region === null) return 0;
    const { io } = this.ctx;
    io.holdClient();
    try {
      this.groups.relay(region);
    } finally {
      io.releaseClient();
    }
    this.recordResults();
    return region.length;
  }

  /** Append the `result` events of the statements finished since the last call. */
  private recordResults(): void {
    if (this.results.length === 0) return;
    const { session } = this.ctx;
    const results = this.results;
    this.results = [];
    for (const body of results) {
      try {
        appendedSeq(session.recorder, 'result', body);
      } catch (err) {
        session.log.warn('recording a result failed', { err });
      }
    }
  }

  /** A CancelRequest with this session's gateway key: withdraw a pending decision, cancel the running query. */
  cancel(): void {
    if (this.deciding) this.ctx.session.withdrawPending({ kind: 'cancelled' });
    // Nothing forwarded is still running: a cancel sent upstream now would hit the client's next statement.
    if (this.groups.idle) return;
    const { upstream, shared, session } = this.ctx;
    const target = shared.listener.upstream;
    connectTcp(target.host, target.port, new AbortController().signal)
      .then((socket) => {
        socket.on('error', () => socket.destroy());
        socket.end(encodeCancelRequest(upstream.processId, upstream.secretKey));
      })
      .catch((err: unknown) =>
        session.log.warn('forwarding a cancel request failed', { err: (err as Error).message }),
      );
  }

  /**
   * One client message. Masking rules changed by a reload reach the session here, before the first message sent
   * once no answer is outstanding: the old filter may hold state for answers still to come (row descriptions,
   * plans), so it is never swapped under them. A session that keeps a pipeline always busy picks the change up at
   * its next pause.
   */
  message(type: number, bytes: Buffer): Promise<void> | void {
    const upstreamIdle = this.groups.idle && !this.extended.unsynced;
    if (this.ctx.masking.changed && upstreamIdle && type !== FrontendMessage.Terminate)
      return this.reloadMasking().then(() => {
        if (!this.ctx.connection.isClosed()) return this.forward(type, bytes);
      });
    return this.forward(type, bytes);
  }

  private async reloadMasking(): Promise<void> {
    const refusal = await this.ctx.masking.load();
    if (refusal) return this.ctx.fatal(refusal.sqlstate, refusal.message);
    this.ctx.session.log.debug('masking rules changed: the session filters with the new ones');
  }

  private forward(type: number, bytes: Buffer): Promise<void> | void {
    // The server reads nothing after Terminate.
    if (this.terminated || !this.extended.admit(type)) return;
    const { io } = this.ctx;
    switch (type) {
      case FrontendMessage.Query:
        return this.onQuery(bytes);
      case FrontendMessage.Parse:
        this.extended.parsed(decodeParse(bytes));
        return io.writeUpstream(bytes);
      case FrontendMessage.Bind:
        this.extended.bound(decodeBind(bytes), this.groups.currentId);
        return io.writeUpstream(bytes);
      case FrontendMessage.Execute:
        return this.onExecute(bytes);
      case FrontendMessage.Close: {
        const { target, name } = decodeTarget(bytes, 'Close');
        this.extended.closed(target, name);
        return io.writeUpstream(bytes);
      }
      case FrontendMessage.Sync:
        this.groups.close();
        return io.writeUpstream(bytes);
      case FrontendMessage.Describe:
      case FrontendMessage.Flush:
      case FrontendMessage.CopyDone:
      case FrontendMessage.CopyFail:
        return io.writeUpstream(bytes);
      case FrontendMessage.CopyData:
        this.ctx.session.recorder.io('in', bytes.subarray(5), 'copy');
        this.waitForCommits('client');
        return io.writeUpstream(bytes);
      case FrontendMessage.FunctionCall:
        return this.onFunctionCall(bytes);
      case FrontendMessage.Terminate:
        this.terminated = true;
        io.writeUpstream(bytes);
        return;
      default:
        throw protocolViolation(`unexpected message type '${String.fromCharCode(type)}'`);
    }
  }

  /** COPY data read from `side` waits for commits beyond the store's bound: stop reading it until they catch up. */
  private waitForCommits(side: 'client' | 'upstream'): void {
    const caughtUp = this.ctx.session.recorder.ioBackpressure?.();
    if (caughtUp !== undefined) this.ctx.io.holdForRecording(side, caughtUp);
  }

  private onQuery(bytes: Buffer): Promise<void> | void {
    const text = decodeQuery(bytes);
    const texts = [text];
    const analysed = analysedCommand(this.commands, texts, undefined, this.groups.currentId);
    if (analysed instanceof Promise)
      return analysed.then((a) => {
        if (!this.ctx.connection.isClosed()) return this.decideStatement(bytes, texts, a, undefined);
      });
    return this.decideStatement(bytes, texts, analysed, undefined);
  }

  private onExecute(bytes: Buffer): Promise<void> | void {
    const { portal } = decodeExecute(bytes);
    const info = this.extended.portal(portal);
    const detail: PortalDetail = {
      portal,
      statementName: info?.statementName ?? null,
      params: info?.params ?? [],
    };
    const texts = info?.texts ?? [];
    const analysed =
      texts.length === 0
        ? unknownPortalCommand(this.commands, detail)
        : analysedCommand(this.commands, texts, detail, this.groups.currentId);
    const resultFormats = info?.resultFormats ?? NO_FORMATS;
    if (analysed instanceof Promise)
      return analysed.then((a) => {
        if (!this.ctx.connection.isClosed()) return this.decideStatement(bytes, texts, a, resultFormats);
      });
    return this.decideStatement(bytes, texts, analysed, resultFormats);
  }

  /**
   * Ask the gate about a Query (`resultFormats` undefined) or an Execute (its portal's result formats), then check masking and forward it.
   * Each step returns a promise only when it must wait (the catalog, a commit, an approval, masking's catalog
   * check), so a statement that waits for nothing is decided and forwarded in the turn its bytes came in.
   */
  private decideStatement(
    bytes: Buffer,
    texts: readonly string[],
    analysed: AnalysedCommand,
    resultFormats: readonly number[] | undefined,
  ): Promise<void> | void {
    this.deciding = true;
    let verdict: Verdict | Promise<Verdict>;
    try {
      verdict = this.ctx.session.decideNow(analysed.command, undefined, this.decisionHooks);
    } catch (err) {
      this.deciding = false;
      throw err;
    }
    if (verdict instanceof Promise)
      return verdict.then(
        (v) => {
          this.deciding = false;
          return this.allowStatement(bytes, texts, analysed.secrets, resultFormats, v);
        },
        (err: unknown) => {
          this.deciding = false;
          throw err;
        },
      );
    this.deciding = false;
    return this.allowStatement(bytes, texts, analysed.secrets, resultFormats, verdict);
  }

  private allowStatement(
    bytes: Buffer,
    texts: readonly string[],
    secrets: readonly string[],
    resultFormats: readonly number[] | undefined,
    verdict: Verdict,
  ): Promise<void> | void {
    const query = resultFormats === undefined;
    if (!verdict.allowed) return this.deny(verdict, query);
    const checking = this.checkMasking(texts);
    if (checking instanceof Promise)
      return checking.then((check) => this.forwardStatement(bytes, secrets, resultFormats, verdict, check));
    return this.forwardStatement(bytes, secrets, resultFormats, verdict, checking);
  }

  private forwardStatement(
    bytes: Buffer,
    secrets: readonly string[],
    resultFormats: readonly number[] | undefined,
    verdict: Extract<Verdict, { allowed: true }>,
    check: StatementCheckResult,
  ): void {
    const query = resultFormats === undefined;
    if ('refusal' in check) return this.deny(maskingRefusal(check.refusal, verdict.commandSeq), query);
    if (this.ctx.connection.isClosed()) return this.recordNotForwarded(verdict.commandSeq);
    const { recordRows } = this.ctx.shared.listener;
    this.groups.expect({
      tracker: new ResultTracker(verdict.commandSeq, recordRows, resultFormats, secrets),
      multiStatement: query,
      plan: check.plan,
    });
    if (query) this.groups.close();
    this.ctx.io.writeUpstream(bytes);
  }

  /**
   * A fastpath FunctionCall goes through only when an explicit allow rule matched its OID. When the gate allowed
   * it merely by default, it is asked again as unanalysable, so the gate records (and counts) the denial itself:
   * deny-by-default for an opaque call, decided in one place.
   */
  private async onFunctionCall(bytes: Buffer): Promise<void> {
    const command = fastpathCommand(this.commands, String(decodeFunctionCallOid(bytes)));
    let verdict = await this.decide(command);
    if (verdict.allowed && verdict.rule === undefined && verdict.approvalId === undefined)
      verdict = await this.decide({ ...command, unanalysable: FASTPATH_UNANALYSABLE });
    if (!verdict.allowed) return this.deny(verdict, true);
    if (this.ctx.connection.isClosed()) return this.recordNotForwarded(verdict.commandSeq);
    this.groups.expect({
      tracker: new ResultTracker(verdict.commandSeq, this.ctx.shared.listener.recordRows),
      multiStatement: false,
    });
    this.groups.close();
    this.ctx.io.writeUpstream(bytes);
  }

  /** A plain value when no masking applies: the callers await only a promise (an await is a microtask turn). */
  private checkMasking(texts: readonly string[]): Promise<StatementCheckResult> | StatementCheckResult {
    return this.ctx.masking.filter.active ? this.ctx.masking.check(texts) : NO_PLAN;
  }

  /** A held statement tells its client it waits (psql prints the NOTICE); messages are whole, so any time is safe. */
  private readonly decisionHooks: DecisionHooks = {
    onWaiting: (wait: ApprovalWait): void => {
      this.ctx.io.holdUpstream(false);
      if (!this.ctx.connection.isClosed())
        this.ctx.io.writeClient(encodeNoticeResponse('00000', wait.message));
    },
  };

  /**
   * Ask the gate; the client's later messages wait in the inbox meanwhile (a CancelRequest withdraws it). onQuery and
   * onExecute, run for every statement, do the same inline: one async function and promise turn fewer each.
   */
  private async decide(command: AnalysedCommand['command']): Promise<Verdict> {
    this.deciding = true;
    try {
      return await this.ctx.session.decide(command, undefined, this.decisionHooks);
    } finally {
      this.deciding = false;
    }
  }

  /**
   * The decision waited (an approval, a catalog lookup) and the client left meanwhile: the statement is not
   * forwarded, and its result says so, so the record does not show an allowed command that seemingly ran.
   */
  private recordNotForwarded(commandSeq: number | undefined): void {
    if (commandSeq === undefined) return;
    this.ctx.session.record('result', {
      commandSeq,
      error: { code: CLIENT_GONE_SQLSTATE, message: CLIENT_GONE_MESSAGE },
    });
  }

  /**
   * Replace the denied message with the failing stand-in, whose error the gateway's replaces (response-groups.ts).
   * In the extended protocol the client's messages up to its own Sync are discarded, as the server does after an
   * error.
   */
  private deny(verdict: Denial, closesGroup: boolean): void {
    const code = refusalSqlState(verdict);
    if (verdict.commandSeq !== undefined)
      this.ctx.session.record('result', {
        commandSeq: verdict.commandSeq,
        error: { code, message: verdict.message },
      });
    this.groups.expectDenial(encodeErrorResponse('ERROR', code, verdict.message));
    if (closesGroup) {
      this.groups.close();
      this.ctx.io.writeUpstream(DENIED_PROBE_QUERY);
    } else {
      this.ctx.io.writeUpstream(DENIED_PROBE_PARSE);
      this.extended.discardUntilSync();
    }
  }
}

/** connection_failure: nobody received it; the record's reader sees why the allowed statement has no answer. */
const CLIENT_GONE_SQLSTATE = '08006';
const CLIENT_GONE_MESSAGE = 'agentgate: the client left before the statement was forwarded; it did not run';

function maskingRefusal(message: string, commandSeq: number | undefined): Denial {
  return { allowed: false, code: 'DENIED', message, ...(commandSeq === undefined ? {} : { commandSeq }) };
}
