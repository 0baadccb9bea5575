/**
 * The postgres ProtocolEngine: engine-wide pieces (SQL analyzer, cancel routing, TLS context) shared by sessions.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { SHUTDOWN, type EngineDeps, type PostgresListenerConfig, type ProtocolEngine } from '@agentgate/core';
import type { AnalysisProvider } from './analysis.js';
import { CancelRegistry } from './cancel-registry.js';
import type { ResultFilterFactory } from './result-filter.js';
import type { EngineShared } from './engine-shared.js';
import { PgSession } from './session.js';

export interface PostgresEngineOptions {
  /** SQL analysis; the package index supplies the libpg-query analyzer. */
  readonly analysis: AnalysisProvider;
  /** Masking for sessions with an active masker (see result-filter.ts). */
  readonly resultFilter?: ResultFilterFactory;
}

export function buildPostgresEngine(
  listener: PostgresListenerConfig,
  deps: EngineDeps,
  options: PostgresEngineOptions,
): ProtocolEngine {
  const tlsContext = listener.tls
    ? tls.createSecureContext({ cert: readFileSync(listener.tls.cert), key: readFileSync(listener.tls.key) })
    : undefined;
  const shared: EngineShared = {
    listener,
    deps,
    analysis: options.analysis,
    cancels: new CancelRegistry(),
    tlsContext,
    resultFilter: options.resultFilter,
    bytes: { clientToUpstream: 0, upstreamToClient: 0 },
  };
  const flushBytes = (): void => {
    const { bytes } = shared;
    if (bytes.clientToUpstream > 0)
      deps.metrics.bytes(listener.name, 'postgres', 'client_to_upstream', bytes.clientToUpstream);
    if (bytes.upstreamToClient > 0)
      deps.metrics.bytes(listener.name, 'postgres', 'upstream_to_client', bytes.upstreamToClient);
    bytes.clientToUpstream = 0;
    bytes.upstreamToClient = 0;
  };
  const bytesTimer = setInterval(flushBytes, 1000);
  bytesTimer.unref();
  // Surface an analyzer that fails to load in the log at once, not at the first query.
  options.analysis.analyzer.catch((err: unknown) => deps.log.error('SQL analyzer failed to load', { err }));
  const sessions = new Set<PgSession>();
  return {
    async handle(client, info, signal, connection): Promise<void> {
      const session = new PgSession(client, info, shared, signal, connection);
      sessions.add(session);
      try {
        session.start();
        await session.finished;
      } finally {
        sessions.delete(session);
      }
    },
    async close(): Promise<void> {
      for (const session of sessions) session.close(SHUTDOWN);
      options.analysis.close?.();
      clearInterval(bytesTimer);
      flushBytes();
    },
  };
}
