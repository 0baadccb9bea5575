/**
 * The masking catalog of one upstream database: relation OID → (schema, relation, columns by attnum), relation
 * names → relations, view definitions (for lineage through views) and the names of user-defined functions.
 *
 * RowDescription carries, per field, the OID of the table and the attribute number the value was read from
 * (PostgreSQL docs "Message Formats", RowDescription) — set only when the output is a plain column reference, also
 * through aliases, `*`, subqueries and joins. Resolving it against the catalog masks by source, not by name.
 *
 * Loaded through its own upstream connection (catalog-query.ts), shared by every session of the same upstream and
 * database, refreshed when a session ran DDL or named a relation the catalog does not know (`ensureFresh`).
 * Lookups on the hot path are synchronous Map reads.
 */
import type { PostgresListenerConfig } from '@agentgate/core';
import type { UpstreamTarget } from '../upstream.js';
import { runCatalogQuery, type TextRows } from './catalog-query.js';

/** OIDs below this are assigned during initdb (PostgreSQL src/include/access/transam.h FirstNormalObjectId). */
export const FIRST_NORMAL_OID = 16384;

export interface CatalogRelation {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** pg_class.relkind: r table, v view, m materialized view, p partitioned table, f foreign table. */
  readonly kind: string;
  /** Column names by attnum. */
  readonly columns: ReadonlyMap<number, string>;
  /** Column names in attnum order (what `*` expands to). */
  readonly ordered: readonly string[];
  /** `pg_get_viewdef` text of a view or materialized view. */
  readonly viewDefinition: string | undefined;
}

export interface CatalogSnapshot {
  readonly byOid: ReadonlyMap<number, CatalogRelation>;
  /** Lower-case `name` and `schema.name` → relations (a bare name may exist in several schemas). */
  readonly byName: ReadonlyMap<string, readonly CatalogRelation[]>;
  /** Lower-case names of functions outside pg_catalog / information_schema. */
  readonly userFunctions: ReadonlySet<string>;
  /** Every schema, relation and column name (lower case): identifiers that error-message scrubbing keeps. */
  readonly identifiers: ReadonlySet<string>;
}

const CATALOG_SQL = `
SELECT 'r', c.oid::text, n.nspname, c.relname, c.relkind::text, a.attnum::text, a.attname,
       CASE WHEN c.relkind IN ('v', 'm') AND a.attnum = 1 THEN pg_get_viewdef(c.oid) END
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
UNION ALL
SELECT 'f', NULL, n.nspname, p.proname, NULL, NULL, NULL, NULL
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`;

/** At most one reload per this interval when sessions keep naming unknown relations. */
const MIN_UNKNOWN_NAME_RELOAD_MS = 500;
const LOAD_TIMEOUT_MS = 15_000;

export class ColumnCatalog {
  private current: CatalogSnapshot | undefined;
  private loading: Promise<CatalogSnapshot> | undefined;
  private stale = true;
  private lastLoad = 0;

  constructor(private readonly load: () => Promise<TextRows>) {}

  /** The snapshot in force (undefined before the first load finished). */
  get snapshot(): CatalogSnapshot | undefined {
    return this.current;
  }

  get isStale(): boolean {
    return this.stale;
  }

  /** DDL ran somewhere: the next `ensureFresh` reloads. */
  markStale(): void {
    this.stale = true;
  }

  /**
   * Resolves with a current snapshot: reloads when stale, or when `names` holds a relation name the snapshot does
   * not know (created since the last load), at most every MIN_UNKNOWN_NAME_RELOAD_MS for unknown names.
   */
  async ensureFresh(names: readonly string[] = []): Promise<CatalogSnapshot> {
    const snap = this.current;
    if (snap && !this.stale) {
      const unknown = names.some((n) => !snap.byName.has(n));
      if (!unknown || Date.now() - this.lastLoad < MIN_UNKNOWN_NAME_RELOAD_MS) return snap;
    }
    return this.reload();
  }

  reload(): Promise<CatalogSnapshot> {
    this.loading ??= (async () => {
      try {
        this.stale = false;
        const rows = await this.load();
        this.current = buildSnapshot(rows);
        this.lastLoad = Date.now();
        return this.current;
      } catch (err) {
        this.stale = true;
        throw err;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}

export function buildSnapshot(rows: TextRows): CatalogSnapshot {
  const building = new Map<
    number,
    { schema: string; name: string; kind: string; columns: Map<number, string>; view: string | undefined }
  >();
  const userFunctions = new Set<string>();
  const identifiers = new Set<string>();
  for (const [tag, oidText, schema, name, kind, attnumText, attname, viewdef] of rows) {
    if (tag === 'f') {
      if (name) userFunctions.add(name.toLowerCase());
      continue;
    }
    const oid = Number(oidText);
    let rel = building.get(oid);
    if (!rel) {
      rel = {
        schema: schema ?? '',
        name: name ?? '',
        kind: kind ?? 'r',
        columns: new Map(),
        view: undefined,
      };
      building.set(oid, rel);
      identifiers.add(rel.schema.toLowerCase()).add(rel.name.toLowerCase());
    }
    if (attname != null) {
      rel.columns.set(Number(attnumText), attname);
      identifiers.add(attname.toLowerCase());
    }
    if (viewdef != null) rel.view = viewdef;
  }
  const byOid = new Map<number, CatalogRelation>();
  const byName = new Map<string, CatalogRelation[]>();
  for (const [oid, r] of building) {
    const ordered = [...r.columns.entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
    const rel: CatalogRelation = {
      oid,
      schema: r.schema,
      name: r.name,
      kind: r.kind,
      columns: r.columns,
      ordered,
      viewDefinition: r.view,
    };
    byOid.set(oid, rel);
    for (const key of [r.name.toLowerCase(), `${r.schema}.${r.name}`.toLowerCase()]) {
      const list = byName.get(key);
      if (list) list.push(rel);
      else byName.set(key, [rel]);
    }
  }
  return { byOid, byName, userFunctions, identifiers };
}

/** One catalog per upstream address, user and database, shared by every session and listener. */
const catalogs = new Map<string, ColumnCatalog>();

export function catalogFor(target: PostgresListenerConfig['upstream'], database: string): ColumnCatalog {
  const key = `${target.host}\u0000${target.port}\u0000${target.user}\u0000${database}`;
  let catalog = catalogs.get(key);
  if (!catalog) {
    catalog = new ColumnCatalog(() => loadCatalogRows(target, database));
    catalogs.set(key, catalog);
  }
  return catalog;
}

function loadCatalogRows(target: UpstreamTarget, database: string): Promise<TextRows> {
  const signal = AbortSignal.timeout(LOAD_TIMEOUT_MS);
  return runCatalogQuery(target, database, CATALOG_SQL, signal);
}
