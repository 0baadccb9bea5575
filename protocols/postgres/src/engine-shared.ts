/** What every session of one postgres listener shares (built once by the engine). */
import type tls from 'node:tls';
import type { EngineDeps, PostgresListenerConfig } from '@agentgate/core';
import type { AnalysisProvider } from './analysis.js';
import type { CancelRegistry } from './cancel-registry.js';
import type { ResultFilterFactory } from './result-filter.js';

export interface EngineShared {
  readonly listener: PostgresListenerConfig;
  readonly deps: EngineDeps;
  readonly analysis: AnalysisProvider;
  readonly cancels: CancelRegistry;
  readonly tlsContext: tls.SecureContext | undefined;
  readonly resultFilter: ResultFilterFactory | undefined;
  /** Byte counts, added up here and handed to the metrics once a second (not twice per round trip). */
  readonly bytes: { clientToUpstream: number; upstreamToClient: number };
}
