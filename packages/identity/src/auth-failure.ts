import { AgentgateError } from '@agentgate/core';

/** Stable reasons for a refused credential, in `err.detail.reason` (logs, tests); the message says the same for humans. */
export type AuthFailureReason =
  | 'malformed'
  | 'unknown-issuer'
  | 'alg-refused'
  | 'unknown-kid'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-audience'
  | 'missing-exp'
  | 'bad-claims'
  | 'jwks-unavailable'
  | 'unknown-token'
  /** a JWT whose `purpose` claim is not the one this place accepts (a console link used as a bearer token) */
  | 'wrong-purpose';

export function authFailed(
  reason: AuthFailureReason,
  message: string,
  fields: Record<string, unknown> = {},
): AgentgateError {
  return new AgentgateError('AUTH_FAILED', message, { detail: { reason, ...fields } });
}
