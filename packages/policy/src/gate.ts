/**
 * The gate: the single place that turns a decoded Command into allow / deny / held-for-approval. It records the
 * command with its decision (one `command` event) in the session's transcript before anything is forwarded, counts
 * them, and waits on the approvals broker for `approve`. Recording failure refuses the command (fail closed) unless the store is `open`.
 */
import {
  appendedSeq,
  credentialLapse,
  isAgentgateError,
  recordingRefusal,
  type ApprovalBroker,
  type Command,
  type CommandDecision,
  type CommandEventBody,
  type DecisionHooks,
  type Gate,
  type GateSession,
  type Identity,
  type Logger,
  type Protocol,
  type PrincipalRef,
  type Redactor,
  type SqlStatementFacts,
  type Verdict,
} from '@agentgate/core';
import type { Policy, PolicyDecision } from './policy.js';

export interface GateMetrics {
  command(listener: string, protocol: Protocol, decision: string): void;
}

export interface GateOptions {
  readonly policy: Policy;
  /** Absent: `approve` rules deny with a message saying approval is required but not configured. */
  readonly broker?: ApprovalBroker;
  readonly approvers: readonly PrincipalRef[];
  readonly metrics?: GateMetrics;
  readonly log: Logger;
  /** Clock for token expiry (ms since the epoch); tests pass a fixed one. */
  readonly now?: () => number;
  /**
   * Redacts the command text approvers see (the approvals API, the webhook): they decide on what the command
   * does, which a password is not needed for. The transcript redacts what it records itself.
   */
  readonly redactor?: Redactor;
}

const deniedText = (rule: string): string => `agentgate: denied by rule ${rule}`;

/** Named in `redacted` when the protocol's own analysis removed a credential (a role's PASSWORD literal). */
export const CREDENTIAL_LITERAL = 'builtin:credential-literal';

/**
 * The recorded command and how it was decided: `recordedText` (credentials removed by the protocol's analysis)
 * stands in for `text`, for the command and for each statement; the transcript's redactor then applies on top.
 */
function commandBody(command: Command, decision: PolicyDecision): CommandEventBody {
  const { recordedText } = command;
  // An engine sets recordedText only when it removed a credential, from the text or from what travels with it
  // (a Bind parameter in a password position), so its presence alone says the command was redacted.
  let literal = recordedText !== undefined;
  // Statements are copied only when one carries a recorded text (most carry none).
  let statements: readonly SqlStatementFacts[] | undefined;
  if (command.protocol === 'postgres' && command.statements.some((s) => s.recordedText !== undefined)) {
    statements = command.statements.map((statement): SqlStatementFacts => {
      if (statement.recordedText === undefined) return statement;
      const { recordedText: recorded, ...rest } = statement;
      if (recorded !== statement.text) literal = true;
      return { ...rest, text: recorded };
    });
  }
  // Written member by member, in the command's own order with `text` first and the gate's members last: a rest
  // object and spreads cost V8 fresh objects and maps on every command.
  const body: Record<string, unknown> = { text: recordedText ?? command.text };
  const members = command as unknown as Record<string, unknown>;
  for (const key in members) {
    if (!recordedAsIs(key)) continue;
    body[key] = key === 'statements' && statements !== undefined ? statements : members[key];
  }
  if (command.unanalysable !== undefined) body['unanalysable'] = command.unanalysable;
  if (command.detail) body['detail'] = command.detail;
  body['decision'] = decisionMember(decision);
  if (literal) body['redacted'] = [CREDENTIAL_LITERAL];
  return body as CommandEventBody;
}

/** Whether commandBody copies a command's member as it is (the others it writes in their own place, or not). */
function recordedAsIs(key: string): boolean {
  switch (key) {
    case 'text':
    case 'recordedText':
    case 'unanalysable':
    case 'detail':
    case 'unknownMatchesAll':
      return false;
    default:
      return true;
  }
}

/** What approvers are shown of a held command. */
function shownToApprovers(command: Command, redactor: Redactor | undefined): Command {
  const text = command.recordedText ?? command.text;
  const shown = redactor?.active ? redactor.text(text).value : text;
  return shown === command.text ? command : { ...command, recordedText: shown };
}

export function createGate(options: GateOptions): Gate {
  const { policy, broker, metrics, log } = options;
  const now = options.now ?? Date.now;

  /** A command whose record the store refused is refused itself (fail closed); any other error is a bug. */
  function refusedUnrecorded(info: GateSession['info'], err: unknown, why: string): Verdict {
    if (!isAgentgateError(err, 'RECORDING_FAILED')) throw err;
    metrics?.command(info.listener, info.protocol, 'refused');
    log.error(`command refused: ${why}`, { session: info.id, error: err.message });
    return recordingRefusal(err);
  }

  /** Allow or deny as decided; an `approve` rule asks the broker and settles with the approval. */
  function verdictOf(
    session: GateSession,
    command: Command,
    decision: PolicyDecision,
    commandSeq: number,
    signal: AbortSignal | undefined,
    hooks: DecisionHooks | undefined,
  ): Verdict | Promise<Verdict> {
    const { info } = session;
    if (decision.action === 'allow') {
      metrics?.command(info.listener, info.protocol, 'allow');
      return decision.rule
        ? { allowed: true, rule: decision.rule, commandSeq }
        : { allowed: true, commandSeq };
    }
    if (decision.action === 'deny') {
      metrics?.command(info.listener, info.protocol, 'deny');
      const rule = decision.rule ?? 'unknown';
      const code = rule === 'builtin:unanalysable' ? 'UNANALYSABLE' : 'DENIED';
      const message = decision.reason ? `${deniedText(rule)} (${decision.reason})` : deniedText(rule);
      return { allowed: false, code, rule, message, commandSeq };
    }
    const rule = decision.rule ?? 'unknown';
    if (!broker) {
      metrics?.command(info.listener, info.protocol, 'deny');
      return {
        allowed: false,
        code: 'APPROVAL_REQUIRED',
        rule,
        commandSeq,
        message: `agentgate: denied by rule ${rule} (approval is required but no approvals are configured)`,
      };
    }
    return approval(broker, session, command, decision, rule, commandSeq, signal, hooks);
  }

  /** The command's record is on disk once `recorded` settles; a failed commit refuses the command. */
  async function afterRecorded(
    recorded: Promise<void>,
    session: GateSession,
    command: Command,
    decision: PolicyDecision,
    commandSeq: number,
    signal: AbortSignal | undefined,
    hooks: DecisionHooks | undefined,
  ): Promise<Verdict> {
    const { info } = session;
    try {
      await recorded;
    } catch (err) {
      return refusedUnrecorded(info, err, 'its record did not reach the store');
    }
    return verdictOf(session, command, decision, commandSeq, signal, hooks);
  }

  async function approval(
    approvals: ApprovalBroker,
    session: GateSession,
    command: Command,
    decision: PolicyDecision,
    rule: string,
    commandSeq: number,
    signal: AbortSignal | undefined,
    hooks: DecisionHooks | undefined,
  ): Promise<Verdict> {
    const { info, recorder } = session;
    try {
      const settled = await approvals.request(
        {
          session: info,
          recorder,
          command: shownToApprovers(command, options.redactor),
          rule,
          approvers: decision.approvers ?? options.approvers,
          ...(hooks?.onWaiting === undefined ? {} : { onWaiting: hooks.onWaiting }),
        },
        signal,
      );
      if (settled.outcome === 'approved') {
        // A reload while the command was held may have made a rule deny it: an approval given for the old rules
        // does not override the rules in force when the command would run (a reload is how an operator stops it).
        const now = policy.decide(command, info.identity, info.listener);
        if (now.action === 'deny') {
          metrics?.command(info.listener, info.protocol, 'deny');
          const denying = now.rule ?? 'unknown';
          const why = `the rules were reloaded while approval ${settled.id} was pending`;
          log.warn('approved command refused: the reloaded rules deny it', {
            session: info.id,
            rule: denying,
          });
          return {
            allowed: false,
            code: 'DENIED',
            rule: denying,
            approvalId: settled.id,
            commandSeq,
            message: `${deniedText(denying)} (${why})`,
          };
        }
        metrics?.command(info.listener, info.protocol, 'approved');
        return { allowed: true, rule, approvalId: settled.id, commandSeq };
      }
      metrics?.command(info.listener, info.protocol, settled.outcome);
      const code =
        settled.outcome === 'expired'
          ? 'APPROVAL_EXPIRED'
          : settled.outcome === 'cancelled'
            ? 'APPROVAL_CANCELLED'
            : 'APPROVAL_REJECTED';
      const why = settled.reason ? `: ${settled.reason}` : '';
      return {
        allowed: false,
        code,
        rule,
        approvalId: settled.id,
        commandSeq,
        message: `agentgate: approval ${settled.id} ${settled.outcome}${why} (rule ${rule})`,
      };
    } catch (err) {
      const message = isAgentgateError(err) ? err.message : String(err);
      log.error('approval request failed', { session: info.id, error: message });
      metrics?.command(info.listener, info.protocol, 'deny');
      if (isAgentgateError(err, 'RECORDING_FAILED')) return recordingRefusal(err);
      // Fail closed: a broker fault must never let a command through.
      return {
        allowed: false,
        code: 'DENIED',
        rule,
        commandSeq,
        message: `agentgate: denied by rule ${rule} (the approval request failed)`,
      };
    }
  }

  return {
    // Not async: a command that waits for nothing is decided in the caller's turn, with no promise in between.
    check(
      session: GateSession,
      command: Command,
      signal?: AbortSignal,
      hooks?: DecisionHooks,
    ): Verdict | Promise<Verdict> {
      const { info, recorder } = session;
      const decision =
        lapsedCredentialDecision(info.identity, now()) ??
        policy.decide(command, info.identity, info.listener);
      let commandSeq: number;
      try {
        commandSeq = appendedSeq(recorder, 'command', commandBody(command, decision));
      } catch (err) {
        return refusedUnrecorded(info, err, 'transcript store cannot record');
      }
      if (decision.action !== 'deny') {
        // Nothing runs before its record is sure to be on disk: wait when the store cannot vouch for it yet.
        const recorded = recorder.committed?.();
        if (recorded) return afterRecorded(recorded, session, command, decision, commandSeq, signal, hooks);
      }
      return verdictOf(session, command, decision, commandSeq, signal, hooks);
    },
  };
}

/**
 * A session outlives nothing it was authenticated with: once the token (or the SSH key registration) behind the
 * session's identity has expired or been revoked, every further command is denied, whatever the rules say.
 * Connections are checked at connect; long-lived ones (a PostgreSQL session, an SSH connection, a Docker
 * keep-alive) would otherwise keep acting for the identity indefinitely.
 */
function lapsedCredentialDecision(identity: Identity, nowMs: number): PolicyDecision | undefined {
  const lapse = credentialLapse(identity, nowMs);
  if (lapse === undefined) return undefined;
  if (lapse.kind === 'revoked') {
    return {
      action: 'deny',
      rule: 'builtin:credential-revoked',
      matched: [],
      reason: 'the credential this session was opened with was revoked',
    };
  }
  return {
    action: 'deny',
    rule: 'builtin:token-expired',
    matched: [],
    reason: `the token expired at ${new Date(lapse.at).toISOString()}; reconnect with a fresh one`,
  };
}

function decisionMember(d: PolicyDecision): CommandDecision {
  const body: { -readonly [K in keyof CommandDecision]: CommandDecision[K] } = { action: d.action };
  if (d.rule) body.rule = d.rule;
  if (d.matched.length) body.matched = d.matched;
  if (d.reason) body.reason = d.reason;
  return body;
}
