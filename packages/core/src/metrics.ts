/**
 * What protocols report, without importing prom-client. `@agentgate/metrics` implements it on the registry.
 */
import type { Protocol } from './command.js';

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
};
