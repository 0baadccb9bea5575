/**
 * @agentgate/postgres: the PostgreSQL wire-protocol listener.
 */
import type { EngineFactory, PostgresListenerConfig } from '@agentgate/core';
import type { AnalysisProvider } from './analysis.js';
import { buildPostgresEngine } from './engine.js';
import { createMaskingFilterFactory } from './masking/index.js';
import { createSqlAnalyzer, SqlSessionState, type SqlAnalyzer } from './sql/index.js';

/** One analyzer per process: its cache serves every listener. */
let sharedAnalyzer: Promise<SqlAnalyzer> | undefined;

/** The libpg-query analysis (./sql) as the engine consumes it. */
function libpgQueryAnalysis(): AnalysisProvider<SqlSessionState> {
  sharedAnalyzer ??= createSqlAnalyzer();
  return { analyzer: sharedAnalyzer, newState: () => new SqlSessionState() };
}

export const createPostgresEngine: EngineFactory<PostgresListenerConfig> = (listener, deps) =>
  buildPostgresEngine(listener, deps, {
    analysis: libpgQueryAnalysis() as AnalysisProvider,
    resultFilter: createMaskingFilterFactory(listener),
  });
