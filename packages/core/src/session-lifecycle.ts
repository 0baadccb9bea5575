/**
 * The lifecycle every engine's session shares, written once: opening the recorded session for an authenticated
 * identity, deciding commands through the gate (one mapping of a failing gate to a refusal), and the one `ended`
 * signal that says when and why the session must end — its credential expired or was revoked, the store lost its
 * recording, the gateway shuts down, or an administrator ended it. Each cause is recorded and logged once here; the
 * engine only renders the end natively (a FATAL, an SSH disconnect, a cut HTTP stream) and calls `end`.
 */
import type { DecisionHooks } from './approvals.js';
import type { Command } from './command.js';
import { AgentgateError, isAgentgateError } from './errors.js';
import { recordingRefusal, type Gate, type GateSession, type Verdict } from './gate.js';
import type { Identity } from './identity.js';
import { newId } from './ids.js';
import { setMaxListeners } from 'node:events';
import { type LinkedSignal, linkSignals } from './linked-signal.js';
import type { Logger } from './log.js';
import type { SessionMetrics } from './metrics.js';
import type { ClientInfo, SessionInfo } from './session.js';
import type { Protocol } from './command.js';
import {
  CLIENT_LEFT,
  SHUTDOWN,
  causeOf,
  describeCause,
  type EndCause,
  type Termination,
  type WithdrawCause,
} from './session-end.js';
import { appendedSeq, type SessionRecorder, type TranscriptWriter } from './transcript.js';
import type {
  AppendableEventType,
  EventBody,
  SessionEndBody,
  SessionStartDetail,
} from './transcript-events.js';

export interface SessionLifecycleDeps {
  readonly gate: Gate;
  readonly transcript: TranscriptWriter;
  readonly metrics: SessionMetrics;
}

export interface OpenSessionOptions {
  readonly listener: string;
  readonly protocol: Protocol;
  /** The authenticated identity, already checked against the listener's `allow`. */
  readonly identity: Identity;
  readonly client: ClientInfo;
  /** Protocol details recorded with `session.start`. */
  readonly detail?: SessionStartDetail;
  /**
   * The connection's signal (`ProtocolEngine.handle`): when it aborts, the session must end for the cause it names
   * (gateway shutdown when it names none).
   */
  readonly signal: AbortSignal;
  /** The engine's logger; the session logs through a child naming the session and the identity. */
  readonly log: Logger;
}

/** One open session, as an engine drives it. */
export interface GatedSession {
  /** Replaced by `continueAs`; read it when deciding, not once. */
  readonly info: SessionInfo;
  readonly recorder: SessionRecorder;
  readonly log: Logger;
  /**
   * Aborts once, when the session must end; `reason` is the EndCause. It also aborts when `end` is called, so
   * whatever waits on it (a held approval) is withdrawn with the session's cause.
   */
  readonly ended: AbortSignal;
  /**
   * Decide one command. Never rejects: a gate that throws becomes a refusal (RECORDING_FAILED when the store cannot
   * record, INTERNAL otherwise). Withdrawn (a held approval cancelled) when the session ends, by `withdrawPending`,
   * or when `signal` aborts (an SSH channel closing). `hooks.onWaiting` is told when the command is held for
   * approval and at each reminder, so the engine can tell its client natively that it waits.
   */
  decide(command: Command, signal?: AbortSignal, hooks?: DecisionHooks): Promise<Verdict>;
  /**
   * `decide`, but the verdict itself when the gate had nothing to wait for (no commit to wait on, no approval):
   * an engine that decides every statement skips a promise turn per command.
   */
  decideNow(command: Command, signal?: AbortSignal, hooks?: DecisionHooks): Verdict | Promise<Verdict>;
  /** Withdraw the decisions pending now, without ending the session (a PostgreSQL CancelRequest). */
  withdrawPending(cause: WithdrawCause): void;
  /** Append an event; a store failure is logged, not thrown (commands fail closed in the gate). */
  record<K extends AppendableEventType>(kind: K, body: EventBody[K]): void;
  /**
   * The same principal presented another credential (a Docker request with a refreshed token): the session goes on
   * under it and its lease. A different name is a different session (the engine ends this one and opens another).
   */
  continueAs(identity: Identity): void;
  /** End the session from outside (an administrator): `ended` aborts with `terminated`, recorded and logged. */
  terminate(termination: Termination): void;
  /**
   * Close the session: `session.end` naming the cause, exactly once. The cause is the one `ended` was aborted with
   * when it was; otherwise `cause` (default: the client left).
   */
  end(cause?: EndCause): void;
}

export interface SessionLifecycles {
  /**
   * Open the recorded session (`session.start`) and start watching what can end it. Throws AgentgateError
   * RECORDING_FAILED when the store cannot record and fails closed: the engine refuses the connection natively.
   */
  open(options: OpenSessionOptions): GatedSession;
  /** End a live session as an administrator; false when no session with that id is open. */
  terminate(sessionId: string, termination: Termination): boolean;
  /**
   * End, as an administrator, each open session `pick` gives a termination for (e.g. the sessions a reloaded
   * `allow` no longer admits); returns how many it ended.
   */
  terminateEach(pick: (info: SessionInfo) => Termination | undefined): number;
  /** How many sessions are open now (a draining gateway logs it). */
  readonly openCount: number;
}

/**
 * The one refusal for a gate that throws: no command passes because deciding it failed. A store failure is refused
 * as the gate refuses it (its own words and RecordingFailure), anything else as INTERNAL.
 */
export function gateFailureVerdict(err: unknown): Extract<Verdict, { allowed: false }> {
  if (isAgentgateError(err, 'RECORDING_FAILED')) return recordingRefusal(err);
  return {
    allowed: false,
    code: 'INTERNAL',
    message: 'agentgate: refused: the command could not be decided (internal error)',
  };
}

export function createSessionLifecycles(deps: SessionLifecycleDeps): SessionLifecycles {
  const live = new Map<string, LiveSession>();
  return {
    open(options) {
      const session = new LiveSession(deps, options, () => live.delete(session.info.id));
      live.set(session.info.id, session);
      return session;
    },
    terminate(sessionId, termination) {
      const session = live.get(sessionId);
      if (session === undefined) return false;
      session.terminate(termination);
      return true;
    },
    terminateEach(pick) {
      let ended = 0;
      // A copy: an engine may end a session (and take it out of `live`) while it is told to.
      for (const session of [...live.values()]) {
        const termination = pick(session.info);
        if (termination === undefined) continue;
        session.terminate(termination);
        ended++;
      }
      return ended;
    },
    get openCount() {
      return live.size;
    },
  };
}

class LiveSession implements GatedSession {
  readonly recorder: SessionRecorder;
  readonly log: Logger;
  #info: SessionInfo;
  /** What the gate is given for every command: one object per identity, not one per command. */
  #gateSession: GateSession;
  readonly #deps: SessionLifecycleDeps;
  readonly #ended = new AbortController();
  /** Aborted to withdraw the pending decisions; renewed after a withdrawal while the session goes on. */
  #decisions = decisionsController();
  #pendingDecisions = 0;
  /** The last caller signal's link to the withdraw signal, kept for that caller's next decision (DecisionLink). */
  #link: DecisionLink | undefined;
  #stopLease: () => void = () => undefined;
  readonly #unwatch: (() => void)[] = [];
  #closed = false;
  readonly #forget: () => void;

  constructor(deps: SessionLifecycleDeps, options: OpenSessionOptions, forget: () => void) {
    this.#deps = deps;
    this.#forget = forget;
    const info: SessionInfo = {
      id: newId(),
      listener: options.listener,
      protocol: options.protocol,
      identity: options.identity,
      client: options.client,
      startedAt: Date.now(),
    };
    this.#info = info;
    this.recorder = deps.transcript.openSession(info, options.detail);
    this.#gateSession = { info, recorder: this.recorder };
    this.log = options.log.child({ session: info.id, identity: info.identity.name });
    deps.metrics.sessionStarted(info.listener, info.protocol);
    this.#stopLease = this.#watchLease(options.identity);
    this.#watchSignal(options.signal, (reason) => causeOf(reason, SHUTDOWN) as EndCause);
    const lost = this.recorder.recordingLost;
    if (lost !== undefined) this.#watchSignal(lost, () => ({ kind: 'recording-lost' }));
  }

  get info(): SessionInfo {
    return this.#info;
  }

  get ended(): AbortSignal {
    return this.#ended.signal;
  }

  decide(command: Command, signal?: AbortSignal, hooks?: DecisionHooks): Promise<Verdict> {
    const verdict = this.decideNow(command, signal, hooks);
    return verdict instanceof Promise ? verdict : Promise.resolve(verdict);
  }

  decideNow(command: Command, signal?: AbortSignal, hooks?: DecisionHooks): Verdict | Promise<Verdict> {
    const withdraw = this.#decisions.signal;
    const link = signal === undefined ? undefined : this.#linkFor(withdraw, signal);
    this.#pendingDecisions++;
    let waiting = false;
    try {
      const verdict = this.#deps.gate.check(
        this.#gateSession,
        command,
        link?.linked.signal ?? withdraw,
        hooks,
      );
      if (!(verdict instanceof Promise)) return verdict;
      waiting = true;
      return this.#settled(verdict, link);
    } catch (err) {
      return this.#gateFailed(err);
    } finally {
      if (!waiting) this.#decided(link);
    }
  }

  async #settled(verdict: Promise<Verdict>, link: DecisionLink | undefined): Promise<Verdict> {
    try {
      return await verdict;
    } catch (err) {
      return this.#gateFailed(err);
    } finally {
      this.#decided(link);
    }
  }

  #gateFailed(err: unknown): Verdict {
    this.log.error('gate check failed', { err });
    return gateFailureVerdict(err);
  }

  #decided(link: DecisionLink | undefined): void {
    this.#pendingDecisions--;
    if (link !== undefined) this.#release(link);
  }

  /**
   * The caller's signal linked to the withdraw signal. A connection decides one command after another with the
   * same signal, so the link of the last one is reused while both sources are the same and neither aborted;
   * only one is kept, so nothing grows with the number of decisions.
   */
  #linkFor(withdraw: AbortSignal, source: AbortSignal): DecisionLink {
    const kept = this.#link;
    if (kept?.source === source && kept.withdraw === withdraw && !kept.linked.signal.aborted) {
      kept.users++;
      return kept;
    }
    const link: DecisionLink = { source, withdraw, linked: linkSignals(withdraw, source), users: 1 };
    // Decisions on one signal may wait side by side (approvals), each with its own listener on the link.
    setMaxListeners(0, link.linked.signal);
    if (kept === undefined || kept.users === 0) {
      kept?.linked.unlink();
      this.#link = this.#ended.signal.aborted ? undefined : link;
    }
    return link;
  }

  #release(link: DecisionLink): void {
    link.users--;
    if (link.users > 0) return;
    if (link !== this.#link) link.linked.unlink();
    else if (link.linked.signal.aborted) {
      link.linked.unlink();
      this.#link = undefined;
    }
  }

  withdrawPending(cause: WithdrawCause): void {
    if (this.#pendingDecisions === 0 || this.#ended.signal.aborted) return;
    const pending = this.#decisions;
    this.#decisions = decisionsController();
    pending.abort(cause);
  }

  record<K extends AppendableEventType>(kind: K, body: EventBody[K]): void {
    try {
      appendedSeq(this.recorder, kind, body);
    } catch (err) {
      this.log.error('transcript append failed', { err, type: kind });
    }
  }

  continueAs(identity: Identity): void {
    const current = this.#info.identity;
    if (identity === current || this.#ended.signal.aborted) return;
    if (identity.name !== current.name)
      throw new AgentgateError('INTERNAL', `session ${this.#info.id} cannot continue as another identity`);
    this.#info = { ...this.#info, identity };
    this.#gateSession = { info: this.#info, recorder: this.recorder };
    if (identity.lease !== current.lease) {
      this.#stopLease();
      this.#stopLease = this.#watchLease(identity);
    }
  }

  terminate(termination: Termination): void {
    this.#mustEnd({ ...termination, kind: 'terminated' });
  }

  end(cause: EndCause = CLIENT_LEFT): void {
    if (this.#closed) return;
    this.#closed = true;
    const ended = this.#ended.signal;
    const final = ended.aborted ? (causeOf(ended.reason) as EndCause) : cause;
    if (!ended.aborted) this.#abort(final);
    try {
      this.recorder.end(endBody(final));
    } catch (err) {
      this.log.warn('recording the session end failed', { err });
    }
    this.#deps.metrics.sessionEnded(this.#info.listener, this.#info.protocol);
    this.#forget();
    this.log.debug('session ended', { cause: final.kind });
  }

  /** A cause from outside the engine: recorded and logged here, once; the engine reacts to `ended`. */
  #mustEnd(cause: EndCause): void {
    if (this.#ended.signal.aborted) return;
    const detail = causeEvent(cause);
    if (detail !== undefined) this.record('error', detail);
    const why = `session ends: ${describeCause(cause)}`;
    if (cause.kind === 'recording-lost') this.log.error(why);
    else if (cause.kind === 'shutdown') this.log.debug(why);
    else this.log.info(why, { cause: cause.kind });
    this.#abort(cause);
  }

  #abort(cause: EndCause): void {
    this.#stopLease();
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
    this.#decisions.abort(cause);
    this.#ended.abort(cause);
    const link = this.#link;
    this.#link = undefined;
    if (link !== undefined && link.users === 0) link.linked.unlink();
  }

  #watchLease(identity: Identity): () => void {
    const lease = identity.lease;
    if (lease === undefined) return () => undefined;
    return lease.watch((end) =>
      this.#mustEnd(
        end.kind === 'revoked'
          ? end.reason === undefined
            ? { kind: 'credential-revoked' }
            : { kind: 'credential-revoked', reason: end.reason }
          : { kind: 'credential-expired', expiredAt: new Date(end.at).toISOString() },
      ),
    );
  }

  /** `signal` aborting ends the session; one listener per session, removed when it ends. */
  #watchSignal(signal: AbortSignal, cause: (reason: unknown) => EndCause): void {
    const onAbort = (): void => this.#mustEnd(cause(signal.reason));
    if (signal.aborted) {
      // Already aborted (shutdown raced the open): end once the engine holds the session and listens.
      queueMicrotask(onAbort);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    this.#unwatch.push(() => signal.removeEventListener('abort', onAbort));
  }
}

/** A caller's signal linked to the session's withdraw signal, and how many pending decisions use it. */
interface DecisionLink {
  readonly source: AbortSignal;
  readonly withdraw: AbortSignal;
  readonly linked: LinkedSignal;
  users: number;
}

/** The `error` event that names an outside cause when it happens (shutdown and the client's own are not errors). */
function causeEvent(cause: EndCause): EventBody['error'] | undefined {
  switch (cause.kind) {
    case 'credential-expired':
      return { event: 'identity.expired', expiredAt: cause.expiredAt };
    case 'credential-revoked':
      return cause.reason === undefined
        ? { event: 'identity.revoked' }
        : { event: 'identity.revoked', reason: cause.reason };
    case 'terminated': {
      const { kind: _kind, ...termination } = cause;
      return { event: 'session.terminated', ...termination };
    }
    default:
      // recording-lost cannot be recorded (that is the cause); shutdown and the client's own end are no errors.
      return undefined;
  }
}

function endBody(cause: EndCause): SessionEndBody {
  const body: { -readonly [K in keyof SessionEndBody]: SessionEndBody[K] } = {
    cause: cause.kind,
    reason: describeCause(cause),
  };
  if (cause.kind === 'credential-expired') body.expiredAt = cause.expiredAt;
  if (cause.kind === 'terminated') body.by = cause.by;
  return body;
}

/**
 * Withdraws the session's pending decisions: each links one listener for as long as it waits, and an SSH session
 * may have any number of channels waiting at once, so Node's leak warning at 11 listeners is not one here.
 */
function decisionsController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
