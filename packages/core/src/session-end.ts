/**
 * Why a session ends, and why a pending decision was withdrawn. These travel as AbortSignal reasons (a session's
 * `ended` signal, the signal a held approval waits on), so whoever reacts (an engine closing natively, the approvals
 * broker recording `approval.decided`) names the real cause rather than guessing.
 */
export type EndCause =
  /** The client closed the connection or went away. */
  | { readonly kind: 'client-left'; readonly detail?: string }
  | { readonly kind: 'credential-expired'; /** ISO 8601 */ readonly expiredAt: string }
  | {
      readonly kind: 'credential-revoked';
      /** e.g. `token devin was removed from identity.tokens` */ readonly reason?: string;
    }
  /** The transcript store refuses this session's bytes (failMode closed): nothing may go on unrecorded. */
  | { readonly kind: 'recording-lost' }
  | { readonly kind: 'shutdown' }
  /** Ended by an administrator. */
  | ({ readonly kind: 'terminated' } & Termination)
  /** The engine could not go on: a protocol violation, the upstream lost, an internal error. */
  | { readonly kind: 'failed'; readonly message: string };

/** Who ended a session from outside, and why. */
export interface Termination {
  /** The administrator's name. */
  readonly by: string;
  readonly byGroups?: readonly string[];
  /** Where they did it, e.g. `console`. */
  readonly via?: string;
  readonly reason?: string;
}

export type EndCauseKind = EndCause['kind'];

/** A pending decision is also withdrawn without the session ending: the client cancelled that one command. */
export type WithdrawCause = EndCause | { readonly kind: 'cancelled' };

const CAUSE_KINDS: ReadonlySet<string> = new Set<WithdrawCause['kind']>([
  'client-left',
  'credential-expired',
  'credential-revoked',
  'recording-lost',
  'shutdown',
  'terminated',
  'failed',
  'cancelled',
]);

export const CLIENT_LEFT: EndCause = Object.freeze({ kind: 'client-left' });
export const SHUTDOWN: EndCause = Object.freeze({ kind: 'shutdown' });

/** One line saying why, for the client, the log and the record's `reason` fields. */
export function describeCause(cause: WithdrawCause): string {
  switch (cause.kind) {
    case 'client-left':
      return cause.detail ?? 'the client left';
    case 'credential-expired':
      return `the credential expired at ${cause.expiredAt}`;
    case 'credential-revoked':
      return `the credential was revoked${cause.reason === undefined ? '' : ` (${cause.reason})`}`;
    case 'recording-lost':
      return 'the transcript store refuses its bytes';
    case 'shutdown':
      return 'the gateway is shutting down';
    case 'terminated':
      return `ended by admin ${cause.by}${cause.reason === undefined ? '' : `: ${cause.reason}`}`;
    case 'failed':
      return cause.message;
    case 'cancelled':
      return 'the client cancelled it';
  }
}

/**
 * The cause an AbortSignal was aborted with. A signal aborted without one of ours (a closed SSH channel, a plain
 * `abort()`) counts as `fallback`: the client left.
 */
export function causeOf(reason: unknown, fallback: WithdrawCause = CLIENT_LEFT): WithdrawCause {
  if (typeof reason === 'object' && reason !== null) {
    const kind = (reason as { kind?: unknown }).kind;
    if (typeof kind === 'string' && CAUSE_KINDS.has(kind)) return reason as WithdrawCause;
  }
  return fallback;
}
