/**
 * The one interface every protocol listener implements. The composition root owns the sockets: it accepts a
 * connection on the listener's TCP or unix address and hands it to `handle`, which runs the whole session.
 */
import type { Duplex } from 'node:stream';
import type { ListenerConfig } from './config.js';
import type { Gate } from './gate.js';
import type { IdentityService } from './identity.js';
import type { Logger } from './log.js';
import type { MaskingService } from './masking.js';
import type { ProtocolMetrics } from './metrics.js';
import type { ClientInfo } from './session.js';
import type { TranscriptWriter } from './transcript.js';

export interface EngineDeps {
  readonly identity: IdentityService;
  readonly gate: Gate;
  readonly transcript: TranscriptWriter;
  readonly masking: MaskingService;
  readonly metrics: ProtocolMetrics;
  readonly log: Logger;
}

export interface ProtocolEngine {
  /**
   * Serve one client connection until it ends. Must never throw for bad client input: render the error natively,
   * close the connection and resolve. `signal` aborts on gateway shutdown (finish in-flight work, then close).
   */
  handle(client: Duplex, info: ClientInfo, signal: AbortSignal): Promise<void>;
  /** Release engine-wide resources (pools, caches). */
  close?(): Promise<void>;
}

export type EngineFactory<L extends ListenerConfig = ListenerConfig> = (
  listener: L,
  deps: EngineDeps,
) => ProtocolEngine;
