/**
 * One error type for the whole gateway. `code` is stable (tests and clients key on it); `expose` says whether
 * the message may be shown to the remote client as is. Each protocol renders it natively
 * (SQLSTATE, SSH exit status / disconnect, HTTP status + JSON).
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'AUTH_FAILED' // bad, expired or unverifiable credentials
  | 'NOT_ALLOWED' // valid identity, but not in the listener's allow list
  | 'DENIED' // a rule denied the command
  | 'APPROVAL_REQUIRED' // a rule wants approval and no broker is configured
  | 'APPROVAL_REJECTED'
  | 'APPROVAL_EXPIRED'
  | 'APPROVAL_CANCELLED'
  | 'UNANALYSABLE' // the gateway could not decode the command, so it refuses it
  | 'RECORDING_FAILED' // the transcript store cannot write; fail closed
  | 'UPSTREAM_UNAVAILABLE'
  | 'PROTOCOL_VIOLATION'
  | 'LIMIT_EXCEEDED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'FORBIDDEN'
  | 'BAD_REQUEST'
  | 'INTERNAL';

export interface AgentgateErrorOptions {
  expose?: boolean;
  cause?: unknown;
  /** Extra structured detail, recorded in the transcript and logs (never secrets). */
  detail?: Record<string, unknown>;
}

export class AgentgateError extends Error {
  readonly code: ErrorCode;
  readonly expose: boolean;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AgentgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentgateError';
    this.code = code;
    this.expose = options.expose ?? true;
    this.detail = options.detail;
  }
}

export function isAgentgateError(err: unknown, code?: ErrorCode): err is AgentgateError {
  return err instanceof AgentgateError && (code === undefined || err.code === code);
}

/** A message safe to show a remote client for any thrown value. */
export function clientMessage(err: unknown): string {
  if (err instanceof AgentgateError && err.expose) return err.message;
  return 'agentgate: internal error';
}
