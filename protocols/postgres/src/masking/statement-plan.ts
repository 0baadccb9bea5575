/**
 * The statement-level masking check, run before a statement is forwarded: it proves which output positions carry
 * values derived from masked columns (to be masked in every DataRow / COPY row of that statement) and refuses what
 * cannot be made safe, naming the masked column (SQLSTATE 42501).
 *
 * Policy (see docs in index.ts): outputs are masked by lineage; copies of masked values into other relations,
 * casts to non-text types (conversion errors quote the value), side-channel functions, SQL text the gateway cannot
 * read, opaque function bodies and renames of masked relations are refused. WHERE-clause predicates are allowed.
 */
import type { ColumnSource, SessionMasker, ValueMasker } from '@agentgate/core';
import type { CatalogRelation, CatalogSnapshot } from './column-catalog.js';
import {
  LineageAnalyzer,
  stringOf,
  type Deps,
  type Node,
  type OutputColumn,
  type Outputs,
} from './lineage.js';
import { checkAlterTable, checkCreateIndex, type AlterationChecks } from './table-alterations.js';

export interface StatementPlan {
  /** Output position → masker, for results whose values are derived from masked columns. */
  readonly positional: ReadonlyMap<number, ValueMasker> | null;
  /** COPY … TO STDOUT (text format): field position → masker. */
  readonly copy: ReadonlyMap<number, ValueMasker> | null;
  /**
   * The number of output columns the positions were computed for. A result of another width (a `*` this analysis
   * expanded differently, e.g. over JOIN … USING) is masked in every column: positions are never guessed.
   */
  readonly width: number;
  /** The statement reads a relation with masked columns: error and notice texts are scrubbed harder. */
  readonly touchesMasked: boolean;
}

export interface PlanResult {
  readonly plan: StatementPlan;
  readonly refusal?: string;
  /** The statement changes the schema: the catalog must be reloaded. */
  readonly ddl: boolean;
  /** Relation names the statement referred to (to reload the catalog when one is unknown). */
  readonly relations: readonly string[];
}

export const EMPTY_PLAN: StatementPlan = Object.freeze({
  positional: null,
  copy: null,
  width: 0,
  touchesMasked: false,
});

type Parse = (text: string) => { stmts?: readonly { stmt?: Node }[] };

const BODY_STATEMENTS = new Set([
  'DoStmt',
  'CreateFunctionStmt',
  'CreateTrigStmt',
  'RuleStmt',
  'CallStmt',
  'CreateEventTrigStmt',
]);

export function planStatements(
  text: string,
  masker: SessionMasker,
  catalog: CatalogSnapshot,
  parse: Parse,
  viewCache?: WeakMap<CatalogRelation, OutputColumn[] | null>,
): PlanResult {
  const stmts = parse(text).stmts ?? [];
  const analyzer = new LineageAnalyzer(catalog, parse, viewCache);
  const columnRules = masker.coversColumn({ schema: '*', table: '*', column: '*' });
  const masked = (deps: Deps): [ColumnSource, ValueMasker] | undefined => firstMasked(deps, masker);
  let refusal: string | undefined;
  let ddl = false;
  let positional: Map<number, ValueMasker> | null = null;
  let copy: Map<number, ValueMasker> | null = null;
  let plansWithPositions = 0;
  let width = 0;
  const refuse = (message: string): void => {
    refusal ??= `agentgate: ${message}`;
  };
  const alterationChecks: AlterationChecks = {
    maskedSource: (node, relation) => {
      // Scoping the relation also charges it as read, so errors quoting its rows are scrubbed.
      const hit = masked(analyzer.expr(node, analyzer.scopeFor(relation, [])));
      return hit && describe(hit[0]);
    },
    hasMasked: (relation) => relationHasMasked(catalog.byName.get(relationKey(relation)), masker, analyzer),
    refuse,
  };

  for (const raw of stmts) {
    const node = raw.stmt ?? {};
    const kind = Object.keys(node)[0] ?? '';
    const stmt = (node[kind] ?? {}) as Node;
    if (
      /^(Create|Alter|Drop|Rename|View|Comment|Grant|Truncate|ImportForeignSchema)/.test(kind) ||
      (kind === 'SelectStmt' && stmt['intoClause'])
    )
      ddl = true;
    try {
      const outputs = planOne(kind, stmt, node);
      if (outputs) {
        const positions = positionsOf(outputs, masked, (source) =>
          refuse(
            `cannot tell which result column carries masked column ${describe(source)}; select it by name`,
          ),
        );
        if (positions) {
          plansWithPositions++;
          width = outputs.columns?.length ?? 0;
          if (kind === 'CopyStmt') copy = positions;
          else positional = positions;
        }
      }
    } catch (err) {
      if (columnRules) refuse(`statement could not be checked for masked columns: ${(err as Error).message}`);
    }
  }

  if (plansWithPositions > 0 && stmts.length > 1) {
    refuse('a query string that derives values from masked columns must hold a single statement');
  }
  const f = analyzer.findings;
  for (const cast of f.casts) {
    const hit = masked(cast.deps);
    if (hit)
      refuse(
        `casting masked column ${describe(hit[0])} to ${cast.type} is refused (a conversion error would reveal it)`,
      );
  }
  for (const call of f.calls) {
    if (call.kind === 'side-channel') {
      const hit = masked(call.deps);
      if (hit) refuse(`passing masked column ${describe(hit[0])} to ${call.fn}() is refused`);
    } else if (columnRules && call.kind === 'dynamic-sql') {
      refuse(`${call.fn}() with a computed query cannot be checked for masked columns`);
    } else if (columnRules && call.kind === 'reads-data') {
      refuse(
        `${call.fn} holds or dumps column values the gateway cannot attribute; refused while column masking applies`,
      );
    } else if (columnRules && call.kind === 'user-defined') {
      refuse(`user-defined function ${call.fn}() cannot be checked for masked columns while masking applies`);
    }
  }
  const touchesMasked = [...f.relations].some((name) =>
    relationHasMasked(catalog.byName.get(name), masker, analyzer),
  );
  const plan: StatementPlan =
    positional === null && copy === null && !touchesMasked
      ? EMPTY_PLAN
      : { positional, copy, width, touchesMasked };
  return { plan, ddl, relations: [...f.relations], ...(refusal === undefined ? {} : { refusal }) };

  /** Per statement kind: refuse copies, return the outputs the client will receive (or undefined). */
  function planOne(kind: string, stmt: Node, node: Node): Outputs | undefined {
    switch (kind) {
      case 'SelectStmt': {
        const out = analyzer.select(stmt);
        if (stmt['intoClause']) return (refuseCopy(out.all), undefined);
        return out;
      }
      case 'InsertStmt': {
        const select = stmt['selectStmt'] as Node | undefined;
        // The INSERT's own WITH clause is in scope for its SELECT.
        if (select)
          refuseCopy(
            analyzer.statementOutputs(
              select,
              analyzer.scopeFor(undefined, [], stmt['withClause'] as Node | undefined),
            ).all,
          );
        // ON CONFLICT DO UPDATE SET name = users.api_key writes the conflicting row's values, like an UPDATE.
        const onConflict = stmt['onConflictClause'] as Node | undefined;
        if (onConflict)
          refuseCopy(
            analyzer.expr(
              onConflict['targetList'],
              analyzer.onConflictScope(stmt['relation'] as Node, stmt['withClause'] as Node | undefined),
            ),
          );
        return analyzer.statementOutputs(node);
      }
      case 'UpdateStmt': {
        const scope = analyzer.scopeFor(
          stmt['relation'] as Node,
          (stmt['fromClause'] as Node[] | undefined) ?? [],
          stmt['withClause'] as Node | undefined,
        );
        refuseCopy(analyzer.expr(stmt['targetList'], scope));
        return analyzer.statementOutputs(node);
      }
      case 'DeleteStmt':
        return analyzer.statementOutputs(node);
      case 'MergeStmt': {
        const scope = analyzer.scopeFor(
          stmt['relation'] as Node,
          [stmt['sourceRelation'] as Node],
          stmt['withClause'] as Node | undefined,
        );
        refuseCopy(analyzer.expr(stmt['mergeWhenClauses'], scope));
        return undefined;
      }
      case 'CreateTableAsStmt':
      case 'ViewStmt':
        refuseCopy(analyzer.statementOutputs(stmt['query'] as Node).all);
        return undefined;
      case 'DeclareCursorStmt':
      case 'PrepareStmt': {
        const query = stmt['query'] as Node;
        const out = analyzer.statementOutputs(query);
        // FETCH / EXECUTE results keep the source of plain column references in RowDescription; derived ones not.
        if (!isPlainSelect(query)) {
          const hit = masked(out.all);
          if (hit)
            refuse(
              `${kind === 'PrepareStmt' ? 'PREPARE' : 'DECLARE CURSOR'} over a value derived from masked column ${describe(hit[0])} is refused; run the query directly`,
            );
        }
        return undefined;
      }
      case 'ExplainStmt': {
        const inner = stmt['query'] as Node;
        const innerKind = Object.keys(inner)[0] ?? '';
        planOne(innerKind, (inner[innerKind] ?? {}) as Node, inner); // EXPLAIN prints plans, not values
        return undefined;
      }
      case 'CopyStmt':
        return copyOutputs(stmt);
      case 'RenameStmt':
      case 'AlterObjectSchemaStmt': {
        const rel = stmt['relation'] as Node | undefined;
        if (rel && relationHasMasked(catalog.byName.get(relationKey(rel)), masker, analyzer))
          refuse(`renaming or moving ${relationKey(rel)}, which has masked columns, is refused`);
        return undefined;
      }
      case 'AlterTableStmt':
        checkAlterTable(stmt, alterationChecks);
        return undefined;
      case 'IndexStmt':
        checkCreateIndex(stmt, alterationChecks);
        return undefined;
      case 'CreateForeignTableStmt':
      case 'ImportForeignSchemaStmt':
        // A foreign table's rows come through a connection the gateway does not see, possibly from this very
        // database's masked tables under a name no rule names (postgres_fdw OPTIONS (table_name 'users')).
        if (columnRules)
          refuse(
            'foreign tables cannot be checked for masked columns and are refused while column masking applies',
          );
        return undefined;
      default:
        if (BODY_STATEMENTS.has(kind) && columnRules) {
          // PL/pgSQL and SQL bodies can build SQL at run time (EXECUTE 'SELECT api_' || 'key …') and RAISE what
          // they read: the gateway cannot prove what they return, so they are refused while column masking applies.
          const what =
            kind === 'CallStmt'
              ? 'CALL'
              : kind === 'DoStmt'
                ? 'DO blocks'
                : kind.replace(/^Create|Stmt$/g, '').replace(/Trig$/, 'trigger');
          refuse(`${what} cannot be checked for masked columns and are refused while column masking applies`);
        }
        return undefined;
    }
  }

  function refuseCopy(deps: Deps): void {
    const hit = masked(deps);
    if (hit) refuse(`copying masked column ${describe(hit[0])} is refused`);
  }

  function copyOutputs(stmt: Node): Outputs | undefined {
    if (stmt['is_from'] === true) return undefined;
    let out: Outputs;
    const query = stmt['query'] as Node | undefined;
    if (query) out = analyzer.statementOutputs(query);
    else {
      const scope = analyzer.scopeFor(stmt['relation'] as Node, []);
      const entry = analyzer.targetList(
        [{ ResTarget: { val: { ColumnRef: { fields: [{ A_Star: {} }] } } } }],
        scope,
      );
      const attlist = ((stmt['attlist'] as Node[] | undefined) ?? []).map((n) =>
        (stringOf(n) ?? '').toLowerCase(),
      );
      out =
        attlist.length === 0 || !entry.columns
          ? entry
          : {
              columns: attlist.map(
                (name) =>
                  entry.columns!.find((c) => c.name.toLowerCase() === name) ?? { name, deps: entry.all },
              ),
              all: entry.all,
            };
    }
    const hit = masked(out.all);
    if (!hit) return undefined;
    if (typeof stmt['filename'] === 'string' || stmt['is_program'] === true) {
      refuse(`COPY of masked column ${describe(hit[0])} to a file or program is refused`);
      return undefined;
    }
    const format = ((stmt['options'] as Node[] | undefined) ?? [])
      .map((o) => o['DefElem'] as Node | undefined)
      .find((d) => d?.['defname'] === 'format');
    const formatName = format ? (stringOf((format['arg'] ?? {}) as Node) ?? '').toLowerCase() : 'text';
    if (formatName !== 'text') {
      refuse(
        `COPY of masked column ${describe(hit[0])} in ${formatName} format is refused; use the text format`,
      );
      return undefined;
    }
    return out;
  }
}

/** Masked positions of an output list, or null when nothing is masked; calls `unknown` when positions are unknown. */
function positionsOf(
  outputs: Outputs,
  masked: (deps: Deps) => [ColumnSource, ValueMasker] | undefined,
  unknown: (source: ColumnSource) => void,
): Map<number, ValueMasker> | null {
  if (outputs.columns === null) {
    const hit = masked(outputs.all);
    if (hit) unknown(hit[0]);
    return null;
  }
  let positions: Map<number, ValueMasker> | null = null;
  outputs.columns.forEach((column, i) => {
    const hit = masked(column.deps);
    if (hit) (positions ??= new Map()).set(i, hit[1]);
  });
  return positions;
}

function firstMasked(deps: Deps, masker: SessionMasker): [ColumnSource, ValueMasker] | undefined {
  for (const source of deps.values()) {
    const m = masker.forColumn(source);
    if (m) return [source, m];
  }
  return undefined;
}

function relationHasMasked(
  rels: readonly CatalogRelation[] | undefined,
  masker: SessionMasker,
  analyzer: LineageAnalyzer,
): boolean {
  for (const rel of rels ?? []) {
    for (const column of analyzer.relationColumns(rel) ?? [])
      if (firstMasked(column.deps, masker)) return true;
  }
  return false;
}

function isPlainSelect(query: Node): boolean {
  const select = query['SelectStmt'] as Node | undefined;
  if (!select || (select['op'] !== undefined && select['op'] !== 'SETOP_NONE') || select['withClause'])
    return false;
  const targets = (select['targetList'] as Node[] | undefined) ?? [];
  if (
    !targets.every(
      (t) => ((t['ResTarget'] as Node | undefined)?.['val'] as Node | undefined)?.['ColumnRef'] !== undefined,
    )
  )
    return false;
  const plainFrom = (item: Node): boolean => {
    if (item['RangeVar']) return true;
    const join = item['JoinExpr'] as Node | undefined;
    return join !== undefined && plainFrom(join['larg'] as Node) && plainFrom(join['rarg'] as Node);
  };
  return ((select['fromClause'] as Node[] | undefined) ?? []).every(plainFrom);
}

function relationKey(rangeVar: Node): string {
  const name = String(rangeVar['relname']).toLowerCase();
  return typeof rangeVar['schemaname'] === 'string'
    ? `${rangeVar['schemaname'].toLowerCase()}.${name}`
    : name;
}

export function describe(source: ColumnSource): string {
  return `${source.table}.${source.column}`;
}
