/**
 * @agentgate/postgres: the PostgreSQL wire-protocol listener.
 */
import type { EngineFactory, PostgresListenerConfig } from '@agentgate/core';
import type { AnalysisProvider } from './analysis.js';
import { buildPostgresEngine } from './engine.js';
import { createMaskingFilterFactory } from './masking/index.js';
import {
  CatalogConnection,
  CodeCatalog,
  createSqlAnalyzer,
  SqlSessionAnalysis,
  type SqlAnalyzer,
} from './sql/index.js';

/** One analyzer per process: its cache serves every listener. */
let sharedAnalyzer: Promise<SqlAnalyzer> | undefined;

/**
 * The libpg-query analysis (./sql) as the engine consumes it, with one catalog (connection, snapshot, analysed
 * routine bodies) per upstream database, shared by the engine's sessions.
 */
function libpgQueryAnalysis(): AnalysisProvider {
  sharedAnalyzer ??= createSqlAnalyzer();
  const analyzer = sharedAnalyzer;
  const catalogs = new Map<string, CodeCatalog>();
  return {
    analyzer,
    async openSession({ upstream, database, log }) {
      const sql = await analyzer;
      const key = `${upstream.host}\u0000${upstream.port}\u0000${upstream.user}\u0000${database}`;
      let catalog = catalogs.get(key);
      if (catalog === undefined) {
        catalog = new CodeCatalog(new CatalogConnection(upstream, database), sql);
        catalogs.set(key, catalog);
      }
      return new SqlSessionAnalysis(sql, catalog, (message, fields) =>
        fields['err'] === undefined ? log.debug(message, fields) : log.warn(message, fields),
      );
    },
    close() {
      for (const catalog of catalogs.values()) catalog.close();
      catalogs.clear();
    },
  };
}

export const createPostgresEngine: EngineFactory<PostgresListenerConfig> = (listener, deps) =>
  buildPostgresEngine(listener, deps, {
    analysis: libpgQueryAnalysis(),
    resultFilter: createMaskingFilterFactory(listener),
  });

export { probePostgresUpstream } from './upstream-probe.js';
