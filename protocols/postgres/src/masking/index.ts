/**
 * PostgreSQL masking (docs/configuration.md, "masking": what is masked, refused and scrubbed, and why).
 *
 * How it plugs in (result-filter.ts): the engine builds a MaskingResultFilter per session whose masker is active;
 * `prepare()` loads the upstream's catalog (own connection, listener credentials, shared per upstream database);
 * `checkStatement(text)` runs after the gate allowed a Query / Execute and before it is forwarded, returning a
 * refusal (the client gets 42501 with the message, the session stays usable) or a plan the engine hands back with
 * every message answering that command; `filter()` rewrites DataRow / CopyData / ErrorResponse / NoticeResponse /
 * NotificationResponse / ParameterStatus. The transcript records what `filter()` returned.
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
