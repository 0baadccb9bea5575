/**
 * The one interface every protocol listener implements. The composition root owns the sockets: it accepts a
 * connection on the listener's TCP or unix address and hands it to `handle`, which runs the whole session.
 */
import type { Duplex } from 'node:stream';
import type { ListenerConfig } from './config.js';
import type { IdentityService } from './identity.js';
import type { ListenerAccess } from './listener-access.js';
import type { Logger } from './log.js';
import type { MaskingService } from './masking.js';
import type { ProtocolMetrics } from './metrics.js';
import type { ClientInfo } from './session.js';
import type { SessionLifecycles } from './session-lifecycle.js';

export interface EngineDeps {
  readonly identity: IdentityService;
  /** Opens the recorded, gated session of an authenticated client (session-lifecycle.ts). */
  readonly sessions: SessionLifecycles;
  readonly masking: MaskingService;
  readonly metrics: ProtocolMetrics;
  readonly log: Logger;
  /** Who may use this listener: its `allow`, as the last reload left it (listener-access.ts). */
  readonly access: ListenerAccess;
}

/** What the listener offers an engine about one accepted connection. */
export interface ConnectionControl {
  /**
   * The client proved an identity the listener admits: from now on the connection no longer counts against the
   * listener's limits on unauthenticated connections. Idempotent.
   */
  authenticated(): void;
}

export interface ProtocolEngine {
  /**
   * Serve one client connection until it ends. Must never throw for bad client input: render the error natively,
   * close the connection and resolve. `signal` is this connection's own: it aborts when the connection must end
   * (gateway shutdown: finish in-flight work, then close), its reason an EndCause. `connection` is given by the
   * listener server; an engine that never calls `authenticated` must not be given unauthenticated limits.
   */
  handle(
    client: Duplex,
    info: ClientInfo,
    signal: AbortSignal,
    connection?: ConnectionControl,
  ): Promise<void>;
  /**
   * Resolves once the engine can serve (an SSH listener's host key loaded or created); rejects with why it cannot,
   * and then the listener does not start. Awaited before the listener accepts connections.
   */
  ready?(): Promise<void>;
  /** Release engine-wide resources (pools, caches). */
  close?(): Promise<void>;
}

export type EngineFactory<L extends ListenerConfig = ListenerConfig> = (
  listener: L,
  deps: EngineDeps,
) => ProtocolEngine;

/**
 * One look at a listener's upstream, as `/readyz` and `agentgate check-config --probe` report it: could the gateway
 * connect, and log in with the credentials of its configuration?
 */
export interface UpstreamProbeResult {
  readonly ok: boolean;
  /** Where it stopped: `connect` (unreachable), `login` (credentials or host key refused), `ready` (all good). */
  readonly stage: 'connect' | 'login' | 'ready';
  /** One line for the operator, e.g. `password authentication failed for user "app" (SQLSTATE 28P01)`. */
  readonly message: string;
  readonly latencyMs: number;
}

/** How a protocol probes the upstream of one of its listeners; resolves (never rejects), bounded by `signal`. */
export type UpstreamProbe<L extends ListenerConfig = ListenerConfig> = (
  listener: L,
  signal: AbortSignal,
) => Promise<UpstreamProbeResult>;
