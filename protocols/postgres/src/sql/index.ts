/** SQL analysis for the PostgreSQL listener: statement facts for rules, with built-in refusals. */
export {
  createSqlAnalyzer,
  type SqlAnalysis,
  type SqlAnalyzer,
  type SqlAnalyzerOptions,
} from './sql-analyzer.js';
export { SqlSessionState } from './session-state.js';
export { SqlSessionAnalysis, type CommandAnalysis } from './session-analysis.js';
export { CodeCatalog } from './code-catalog.js';
export { CatalogConnection, type CatalogQueryRunner } from './catalog-connection.js';
