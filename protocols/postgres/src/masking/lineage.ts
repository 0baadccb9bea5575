/**
 * Lineage of a statement's outputs: which base columns each output value is computed from, read off the parse tree
 * (libpg_query) and resolved against the masking catalog. Expressions (`lower(email)`, `email || ''`, casts,
 * COALESCE, CASE, aggregates, whole-row references, subqueries, set operations, CTEs, views, set-returning
 * functions) carry the union of their inputs' sources; WHERE / JOIN ON / GROUP BY / ORDER BY are not outputs.
 *
 * Conservative by construction: an unknown column name is charged to every opaque range entry in scope, a bare
 * relation name that exists in several schemas is charged to all of them, and anything whose output positions
 * cannot be determined is reported as such so the caller can refuse it.
 */
import type { ColumnSource } from '@agentgate/core';
import type { CatalogRelation, CatalogSnapshot } from './column-catalog.js';
import {
  SIDE_CHANNEL_FUNCTIONS,
  sqlArgumentIndex,
  TABLE_READING_FUNCTIONS,
  DATA_DUMPING_FUNCTIONS,
  DATA_HOLDING_VIEWS,
  TEXT_TYPES,
} from './function-classes.js';

export type Node = Record<string, unknown>;

/** Base columns an output depends on, keyed `schema.table.column`. */
export type Deps = Map<string, ColumnSource>;

export interface OutputColumn {
  readonly name: string;
  readonly deps: Deps;
}

export interface Outputs {
  /** null: the number or order of output columns is unknown (`*` over a set-returning function). */
  readonly columns: OutputColumn[] | null;
  /** Union of every output's deps (also when columns is null). */
  readonly all: Deps;
}

interface RangeEntry {
  readonly alias: string;
  /** null: columns unknown (a function in FROM without a column list). */
  readonly columns: OutputColumn[] | null;
  readonly all: Deps;
  /** The tables a plain relation reference may be (several when its name is in several schemas). */
  readonly tables?: readonly { schema: string; table: string }[];
}

interface Scope {
  readonly entries: RangeEntry[];
  readonly ctes: Map<string, Outputs>;
  readonly parent: Scope | undefined;
}

/** Things the analysis met that the caller decides about (refuse when they involve masked columns). */
export interface LineageFindings {
  /** Casts of a value to a non-text type: `[deps, type name]`. */
  readonly casts: { deps: Deps; type: string }[];
  /** Calls of functions with side channels or SQL text arguments, user-defined functions: `[function, deps]`. */
  readonly calls: {
    fn: string;
    deps: Deps;
    kind: 'side-channel' | 'dynamic-sql' | 'user-defined' | 'reads-data';
  }[];
  /** Relations named anywhere (lower case, as written). */
  readonly relations: Set<string>;
}

const MAX_DEPTH = 32;

export class LineageAnalyzer {
  readonly findings: LineageFindings = { casts: [], calls: [], relations: new Set() };
  private depth = 0;
  private readonly viewCache: WeakMap<CatalogRelation, OutputColumn[] | null>;

  constructor(
    private readonly catalog: CatalogSnapshot,
    private readonly parseSql: (text: string) => { stmts?: readonly { stmt?: Node }[] },
    viewCache?: WeakMap<CatalogRelation, OutputColumn[] | null>,
  ) {
    this.viewCache = viewCache ?? new WeakMap();
  }

  /** Outputs of a SelectStmt node (its inner object). */
  select(stmt: Node, parent?: Scope): Outputs {
    if (++this.depth > MAX_DEPTH) throw new Error('query nested too deeply to analyse for masking');
    try {
      return this.selectInner(stmt, parent);
    } finally {
      this.depth--;
    }
  }

  private selectInner(stmt: Node, parent: Scope | undefined): Outputs {
    const scope: Scope = { entries: [], ctes: new Map(parent?.ctes ?? []), parent };
    const withClause = stmt['withClause'] as Node | undefined;
    if (withClause) this.addCtes(withClause, scope);
    const op = stmt['op'];
    if (op !== undefined && op !== 'SETOP_NONE') {
      const left = this.select(stmt['larg'] as Node, scope);
      const right = this.select(stmt['rarg'] as Node, scope);
      return zipOutputs(left, right);
    }
    const values = stmt['valuesLists'] as Node[] | undefined;
    if (values) {
      let result: Outputs | undefined;
      for (const row of values) {
        const items = ((row['List'] as Node | undefined)?.['items'] as Node[] | undefined) ?? [];
        const outputs = outputsOf(
          items.map((item, i) => ({ name: `column${i + 1}`, deps: this.expr(item, scope) })),
        );
        result = result ? zipOutputs(result, outputs) : outputs;
      }
      return result ?? outputsOf([]);
    }
    for (const item of (stmt['fromClause'] as Node[] | undefined) ?? []) this.addFromItem(item, scope);
    return this.targetList((stmt['targetList'] as Node[] | undefined) ?? [], scope);
  }

  /** Outputs of a target or RETURNING list in a scope. */
  targetList(list: readonly Node[], scope: Scope): Outputs {
    const columns: OutputColumn[] = [];
    let known = true;
    const all: Deps = new Map();
    for (const item of list) {
      const target = item['ResTarget'] as Node | undefined;
      const val = target?.['val'] as Node | undefined;
      if (!val) continue;
      const ref = val['ColumnRef'] as Node | undefined;
      const fields = (ref?.['fields'] as Node[] | undefined) ?? [];
      if (ref && fields.length > 0 && fields[fields.length - 1]!['A_Star'] !== undefined) {
        const qualifier = fields.length > 1 ? stringOf(fields[fields.length - 2]!) : undefined;
        const entries =
          qualifier === undefined
            ? scope.entries
            : scope.entries.filter((e) => e.alias === qualifier.toLowerCase());
        for (const entry of entries) {
          merge(all, entry.all);
          if (entry.columns === null) known = false;
          else columns.push(...entry.columns);
        }
        continue;
      }
      const deps = this.expr(val, scope);
      merge(all, deps);
      columns.push({ name: typeof target?.['name'] === 'string' ? target['name'] : outputName(val), deps });
    }
    return { columns: known ? columns : null, all };
  }

  /** A scope over one relation (INSERT/UPDATE/DELETE targets) plus FROM/USING items. */
  scopeFor(relation: Node | undefined, fromItems: readonly Node[], withClause?: Node): Scope {
    // (also used with no relation, for a statement's WITH clause alone)
    const scope: Scope = { entries: [], ctes: new Map(), parent: undefined };
    if (withClause) this.addCtes(withClause, scope);
    if (relation) this.addFromItem({ RangeVar: relation }, scope);
    for (const item of fromItems) this.addFromItem(item, scope);
    return scope;
  }

  /**
   * The scope of `INSERT … ON CONFLICT DO UPDATE SET …`: the target row, and `excluded`, the row proposed for
   * insertion, charged to nothing (its values are the INSERT's own, whose copies are checked as such).
   */
  onConflictScope(relation: Node, withClause?: Node): Scope {
    const scope = this.scopeFor(relation, [], withClause);
    const columns = scope.entries[0]?.columns?.map((c) => ({ name: c.name, deps: new Map() })) ?? null;
    scope.entries.push({ alias: 'excluded', columns, all: new Map() });
    return scope;
  }

  /** Columns of a catalog relation (a view's through its definition). */
  relationColumns(rel: CatalogRelation): OutputColumn[] | null {
    if (rel.viewDefinition === undefined) {
      return rel.ordered.map((column) => ({
        name: column,
        deps: single({
          schema: rel.schema.toLowerCase(),
          table: rel.name.toLowerCase(),
          column: column.toLowerCase(),
        }),
      }));
    }
    if (this.viewCache.has(rel)) return this.viewCache.get(rel)!;
    this.viewCache.set(rel, null); // a view that refers to itself stays unknown
    let columns: OutputColumn[] | null = null;
    try {
      const stmt = this.parseSql(rel.viewDefinition).stmts?.[0]?.stmt?.['SelectStmt'] as Node | undefined;
      const out = stmt ? this.select(stmt) : undefined;
      if (out?.columns)
        columns = rel.ordered.map((name, i) => ({ name, deps: out.columns![i]?.deps ?? out.all }));
    } catch {
      columns = null;
    }
    this.viewCache.set(rel, columns);
    return columns;
  }

  private addCtes(withClause: Node, scope: Scope): void {
    for (const item of (withClause['ctes'] as Node[] | undefined) ?? []) {
      const cte = item['CommonTableExpr'] as Node | undefined;
      if (!cte) continue;
      const name = String(cte['ctename']).toLowerCase();
      const query = cte['ctequery'] as Node;
      const aliases = ((cte['aliascolnames'] as Node[] | undefined) ?? []).map(stringOf);
      // A recursive CTE refers to itself: analyse once with an empty placeholder, then with the first result.
      if (withClause['recursive'] === true) scope.ctes.set(name, { columns: null, all: new Map() });
      let out = this.statementOutputs(query, scope);
      if (withClause['recursive'] === true) {
        scope.ctes.set(name, { columns: out.columns, all: out.all });
        out = this.statementOutputs(query, scope);
      }
      const columns = out.columns?.map((c, i) => ({ name: aliases[i] ?? c.name, deps: c.deps })) ?? null;
      scope.ctes.set(name, { columns, all: out.all });
    }
  }

  /** Outputs of a statement used as a row source: SELECT, or a data-modifying statement's RETURNING. */
  statementOutputs(node: Node, parent?: Scope): Outputs {
    const select = node['SelectStmt'] as Node | undefined;
    if (select) return this.select(select, parent);
    for (const kind of ['InsertStmt', 'UpdateStmt', 'DeleteStmt']) {
      const stmt = node[kind] as Node | undefined;
      if (!stmt) continue;
      const from =
        (stmt['fromClause'] as Node[] | undefined) ?? (stmt['usingClause'] as Node[] | undefined) ?? [];
      const scope = this.scopeFor(stmt['relation'] as Node, from, stmt['withClause'] as Node | undefined);
      return this.targetList((stmt['returningList'] as Node[] | undefined) ?? [], scope);
    }
    return { columns: null, all: new Map() };
  }

  private addFromItem(item: Node, scope: Scope): void {
    const rangeVar = item['RangeVar'] as Node | undefined;
    if (rangeVar) {
      const name = String(rangeVar['relname']).toLowerCase();
      const schema =
        typeof rangeVar['schemaname'] === 'string' ? rangeVar['schemaname'].toLowerCase() : undefined;
      const alias =
        ((rangeVar['alias'] as Node | undefined)?.['aliasname'] as string | undefined)?.toLowerCase() ?? name;
      const aliasColumns = aliasNames(rangeVar['alias']);
      const cte = schema === undefined ? scope.ctes.get(name) : undefined;
      if (cte) {
        scope.entries.push({ alias, columns: renameColumns(cte.columns, aliasColumns), all: cte.all });
        return;
      }
      const qualified = schema === undefined ? name : `${schema}.${name}`;
      if (DATA_HOLDING_VIEWS.has(name))
        this.findings.calls.push({ fn: name, deps: new Map(), kind: 'reads-data' });
      // System catalogs are not in the masking catalog (nothing there is masked); do not reload for them.
      if (!name.startsWith('pg_') && schema !== 'pg_catalog' && schema !== 'information_schema')
        this.findings.relations.add(qualified);
      const candidates = this.catalog.byName.get(qualified) ?? [];
      const preferred = candidates.find((r) => r.schema === 'public') ?? candidates[0];
      if (!preferred) {
        // Not a user relation (a system catalog, or unknown): nothing masked comes from it.
        scope.entries.push({ alias, columns: null, all: new Map() });
        return;
      }
      const all: Deps = new Map();
      let columns: OutputColumn[] | null = null;
      for (const rel of candidates) {
        const cols = this.relationColumns(rel);
        if (cols === null) {
          // A view the gateway cannot analyse: charge every column it could read (its definition's relations).
          merge(all, this.opaqueViewDeps(rel));
          continue;
        }
        for (const c of cols) merge(all, c.deps);
        if (rel === preferred) columns = cols;
      }
      if (candidates.length > 1 && columns) {
        // Same name in several schemas (search_path decides): each output carries all same-named columns' deps.
        columns = columns.map((c) => ({ name: c.name, deps: depsOfNamed(c.name, candidates, this) }));
      }
      const tables = candidates
        .filter((rel) => rel.viewDefinition === undefined)
        .map((rel) => ({ schema: rel.schema.toLowerCase(), table: rel.name.toLowerCase() }));
      scope.entries.push({ alias, columns: renameColumns(columns, aliasColumns), all, tables });
      return;
    }
    const sub = item['RangeSubselect'] as Node | undefined;
    if (sub) {
      const out = this.statementOutputs(
        sub['subquery'] as Node,
        sub['lateral'] === true ? scope : scope.parent,
      );
      const alias =
        ((sub['alias'] as Node | undefined)?.['aliasname'] as string | undefined)?.toLowerCase() ?? '';
      scope.entries.push({
        alias,
        columns: renameColumns(out.columns, aliasNames(sub['alias'])),
        all: out.all,
      });
      return;
    }
    const join = item['JoinExpr'] as Node | undefined;
    if (join) {
      this.addFromItem(join['larg'] as Node, scope);
      this.addFromItem(join['rarg'] as Node, scope);
      return;
    }
    const fn = item['RangeFunction'] as Node | undefined;
    if (fn) {
      const deps: Deps = new Map();
      for (const f of (fn['functions'] as Node[] | undefined) ?? []) {
        const items = ((f['List'] as Node | undefined)?.['items'] as Node[] | undefined) ?? [];
        for (const expr of items)
          if (expr && Object.keys(expr).length > 0) merge(deps, this.expr(expr, scope));
      }
      const alias =
        ((fn['alias'] as Node | undefined)?.['aliasname'] as string | undefined)?.toLowerCase() ?? '';
      const names = aliasNames(fn['alias']);
      // With a column list the shape is known; every column may carry any input.
      const columns = names.length > 0 ? names.map((name) => ({ name, deps })) : null;
      scope.entries.push({ alias, columns, all: deps });
      return;
    }
    const sample = item['RangeTableSample'] as Node | undefined;
    if (sample) {
      // `users TABLESAMPLE …` reads the relation like a plain reference (the sampling arguments are constants).
      this.addFromItem(sample['relation'] as Node, scope);
      return;
    }
    // XMLTABLE, JSON_TABLE …: charge every input to an entry of unknown shape.
    const deps = this.expr(item, scope);
    scope.entries.push({ alias: '', columns: null, all: deps });
  }

  private opaqueViewDeps(rel: CatalogRelation): Deps {
    const deps: Deps = new Map();
    if (rel.viewDefinition === undefined) return deps;
    try {
      for (const raw of this.parseSql(rel.viewDefinition).stmts ?? [])
        merge(deps, this.expr(raw.stmt ?? {}, { entries: [], ctes: new Map(), parent: undefined }));
    } catch {
      /* unparsable: nothing more to charge */
    }
    return deps;
  }

  /** The base columns an expression's value is computed from. */
  expr(node: unknown, scope: Scope): Deps {
    const deps: Deps = new Map();
    this.collect(node, scope, deps);
    return deps;
  }

  private collect(node: unknown, scope: Scope, deps: Deps): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) this.collect(item, scope, deps);
      return;
    }
    const n = node as Node;
    const ref = n['ColumnRef'] as Node | undefined;
    if (ref) {
      merge(deps, this.columnRef((ref['fields'] as Node[] | undefined) ?? [], scope));
      return;
    }
    const rangeVar = n['RangeVar'] as Node | undefined;
    if (rangeVar) {
      // A relation met inside an expression tree this analysis does not model: charge all of its columns.
      const inner: Scope = { entries: [], ctes: scope.ctes, parent: undefined };
      this.addFromItem({ RangeVar: rangeVar }, inner);
      for (const entry of inner.entries) merge(deps, entry.all);
      return;
    }
    const subLink = n['SubLink'] as Node | undefined;
    if (subLink) {
      // The test expression (`x IN (…)`) is an input too; EXISTS yields only what its outputs carry.
      this.collect(subLink['testexpr'], scope, deps);
      merge(deps, this.statementOutputs(subLink['subselect'] as Node, scope).all);
      return;
    }
    if (n['SelectStmt'] || n['InsertStmt'] || n['UpdateStmt'] || n['DeleteStmt']) {
      merge(deps, this.statementOutputs(n, scope).all);
      return;
    }
    const cast = n['TypeCast'] as Node | undefined;
    if (cast) {
      const inner = this.expr(cast['arg'], scope);
      const type = typeNameOf(cast['typeName'] as Node | undefined);
      if (inner.size > 0 && !TEXT_TYPES.has(type)) this.findings.casts.push({ deps: inner, type });
      merge(deps, inner);
      return;
    }
    const call = n['FuncCall'] as Node | undefined;
    if (call) {
      const name = functionName(call['funcname']);
      const inner: Deps = new Map();
      for (const key of ['args', 'agg_order', 'agg_filter', 'over']) this.collect(call[key], scope, inner);
      const args = (call['args'] as Node[] | undefined) ?? [];
      const sqlArgument = sqlArgumentIndex(name, args.length);
      if (sqlArgument !== undefined) this.sqlArgument(name, args[sqlArgument], inner);
      else if (TABLE_READING_FUNCTIONS.has(name)) this.tableArgument(name, args, inner);
      else if (DATA_DUMPING_FUNCTIONS.has(name))
        this.findings.calls.push({ fn: name, deps: new Map(), kind: 'reads-data' });
      if (SIDE_CHANNEL_FUNCTIONS.has(name))
        this.findings.calls.push({ fn: name, deps: inner, kind: 'side-channel' });
      else if (this.catalog.userFunctions.has(name))
        this.findings.calls.push({ fn: name, deps: inner, kind: 'user-defined' });
      merge(deps, inner);
      return;
    }
    for (const key in n) this.collect(n[key], scope, deps);
  }

  /** table_to_xml('users', …): every column of the named relation; a computed name cannot be attributed. */
  private tableArgument(fn: string, args: readonly Node[], deps: Deps): void {
    const text =
      constString(args[0]) ??
      constString((args[0]?.['TypeCast'] as Node | undefined)?.['arg'] as Node | undefined);
    if (text === undefined) {
      this.findings.calls.push({ fn, deps: new Map(), kind: 'dynamic-sql' });
      return;
    }
    const parts = text.split('.').map((p) => p.replace(/^"|"$/g, '').toLowerCase());
    const rangeVar: Node =
      parts.length > 1 ? { schemaname: parts[0], relname: parts[1] } : { relname: parts[0] };
    const scope: Scope = { entries: [], ctes: new Map(), parent: undefined };
    this.addFromItem({ RangeVar: rangeVar }, scope);
    for (const entry of scope.entries) merge(deps, entry.all);
  }

  /** query_to_xml('SELECT …'): the SQL text is analysed; a computed text cannot be. */
  private sqlArgument(fn: string, arg: Node | undefined, deps: Deps): void {
    const text = constString(arg);
    if (text === undefined) {
      this.findings.calls.push({ fn, deps: new Map(), kind: 'dynamic-sql' });
      return;
    }
    try {
      for (const raw of this.parseSql(text).stmts ?? [])
        if (raw.stmt) merge(deps, this.statementOutputs(raw.stmt).all);
    } catch {
      this.findings.calls.push({ fn, deps: new Map(), kind: 'dynamic-sql' });
    }
  }

  private columnRef(fields: readonly Node[], scope: Scope): Deps {
    const names = fields.map((f) => (f['A_Star'] !== undefined ? '*' : (stringOf(f) ?? '').toLowerCase()));
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const found = lookup(names, s);
      if (found) return found;
    }
    // Unresolved (a column of an unknown relation, a name this analysis does not model): charge every entry in
    // scope, so a value we cannot place is treated as derived from anything it could have read, and the column of
    // that name in each table in scope (one added since the catalog was loaded is masked by its name).
    const deps: Deps = new Map();
    const last = names[names.length - 1]!;
    for (let s: Scope | undefined = scope; s; s = s.parent)
      for (const e of s.entries) {
        merge(deps, e.all);
        merge(deps, namedColumn(e, last));
      }
    return deps;
  }
}

function lookup(names: readonly string[], scope: Scope): Deps | undefined {
  const last = names[names.length - 1]!;
  if (names.length === 1) {
    if (last === '*') return unionAll(scope.entries);
    const hits = scope.entries.flatMap((e) => e.columns?.filter((c) => c.name.toLowerCase() === last) ?? []);
    if (hits.length > 0) return unionDeps(hits.map((h) => h.deps));
    // A bare range-variable name is a whole-row reference (`SELECT u FROM users u`).
    const entry = scope.entries.find((e) => e.alias === last);
    return entry ? entry.all : undefined;
  }
  const qualifier = names[names.length - 2]!;
  const entry = scope.entries.find((e) => e.alias === qualifier);
  if (!entry) return undefined;
  if (last === '*') return entry.all;
  if (entry.columns === null) return entry.all;
  const hit = entry.columns.find((c) => c.name.toLowerCase() === last);
  // `u.email_typo` errors upstream, or names a column added since the catalog was loaded: the whole row and the
  // column of that name are charged.
  return hit ? hit.deps : unionDeps([entry.all, namedColumn(entry, last)]);
}

/** The column `name` of the tables an entry may be, whether or not the catalog knows it. */
function namedColumn(entry: RangeEntry, name: string): Deps {
  const deps: Deps = new Map();
  if (name === '*') return deps;
  for (const t of entry.tables ?? []) merge(deps, single({ ...t, column: name }));
  return deps;
}

function depsOfNamed(name: string, rels: readonly CatalogRelation[], analyzer: LineageAnalyzer): Deps {
  const deps: Deps = new Map();
  for (const rel of rels)
    for (const c of analyzer.relationColumns(rel) ?? []) if (c.name === name) merge(deps, c.deps);
  return deps;
}

export function merge(into: Deps, from: Deps): void {
  for (const [k, v] of from) into.set(k, v);
}

function unionDeps(list: readonly Deps[]): Deps {
  const out: Deps = new Map();
  for (const d of list) merge(out, d);
  return out;
}

function unionAll(entries: readonly RangeEntry[]): Deps {
  return unionDeps(entries.map((e) => e.all));
}

function single(source: ColumnSource): Deps {
  return new Map([[`${source.schema}.${source.table}.${source.column}`, source]]);
}

function outputsOf(columns: OutputColumn[]): Outputs {
  return { columns, all: unionDeps(columns.map((c) => c.deps)) };
}

function zipOutputs(a: Outputs, b: Outputs): Outputs {
  const all = unionDeps([a.all, b.all]);
  if (!a.columns || !b.columns) return { columns: null, all };
  const columns = a.columns.map((c, i) => ({
    name: c.name,
    deps: unionDeps([c.deps, b.columns![i]?.deps ?? new Map()]),
  }));
  return { columns, all };
}

function renameColumns(columns: OutputColumn[] | null, names: readonly string[]): OutputColumn[] | null {
  if (!columns || names.length === 0) return columns;
  return columns.map((c, i) => ({ name: names[i] ?? c.name, deps: c.deps }));
}

function aliasNames(alias: unknown): string[] {
  const cols = (alias as Node | undefined)?.['colnames'] as Node[] | undefined;
  return (cols ?? []).map((c) => (stringOf(c) ?? '').toLowerCase());
}

/** The output column name PostgreSQL infers (FigureColname): the column, function or type name, else ?column?. */
function outputName(val: Node): string {
  const ref = val['ColumnRef'] as Node | undefined;
  if (ref) {
    const fields = (ref['fields'] as Node[] | undefined) ?? [];
    const last = fields[fields.length - 1];
    return (last && stringOf(last)) ?? '?column?';
  }
  const call = val['FuncCall'] as Node | undefined;
  if (call) return functionName(call['funcname']);
  const cast = val['TypeCast'] as Node | undefined;
  if (cast) {
    const inner = outputName((cast['arg'] ?? {}) as Node);
    return inner !== '?column?' ? inner : typeNameOf(cast['typeName'] as Node | undefined);
  }
  const indirection = val['A_Indirection'] as Node | undefined;
  if (indirection) {
    const list = (indirection['indirection'] as Node[] | undefined) ?? [];
    const last = list[list.length - 1];
    return (last && stringOf(last)) ?? outputName((indirection['arg'] ?? {}) as Node);
  }
  if (val['CaseExpr']) return 'case';
  if (val['CoalesceExpr']) return 'coalesce';
  return '?column?';
}

export function stringOf(node: Node): string | undefined {
  const s = node['String'] as Node | undefined;
  return typeof s?.['sval'] === 'string' ? s['sval'] : undefined;
}

function constString(node: Node | undefined): string | undefined {
  const c = node?.['A_Const'] as Node | undefined;
  const s = c?.['sval'] as Node | undefined;
  return typeof s?.['sval'] === 'string' ? s['sval'] : undefined;
}

export function functionName(list: unknown): string {
  const parts = ((list as Node[] | undefined) ?? []).map((n) => stringOf(n) ?? '');
  return (parts[parts.length - 1] ?? '').toLowerCase();
}

function typeNameOf(typeName: Node | undefined): string {
  const parts = ((typeName?.['names'] as Node[] | undefined) ?? []).map((n) => stringOf(n) ?? '');
  const base = (parts[parts.length - 1] ?? '').toLowerCase();
  return (typeName?.['arrayBounds'] as unknown[] | undefined)?.length ? `${base}[]` : base;
}
