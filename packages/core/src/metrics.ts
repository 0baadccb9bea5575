/**
 * What protocols report, without importing prom-client. `@agentgate/metrics` implements it on the registry.
 */
import type { Protocol } from './command.js';
import { isAgentgateError } from './errors.js';

/**
 * Why an authentication attempt was refused: the `reason` of `agentgate_auth_failures_total` and of the log line.
 * A small fixed set so the metric's cardinality stays bounded (docs/configuration.md lists them).
 */
export const AUTH_FAILURE_REASONS = [
  /** No credential was presented (a request without a token). */
  'no-credential',
  /** A password or token that is no valid credential: unknown, malformed, badly signed, for another audience. */
  'bad-token',
  /** A credential that was valid and has expired. */
  'expired',
  /** A public key no identity has. */
  'unknown-key',
  /** A known public key with a signature that does not verify. */
  'bad-signature',
  /** A valid identity the listener's `allow` does not admit. */
  'not-allowed',
  /** A method the gateway does not offer (keyboard-interactive, hostbased). */
  'unsupported-method',
  /** The attempt came after the connection's last allowed one (SSH `maxAuthTries`); the connection is closed. */
  'too-many-attempts',
  /** The credential could not be checked (the identity provider's keys are unreachable). */
  'unavailable',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/**
 * Why a token was refused, from the identity service's AUTH_FAILED detail (`reason`): the counted reason, and the
 * identity service's own word for the log. Any other error means the token could not be checked.
 */
export function tokenFailure(err: unknown): { reason: AuthFailureReason; detail?: string } {
  if (!isAgentgateError(err, 'AUTH_FAILED')) return { reason: 'unavailable' };
  const detail = (err.detail as { reason?: unknown } | undefined)?.reason;
  const why = typeof detail === 'string' ? detail : undefined;
  const reason: AuthFailureReason =
    why === 'expired' ? 'expired' : why === 'jwks-unavailable' ? 'unavailable' : 'bad-token';
  return why === undefined ? { reason } : { reason, detail: why };
}

/** What engines count. Connections and sessions are counted elsewhere (SessionMetrics), once each. */
export interface ProtocolMetrics {
  /** Time from forwarding a command upstream to its complete result. */
  commandCompleted(listener: string, protocol: Protocol, seconds: number): void;
  upstreamError(listener: string, protocol: Protocol, kind: string): void;
  bytes(
    listener: string,
    protocol: Protocol,
    direction: 'client_to_upstream' | 'upstream_to_client',
    n: number,
  ): void;
  maskedValues(rule: string, detector: string, n: number): void;
  /** One refused authentication attempt (every one, also those before a session exists). */
  authFailed(listener: string, protocol: Protocol, reason: AuthFailureReason): void;
}

/**
 * Counted outside the engines, once per connection and session: `connectionOpened` by the composition root when it
 * accepts a socket, the sessions by the session lifecycle.
 */
export interface SessionMetrics {
  connectionOpened(listener: string, protocol: Protocol): void;
  sessionStarted(listener: string, protocol: Protocol): void;
  sessionEnded(listener: string, protocol: Protocol): void;
}

export const noopMetrics: ProtocolMetrics & SessionMetrics = {
  connectionOpened() {},
  sessionStarted() {},
  sessionEnded() {},
  commandCompleted() {},
  upstreamError() {},
  bytes() {},
  maskedValues() {},
  authFailed() {},
};
