/**
 * The code an upstream database keeps in its catalog, as far as statements can reach it (code-resolver.ts):
 *
 * - Routines are looked up by name for every decision that calls one (one indexed query on pg_proc), so a routine
 *   replaced, renamed or overloaded since the last decision is seen as it is now. Their analysed bodies are cached
 *   by (oid, xmin): every change of a pg_proc row (CREATE OR REPLACE, ALTER FUNCTION …) writes a new row version
 *   with a new xmin, so a cached body is never used for a routine that changed.
 * - Everything else — which names are user routines, operators, casts and domain checks, and the code attached to
 *   relations (triggers, rules, views, defaults, generated columns, CHECK constraints, index and statistics
 *   expressions, row security policies, inheritance and partitions, foreign keys' actions), event triggers — is a
 *   snapshot. It is reloaded when a session's transaction that ran DDL (or code the gateway could not see into)
 *   ended, when a statement names a routine the snapshot does not know, and by age (see `snapshot()`).
 */
import type { SqlStatementFacts } from '@agentgate/core';
import { sqlLiteral, type CatalogQueryRunner, type TextRows } from './catalog-connection.js';
import type { CodeDefinition, CodeRefs } from './code-refs.js';
import { LruCache } from './lru-cache.js';
import { recordedStatements } from './recorded-text.js';
import type { SqlAnalysis } from './sql-analyzer.js';

/** OIDs below this are assigned by initdb (src/include/access/transam.h FirstNormalObjectId): built-ins. */
export const FIRST_NORMAL_OID = 16384;

/** pg_trigger.tgtype bits (src/include/catalog/pg_trigger.h). */
export const TRIGGER_INSERT = 1 << 2;
export const TRIGGER_DELETE = 1 << 3;
export const TRIGGER_UPDATE = 1 << 4;
export const TRIGGER_TRUNCATE = 1 << 5;

export interface RelationCode {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** pg_class.relkind: r table, p partitioned table, v view, m materialized view, f foreign table. */
  readonly kind: string;
  readonly view: string | undefined;
  readonly triggers: { readonly events: number; readonly fn: number }[];
  /** pg_rewrite.ev_type: 1 SELECT, 2 UPDATE, 3 INSERT, 4 DELETE; the rule as CREATE RULE text. */
  readonly rules: { readonly event: string; readonly definition: string }[];
  /** Functions run when rows are written: defaults, generated columns, checks, domain checks, index expressions. */
  readonly writeFunctions: number[];
  /** Functions of row security policies: run on reads and writes. */
  readonly policyFunctions: number[];
  readonly children: number[];
  /** Foreign keys referencing this relation, with pg_constraint confdeltype / confupdtype. */
  readonly referencedBy: {
    readonly relation: number;
    readonly onDelete: string;
    readonly onUpdate: string;
  }[];
  /** A foreign table: the remote relation it stands for (postgres_fdw `schema_name` / `table_name` options). */
  foreignTable: string | undefined;
  /** Any of the above: statements on a relation without it reach no code through it. */
  hasCode: boolean;
}

export interface CodeSnapshot {
  readonly loadedAt: number;
  /** Names of built-in routines. */
  readonly builtinNames: ReadonlySet<string>;
  /** Lower-case name → the exact names of user routines (quoted names keep their case). */
  readonly userNames: ReadonlyMap<string, readonly string[]>;
  /** Operator name → functions of user-defined operators. */
  readonly operators: ReadonlyMap<string, readonly number[]>;
  /** Type name → functions run by a cast to it (user casts, domain checks). */
  readonly types: ReadonlyMap<string, readonly number[]>;
  /** Lower-case bare relation name → relations of that name in every schema. */
  readonly relations: ReadonlyMap<string, readonly RelationCode[]>;
  readonly relationsByOid: ReadonlyMap<number, RelationCode>;
  readonly eventTriggerFunctions: readonly number[];
}

/** A user routine as pg_proc has it now. */
export interface RoutineRow {
  readonly oid: number;
  readonly xmin: string;
  readonly name: string;
  readonly schema: string;
  readonly nargs: number;
  readonly ndefaults: number;
  readonly variadic: boolean;
  /** pg_proc.prokind: f function, p procedure, a aggregate, w window. */
  readonly kind: string;
  readonly language: string;
  readonly inExtension: boolean;
  /** `internal` routines: the built-ins sharing its C function (a user alias of a built-in). */
  readonly builtinAliases: readonly string[];
  /** Aggregates: their support functions. */
  readonly aggregateFunctions: readonly number[];
}

/** What running a routine does, from its body. */
export interface RoutineCode {
  /** Every statement of the analysed definition: `refs` and `definitions` index it. */
  readonly statements: readonly SqlStatementFacts[];
  /** The body's statements (a slice of `statements`). */
  readonly facts: readonly SqlStatementFacts[];
  readonly refs: CodeRefs;
  /** Code its body stores (CREATE TRIGGER … inside a function): pending once it ran. */
  readonly definitions: readonly CodeDefinition[];
  /** Why the body cannot be analysed, when it cannot. */
  readonly unknown?: string;
}

export interface BodyAnalyzer {
  analyze(text: string): SqlAnalysis;
}

/** A snapshot older than this is refreshed in the background on use (at least this many times its load time). */
const REFRESH_AFTER_MS = 2_000;
const REFRESH_LOAD_FACTOR = 20;
/** A snapshot older than this is reloaded before it is used. */
const RELOAD_AFTER_MS = 10_000;

const FUNCTION_DEPENDENCIES = `
  fn AS (
    SELECT d.classid, d.objid, d.refobjid AS fn FROM pg_catalog.pg_depend d
     WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid >= ${FIRST_NORMAL_OID}
    UNION
    SELECT d.classid, d.objid, o.oprcode::pg_catalog.oid FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid
     WHERE d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass
       AND o.oprcode::pg_catalog.oid >= ${FIRST_NORMAL_OID})`;

/**
 * One round trip; every row starts with its kind. Relations of user schemas only (the system catalogs carry no
 * user code). Works on PostgreSQL 12 and later.
 */
const SNAPSHOT_SQL = `
SELECT 'n', p.proname, pg_catalog.bool_or(p.oid >= ${FIRST_NORMAL_OID})::text,
       pg_catalog.bool_or(p.oid < ${FIRST_NORMAL_OID})::text, NULL, NULL
  FROM pg_catalog.pg_proc p GROUP BY p.proname;
SELECT 'o', o.oprname, o.oprcode::pg_catalog.oid::text, NULL, NULL, NULL
  FROM pg_catalog.pg_operator o WHERE o.oprcode::pg_catalog.oid >= ${FIRST_NORMAL_OID};
SELECT 'c', t.typname, c.castfunc::text, NULL, NULL, NULL
  FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
 WHERE c.castfunc >= ${FIRST_NORMAL_OID};
SELECT 'd', t.typname, t.oid::text, t.typbasetype::text, NULL, NULL
  FROM pg_catalog.pg_type t WHERE t.typtype = 'd';
WITH ${FUNCTION_DEPENDENCIES}
SELECT 'k', co.contypid::text, fn.fn::text, NULL, NULL, NULL
  FROM fn JOIN pg_catalog.pg_constraint co
    ON fn.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND fn.objid = co.oid
 WHERE co.contypid <> 0;
SELECT 'r', c.oid::text, n.nspname, c.relname, c.relkind::text,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%';
SELECT 't', t.tgrelid::text, t.tgtype::text, t.tgfoid::text, NULL, NULL
  FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal;
SELECT 'u', r.ev_class::text, r.ev_type::text, pg_catalog.pg_get_ruledef(r.oid), NULL, NULL
  FROM pg_catalog.pg_rewrite r WHERE r.rulename <> '_RETURN';
WITH ${FUNCTION_DEPENDENCIES}
SELECT 'w', x.rel::text, x.fn::text, NULL, NULL, NULL FROM (
  SELECT a.adrelid AS rel, fn.fn FROM fn JOIN pg_catalog.pg_attrdef a
    ON fn.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND fn.objid = a.oid
  UNION ALL
  SELECT co.conrelid, fn.fn FROM fn JOIN pg_catalog.pg_constraint co
    ON fn.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND fn.objid = co.oid AND co.conrelid <> 0
  UNION ALL
  SELECT i.indrelid, fn.fn FROM fn JOIN pg_catalog.pg_index i
    ON fn.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND fn.objid = i.indexrelid
  UNION ALL
  SELECT s.stxrelid, fn.fn FROM fn JOIN pg_catalog.pg_statistic_ext s
    ON fn.classid = 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass AND fn.objid = s.oid
  UNION ALL
  SELECT tg.tgrelid, fn.fn FROM fn JOIN pg_catalog.pg_trigger tg
    ON fn.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND fn.objid = tg.oid) x;
WITH ${FUNCTION_DEPENDENCIES}
SELECT 'p', po.polrelid::text, fn.fn::text, NULL, NULL, NULL
  FROM fn JOIN pg_catalog.pg_policy po
    ON fn.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND fn.objid = po.oid;
SELECT 'y', a.attrelid::text, a.atttypid::text, NULL, NULL, NULL
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE t.typtype = 'd' AND a.attnum > 0 AND NOT a.attisdropped;
SELECT 'i', i.inhrelid::text, i.inhparent::text, NULL, NULL, NULL FROM pg_catalog.pg_inherits i;
SELECT 'f', co.conrelid::text, co.confrelid::text, co.confdeltype::text, co.confupdtype::text, NULL
  FROM pg_catalog.pg_constraint co WHERE co.contype = 'f';
SELECT 'e', e.evtfoid::text, NULL, NULL, NULL, NULL FROM pg_catalog.pg_event_trigger e;
SELECT 'x', ft.ftrelid::text, pg_catalog.array_to_string(ft.ftoptions, E'\\n'), NULL, NULL, NULL
  FROM pg_catalog.pg_foreign_table ft;`;

type Building = {
  -readonly [K in keyof RelationCode]: RelationCode[K];
};

export function buildCodeSnapshot(rows: TextRows, loadedAt: number): CodeSnapshot {
  const builtinNames = new Set<string>();
  const userNames = new Map<string, string[]>();
  const operators = new Map<string, number[]>();
  const castsByType = new Map<string, number[]>();
  const domains: { name: string; oid: number; base: number }[] = [];
  const domainChecks = new Map<number, number[]>();
  const relations = new Map<number, Building>();
  const later: (string | null)[][] = [];
  const push = <K>(map: Map<K, number[]>, key: K, value: number): void => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [value]);
    else if (!list.includes(value)) list.push(value);
  };
  for (const row of rows) {
    const [tag, a, b, c, d, e] = row;
    switch (tag) {
      case 'n':
        if (a == null) break;
        if (b === 'true') {
          const list = userNames.get(a.toLowerCase());
          if (list === undefined) userNames.set(a.toLowerCase(), [a]);
          else list.push(a);
        }
        if (c === 'true') builtinNames.add(a.toLowerCase());
        break;
      case 'o':
        if (a != null) push(operators, a, Number(b));
        break;
      case 'c':
        if (a != null) push(castsByType, a.toLowerCase(), Number(b));
        break;
      case 'd':
        if (a != null) domains.push({ name: a.toLowerCase(), oid: Number(b), base: Number(c) });
        break;
      case 'k':
        push(domainChecks, Number(a), Number(b));
        break;
      case 'r':
        relations.set(Number(a), {
          oid: Number(a),
          schema: b ?? '',
          name: c ?? '',
          kind: d ?? 'r',
          view: e ?? undefined,
          triggers: [],
          rules: [],
          writeFunctions: [],
          policyFunctions: [],
          children: [],
          referencedBy: [],
          foreignTable: undefined,
          hasCode: false,
        });
        break;
      default:
        later.push(row);
    }
  }
  // Domain over domain: a value of the outer one passes the inner one's checks too.
  const domainByOid = new Map(domains.map((dm) => [dm.oid, dm]));
  const checksOf = (typeOid: number): number[] => {
    const out: number[] = [];
    for (let t: number | undefined = typeOid, i = 0; t !== undefined && i < 16; i++) {
      out.push(...(domainChecks.get(t) ?? []));
      t = domainByOid.get(t)?.base;
    }
    return out;
  };
  const types = new Map<string, number[]>();
  for (const [name, fns] of castsByType) for (const fn of fns) push(types, name, fn);
  for (const dm of domains) for (const fn of checksOf(dm.oid)) push(types, dm.name, fn);
  const eventTriggerFunctions: number[] = [];
  for (const [tag, a, b, c, d] of later) {
    const rel = relations.get(Number(a));
    switch (tag) {
      case 't':
        rel?.triggers.push({ events: Number(b), fn: Number(c) });
        break;
      case 'u':
        if (b != null && c != null) rel?.rules.push({ event: b, definition: c });
        break;
      case 'w':
        if (rel && !rel.writeFunctions.includes(Number(b))) rel.writeFunctions.push(Number(b));
        break;
      case 'p':
        if (rel && !rel.policyFunctions.includes(Number(b))) rel.policyFunctions.push(Number(b));
        break;
      case 'y':
        for (const fn of checksOf(Number(b)))
          if (rel && !rel.writeFunctions.includes(fn)) rel.writeFunctions.push(fn);
        break;
      case 'i':
        relations.get(Number(b))?.children.push(Number(a));
        break;
      case 'f':
        relations
          .get(Number(b))
          ?.referencedBy.push({ relation: Number(a), onDelete: c ?? 'a', onUpdate: d ?? 'a' });
        break;
      case 'e':
        eventTriggerFunctions.push(Number(a));
        break;
      case 'x':
        if (rel) rel.foreignTable = remoteName(rel.name, b ?? '');
        break;
    }
  }
  const byName = new Map<string, RelationCode[]>();
  for (const rel of relations.values()) {
    rel.hasCode =
      rel.view !== undefined ||
      (rel.foreignTable !== undefined && rel.foreignTable !== rel.name.toLowerCase()) ||
      rel.triggers.length > 0 ||
      rel.rules.length > 0 ||
      rel.writeFunctions.length > 0 ||
      rel.policyFunctions.length > 0 ||
      rel.children.length > 0 ||
      rel.referencedBy.length > 0;
    const key = rel.name.toLowerCase();
    const list = byName.get(key);
    if (list === undefined) byName.set(key, [rel]);
    else list.push(rel);
  }
  return {
    loadedAt,
    builtinNames,
    userNames,
    operators,
    types,
    relations: byName,
    relationsByOid: relations,
    eventTriggerFunctions,
  };
}

/** The relation a foreign table's options name on the remote side (`schema.table`, or the local name). */
function remoteName(local: string, options: string): string {
  const option = (key: string): string | undefined =>
    options
      .split('\n')
      .find((o) => o.startsWith(`${key}=`))
      ?.slice(key.length + 1);
  const table = (option('table_name') ?? local).toLowerCase();
  const schema = option('schema_name');
  return schema === undefined ? table : `${schema.toLowerCase()}.${table}`;
}

export class CodeCatalog {
  private current: CodeSnapshot | undefined;
  private loading: Promise<CodeSnapshot> | undefined;
  private stale = false;
  private lastLoadMs = 0;
  private readonly bodies = new LruCache<string, RoutineCode>(2000);

  constructor(
    private readonly runner: CatalogQueryRunner,
    private readonly analyzer: BodyAnalyzer,
    private readonly now: () => number = Date.now,
  ) {}

  /** Code changed somewhere (a transaction with DDL ended, a name nobody knew was called): reload before use. */
  markStale(): void {
    this.stale = true;
  }

  /**
   * A snapshot fit for a decision: reloaded first when marked stale or older than RELOAD_AFTER_MS, refreshed in
   * the background once older than REFRESH_AFTER_MS (so a busy gateway never waits for it).
   */
  async snapshot(): Promise<CodeSnapshot> {
    return this.freshSnapshot() ?? this.reload();
  }

  /** The snapshot when it is fit for a decision without a reload first (see snapshot()), else undefined. */
  freshSnapshot(): CodeSnapshot | undefined {
    const snap = this.current;
    if (snap === undefined || this.stale) return undefined;
    const age = this.now() - snap.loadedAt;
    if (age > RELOAD_AFTER_MS) return undefined;
    const refreshAfter = Math.max(REFRESH_AFTER_MS, this.lastLoadMs * REFRESH_LOAD_FACTOR);
    // One background refresh at a time: statements decided meanwhile do not each chain a handler onto it.
    if (age > refreshAfter && this.loading === undefined) this.reload().catch(() => undefined);
    return snap;
  }

  private reload(): Promise<CodeSnapshot> {
    this.loading ??= (async () => {
      try {
        this.stale = false;
        const started = this.now();
        const rows = await this.runner.query(SNAPSHOT_SQL);
        this.lastLoadMs = this.now() - started;
        this.current = buildCodeSnapshot(rows, started);
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

  /** The user routines named `names` (exact pg_proc names) or numbered `oids`, as pg_proc has them now. */
  async routines(names: readonly string[], oids: readonly number[]): Promise<RoutineRow[]> {
    const oidList = oids.filter((o) => Number.isInteger(o) && o >= FIRST_NORMAL_OID);
    if (names.length === 0 && oidList.length === 0) return [];
    const rows = await this.runner.query(`
SELECT p.oid::text, p.xmin::text, p.proname, n.nspname, p.pronargs::text, p.pronargdefaults::text,
       (p.provariadic <> 0)::text, p.prokind::text, l.lanname,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
                  AND d.deptype = 'e')::text,
       CASE WHEN l.lanname = 'internal' THEN
         (SELECT pg_catalog.string_agg(DISTINCT b.proname, ',') FROM pg_catalog.pg_proc b
           WHERE b.oid < ${FIRST_NORMAL_OID} AND b.prosrc = p.prosrc) END,
       CASE WHEN p.prokind = 'a' THEN
         (SELECT pg_catalog.concat_ws(',', a.aggtransfn::pg_catalog.oid, a.aggfinalfn::pg_catalog.oid,
                 a.aggcombinefn::pg_catalog.oid, a.aggserialfn::pg_catalog.oid, a.aggdeserialfn::pg_catalog.oid,
                 a.aggmtransfn::pg_catalog.oid, a.aggminvtransfn::pg_catalog.oid, a.aggmfinalfn::pg_catalog.oid)
            FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid) END
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE p.oid >= ${FIRST_NORMAL_OID}
   AND (p.proname = ANY (ARRAY[${names.map(sqlLiteral).join(',')}]::pg_catalog.name[])
        OR p.oid = ANY (ARRAY[${oidList.join(',')}]::pg_catalog.oid[]))`);
    return rows.map((r) => ({
      oid: Number(r[0]),
      xmin: r[1] ?? '',
      name: r[2] ?? '',
      schema: r[3] ?? '',
      nargs: Number(r[4]),
      ndefaults: Number(r[5]),
      variadic: r[6] === 'true',
      kind: r[7] ?? 'f',
      language: r[8] ?? '',
      inExtension: r[9] === 'true',
      builtinAliases: r[10] ? r[10].split(',') : [],
      aggregateFunctions: r[11]
        ? r[11]
            .split(',')
            .map(Number)
            .filter((o) => o >= FIRST_NORMAL_OID)
        : [],
    }));
  }

  /** The analysed body of a SQL or PL/pgSQL routine, when cached for this (oid, xmin). */
  cachedCode(row: RoutineRow): RoutineCode | undefined {
    return this.bodies.get(`${row.oid}:${row.xmin}`);
  }

  /**
   * Reads and analyses the bodies of `rows` (SQL and PL/pgSQL routines not cached yet). A routine replaced
   * between the two queries is analysed as it is now; a dropped one is missing from the result.
   */
  async loadCode(rows: readonly RoutineRow[]): Promise<Map<number, RoutineCode>> {
    const out = new Map<number, RoutineCode>();
    if (rows.length === 0) return out;
    const found = await this.runner.query(`
SELECT p.oid::text, p.xmin::text, pg_catalog.pg_get_functiondef(p.oid)
  FROM pg_catalog.pg_proc p
 WHERE p.oid = ANY (ARRAY[${rows.map((r) => r.oid).join(',')}]::pg_catalog.oid[]) AND p.prokind IN ('f', 'p')`);
    for (const [oid, xmin, definition] of found) {
      if (definition == null) continue;
      const key = `${oid}:${xmin}`;
      let code = this.bodies.get(key);
      if (code === undefined) {
        code = routineCode(this.analyzer.analyze(definition));
        this.bodies.set(key, code);
      }
      out.set(Number(oid), code);
    }
    return out;
  }

  /** The analysis of a view's query or a rule's definition (cached by the analyzer, by text). */
  analyzeText(text: string): SqlAnalysis {
    return this.analyzer.analyze(text);
  }

  close(): void {
    this.runner.close();
  }
}

/** A CREATE FUNCTION text's analysis → the stored body: the statements and references of its definition. */
export function routineCode(analysis: SqlAnalysis): RoutineCode {
  const problem = analysis.error ?? analysis.refused;
  const definitions = analysis.code.definitions;
  const own = definitions.find((d) => d.from === 1);
  const statements = recordedStatements(analysis);
  const base = {
    statements,
    facts: own === undefined ? [] : statements.slice(own.from, own.to),
    refs: own?.refs ?? analysis.code.refs,
    definitions: definitions.filter((d) => d !== own),
  };
  // A body in a language the walker cannot read marks the CREATE FUNCTION fact itself dynamic.
  const opaque = analysis.statements[0]?.dynamic === true ? 'its language cannot be analysed' : undefined;
  const unknown = problem ?? opaque;
  return unknown === undefined ? base : { ...base, unknown };
}
