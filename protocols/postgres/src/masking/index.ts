/**
 * PostgreSQL masking (issue 5): column masking by source, lineage masking of derived outputs, refusals for what
 * cannot be made safe, and scrubbing of every other channel values leave by.
 *
 * How it plugs in (result-filter.ts): the engine builds a MaskingResultFilter per session whose masker is active;
 * `prepare()` loads the upstream's catalog (own connection, listener credentials, shared per upstream database);
 * `checkStatement(text)` runs after the gate allowed a Query / Execute and before it is forwarded, returning a
 * refusal (the client gets 42501 with the message, the session stays usable) or a plan the engine hands back with
 * every message answering that command; `filter()` rewrites DataRow / CopyData / ErrorResponse / NoticeResponse /
 * NotificationResponse / ParameterStatus. The transcript records what `filter()` returned.
 *
 * Policy:
 * - Plain column references are masked by RowDescription (table OID, attnum) → catalog, so aliases, `*`, `u.*`,
 *   joins, subqueries and views (resolved through their definitions) are covered; types without free text skip
 *   detectors; binary values of masked text columns are re-encoded, other binary masked values are sent as NULL.
 * - Derived outputs (expressions, casts to text, aggregates, whole-row references, row_to_json, query_to_xml with a
 *   literal query, set-returning functions in the select list, UNION arms, scalar subqueries, CTEs) are masked by
 *   position, proven from the parse tree. A result whose width differs from the planned one is masked entirely.
 * - Refused (42501, naming the column): copies into relations (CREATE TABLE AS, SELECT INTO, INSERT … SELECT,
 *   UPDATE … SET from masked, CREATE VIEW, MERGE), casts of masked values to non-text types, masked values passed
 *   to side-channel functions (set_config, pg_notify, dblink, large objects…), positions that cannot be proven,
 *   several statements in one Query when one derives masked values, DECLARE CURSOR / PREPARE over derived values,
 *   COPY of masked columns in CSV / binary format or to a file or program, renames and type changes of masked
 *   relations; and, while column masking applies, DO blocks, function / procedure / trigger / rule creation,
 *   CALL, calls of user-defined functions and query_to_xml with a computed query (their bodies are opaque).
 * - WHERE-clause oracles are allowed. Predicates (`WHERE email LIKE 'a%'`, joins, ORDER BY, EXISTS) can leak bits
 *   of a masked value one query at a time, as in other masking products; refusing them would make masked tables
 *   unusable (no lookups by email). Their values are never returned, and conversion errors they cause are scrubbed.
 * - Errors and notices: content detectors and values this session already masked are scrubbed from every text;
 *   for statements reading a masked relation, quoted non-identifier literals are redacted, `Failing row contains`
 *   and `Key (…)=(…)` values replaced and other details withheld.
 */
import type { PostgresListenerConfig } from '@agentgate/core';
import type { ResultFilterFactory } from '../result-filter.js';
import { catalogFor } from './column-catalog.js';
import { MaskingResultFilter } from './masking-filter.js';

export { MaskingResultFilter, type StatementCheck, type MaskingFilterContext } from './masking-filter.js';
export {
  ColumnCatalog,
  catalogFor,
  buildSnapshot,
  FIRST_NORMAL_OID,
  type CatalogSnapshot,
  type CatalogRelation,
} from './column-catalog.js';
export { planStatements, EMPTY_PLAN, type StatementPlan, type PlanResult } from './statement-plan.js';

/** The engine's ResultFilterFactory: one catalog per upstream database, loaded with the listener's credentials. */
export function createMaskingFilterFactory(listener: PostgresListenerConfig): ResultFilterFactory {
  return (session) =>
    new MaskingResultFilter(session.masker, catalogFor(listener.upstream, session.database));
}
