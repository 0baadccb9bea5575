/**
 * Walks libpg_query parse trees and collects SqlStatementFacts for every statement, top-level and nested.
 *
 * Nested statements (writable CTEs, EXPLAIN/PREPARE/COPY/CREATE … AS/VIEW inner queries, rule actions,
 * `BEGIN ATOMIC` bodies, SQL and PL/pgSQL function bodies, DO blocks) get facts of their own, and their tables and
 * functions also roll up into the enclosing statement. A SELECT used as a subquery (SubLink, FROM subquery,
 * INSERT … SELECT, a read-only CTE, a UNION arm) is part of its statement, not a statement of its own.
 * CTE names are reported as tables too (`WITH users AS (…)` looks like `users`): over-reporting is the safe side.
 * Row effects beyond a statement's own command (a MERGE action, an upsert, TRUNCATE…) are facts of their own
 * (effects.ts); the code a statement reaches through the catalog is collected as references (code-collector.ts),
 * and credential literals as secrets (credentials.ts).
 */
import { CodeCollector, QUERY_STATEMENTS } from './code-collector.js';
import { commandOf } from './command-names.js';
import {
  connectionSecrets,
  defElemSecrets,
  functionCallSecrets,
  settingSecrets,
  type Secret,
} from './credentials.js';
import { constantText, containsNode } from './constants.js';
import { builtinFunctionEffects, statementEffects, type DerivedEffect } from './effects.js';
import { describeParseError, parsePlpgsql, parseSql } from './pg-parser.js';
import { statementSlice } from './sql-text.js';
import { checkVariableSet, checkSetConfig, SET_CONFIG_COMMANDS, refuseSettingsWrite } from './traps.js';
import { lastName } from './code-collector.js';
import type { RelationEffect } from './code-refs.js';

type Node = Record<string, unknown>;

/** Where a statement's `text` comes from. */
export interface TextSource {
  readonly text: string;
  /**
   * Index into WalkContext.spans when `text` is the slice of a client's top-level statement; undefined when it
   * comes from inside a string literal or dollar-quoted body (function bodies, EXECUTE strings, query_to_xml).
   */
  readonly span: number | undefined;
}

export interface MutableFacts extends TextSource {
  /** Position in WalkContext.facts: the origin of the code references found in this statement. */
  index: number;
  command: string;
  readonly tables: Set<string>;
  readonly functions: Set<string>;
  unfilteredWrite: boolean;
  dynamic: boolean;
}

/** A top-level statement's place in the client's text as libpg_query reports it (UTF-8 bytes). */
export interface StatementSpan {
  readonly location: number | undefined;
  readonly length: number | undefined;
}

/** Effects on the per-session PREPARE registry, applied in order when a cached analysis is used. */
export type SessionOp =
  | { readonly kind: 'prepare'; readonly name: string; readonly from: number; readonly to: number }
  | { readonly kind: 'deallocate'; readonly name: string | null }
  | { readonly kind: 'execute'; readonly name: string };

export interface WalkContext {
  readonly facts: MutableFacts[];
  readonly topLevel: { command: string; text: string }[];
  readonly ops: SessionOp[];
  readonly refusals: string[];
  readonly errors: string[];
  /** The client's top-level statements, in order (parallel to topLevel). */
  readonly spans: StatementSpan[];
  /**
   * Set when the facts depend on the value of a numeric literal (a constant read by traps.ts or as a SQL-running
   * function's argument) or on text outside the parts a numeric-insensitive cache key keeps (a PL/pgSQL function
   * compiled from the whole CREATE FUNCTION text): such an analysis is cached for its exact text only.
   */
  numericValuesMatter: boolean;
  /** 0 for the client's text; deeper inside function bodies and DO blocks. */
  depth: number;
  /** Code the statements reach through the catalog, and code they store (code-collector.ts). */
  readonly code: CodeCollector;
  /** The node type of the innermost statement being walked (its relations are read when it is a query). */
  statement: string;
  /** Credential values found in the tree (credentials.ts): replaced in the recorded text. */
  readonly secrets: Secret[];
}

/** Nested SQL (function bodies inside function bodies…) deeper than this is refused as unanalysable. */
const MAX_DEPTH = 8;

/** Keys under which a SELECT is a part of the enclosing statement rather than a statement of its own. */
const SUBQUERY_KEYS = new Set(['subselect', 'subquery', 'selectStmt', 'ctequery', 'larg', 'rarg']);

/** Relation kinds whose DROP names tables (DropStmt.objects are name lists, not RangeVars). */
const DROPPED_RELATION_KINDS = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_INDEX',
  'OBJECT_SEQUENCE',
  'OBJECT_FOREIGN_TABLE',
]);

/**
 * Functions that run SQL given as text (xml.c query_to_xml family, contrib/dblink). String literals among their
 * arguments that parse as SQL are analysed as nested statements; a computed argument makes the call dynamic.
 */
const SQL_RUNNING_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_send_query',
]);

const COLUMN_REFERENCES = new Set(['ColumnRef', 'CurrentOfExpr']);

export function newContext(): WalkContext {
  return {
    facts: [],
    topLevel: [],
    ops: [],
    refusals: [],
    errors: [],
    spans: [],
    numericValuesMatter: false,
    depth: 0,
    code: new CodeCollector(),
    statement: '',
    secrets: [],
  };
}

function newFacts(command: string, source: TextSource): MutableFacts {
  return {
    index: -1,
    command,
    tables: new Set(),
    functions: new Set(),
    unfilteredWrite: false,
    text: source.text,
    span: source.span,
    dynamic: false,
  };
}

/** A constant's text as read by the walker: reading a number's value makes the analysis value-sensitive. */
function readConstant(node: unknown, ctx: WalkContext): string | undefined {
  return constantText(node, () => {
    ctx.numericValuesMatter = true;
  });
}

function rollUp(parent: MutableFacts, child: MutableFacts): void {
  for (const t of child.tables) parent.tables.add(t);
  for (const f of child.functions) parent.functions.add(f);
}

function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const item of list as Node[]) {
    const s = item['String'] as Node | undefined;
    if (s !== undefined && typeof s['sval'] === 'string') out.push(s['sval']);
  }
  return out;
}

function relationName(rangeVar: Node): string {
  const rel = String(rangeVar['relname']);
  return typeof rangeVar['schemaname'] === 'string' ? `${rangeVar['schemaname']}.${rel}` : rel;
}

function lowerName(parts: readonly string[]): string {
  return parts.join('.').toLowerCase();
}

/**
 * Parse `text` and visit each statement. With a parent, the statements are nested in it (a function body, a
 * string EXECUTEd by PL/pgSQL); without, they are the client's top-level statements.
 */
export function analyzeText(text: string, ctx: WalkContext, parent?: MutableFacts): void {
  if (ctx.depth > MAX_DEPTH) {
    ctx.errors.push(`SQL nested more than ${MAX_DEPTH} levels deep`);
    return;
  }
  let tree;
  try {
    tree = parseSql(text);
  } catch (err) {
    ctx.errors.push(describeParseError(err));
    return;
  }
  for (const raw of tree.stmts ?? []) {
    const stmt = raw.stmt;
    if (stmt === undefined) continue;
    const nodeType = Object.keys(stmt)[0];
    if (nodeType === undefined) continue;
    const slice = statementSlice(text, raw.stmt_location, raw.stmt_len);
    const topLevel = parent === undefined && ctx.depth === 0;
    const span = topLevel
      ? ctx.spans.push({ location: raw.stmt_location, length: raw.stmt_len }) - 1
      : undefined;
    const facts = visitStatement(nodeType, stmt[nodeType] as Node, { text: slice, span }, ctx, parent);
    if (topLevel) ctx.topLevel.push({ command: facts.command, text: slice });
  }
}

/** Analyse SQL found inside another statement, one level deeper. */
function analyzeNested(text: string, parent: MutableFacts, ctx: WalkContext): void {
  ctx.depth++;
  try {
    analyzeText(text, ctx, parent);
  } finally {
    ctx.depth--;
  }
}

function visitStatement(
  nodeType: string,
  body: Node,
  source: TextSource,
  ctx: WalkContext,
  parent: MutableFacts | undefined,
): MutableFacts {
  const f = newFacts(commandOf(nodeType, body), source);
  pushFacts(ctx, f);
  const bodyStart = ctx.facts.length;
  const outerStatement = ctx.statement;
  ctx.statement = nodeType;
  const stored = ctx.code.enter(nodeType, body, f.index);
  collectTargets(nodeType, body, f, ctx);

  switch (nodeType) {
    case 'DropStmt':
      if (DROPPED_RELATION_KINDS.has(String(body['removeType']))) {
        for (const obj of (body['objects'] as Node[] | undefined) ?? []) {
          const parts = names((obj['List'] as Node | undefined)?.['items']);
          // `db.schema.table` names the current database; rules speak of `schema.table`.
          if (parts.length > 0) f.tables.add(parts.slice(-2).join('.'));
        }
      }
      break;
    case 'UpdateStmt':
    case 'DeleteStmt':
      // A WHERE that references no column (`WHERE true`, `WHERE 1 = 1`, `WHERE $1`) filters nothing provable:
      // it counts as unfiltered. A column tautology (`WHERE id = id`) counts as filtered.
      f.unfilteredWrite = !containsNode(body['whereClause'], COLUMN_REFERENCES);
      if (nodeType === 'UpdateStmt') refuseSettingsWrite(body, ctx.refusals);
      break;
    case 'VariableSetStmt':
      checkVariableSet(body, ctx.refusals, (node) => readConstant(node, ctx));
      settingSecrets(body, ctx.secrets);
      break;
    case 'CreateSubscriptionStmt':
    case 'AlterSubscriptionStmt':
      connectionSecrets(body['conninfo'], ctx.secrets);
      break;
    case 'CreateTrigStmt':
    case 'CreateEventTrigStmt':
      f.functions.add(lowerName(names(body['funcname'])));
      break;
    case 'ExecuteStmt':
      if (ctx.depth === 0) ctx.ops.push({ kind: 'execute', name: String(body['name']) });
      else f.dynamic = true; // runs whatever the session prepared when the body runs
      break;
    case 'DeallocateStmt':
      if (ctx.depth === 0)
        ctx.ops.push({ kind: 'deallocate', name: body['isall'] === true ? null : String(body['name']) });
      break;
    case 'DiscardStmt':
      if (ctx.depth === 0 && body['target'] === 'DISCARD_ALL')
        ctx.ops.push({ kind: 'deallocate', name: null });
      break;
  }

  collectNode(nodeType, body, f, ctx);
  walkValue(body, f, ctx, nodeType);

  switch (nodeType) {
    case 'PrepareStmt':
      if (ctx.depth === 0)
        ctx.ops.push({ kind: 'prepare', name: String(body['name']), from: bodyStart, to: ctx.facts.length });
      break;
    case 'CopyStmt':
      if (body['is_program'] === true) pushFacts(ctx, copyFacts(f, 'COPY PROGRAM'));
      else if (typeof body['filename'] === 'string') pushFacts(ctx, copyFacts(f, 'COPY FILE'));
      break;
    case 'CreateFunctionStmt':
      analyzeRoutineBody(body['options'], 'sql', f, ctx);
      break;
    case 'DoStmt':
      analyzeRoutineBody(body['args'], 'plpgsql', f, ctx);
      break;
  }

  ctx.code.leave(stored, ctx.facts.length);
  for (const effect of statementEffects(nodeType, body)) pushEffect(f, effect, ctx);
  ctx.statement = outerStatement;
  if (parent !== undefined) rollUp(parent, f);
  return f;
}

function copyFacts(f: MutableFacts, command: string): MutableFacts {
  const c = newFacts(command, f);
  rollUp(c, f);
  return c;
}

/** A row effect of `f` beyond its own command, as a statement fact of its own (effects.ts). */
function pushEffect(f: MutableFacts, effect: DerivedEffect, ctx: WalkContext): void {
  const c = newFacts(effect.command, f);
  if (effect.tables === undefined) rollUp(c, f);
  else for (const t of effect.tables) c.tables.add(t);
  c.unfilteredWrite = effect.unfilteredWrite;
  c.dynamic = effect.dynamic === true;
  pushFacts(ctx, c);
}

function pushFacts(ctx: WalkContext, f: MutableFacts): void {
  f.index = ctx.facts.push(f) - 1;
}

/** The relations a statement writes, maintains or refreshes (its reads are collected as the walk finds them). */
function collectTargets(nodeType: string, body: Node, f: MutableFacts, ctx: WalkContext): void {
  const target = (rangeVar: unknown, effect: RelationEffect, cascade = false): void => {
    const rel = rangeVar as Node | undefined;
    if (typeof rel?.['relname'] === 'string')
      ctx.code.relation(rel['relname'].toLowerCase(), effect, f.index, cascade);
  };
  switch (nodeType) {
    case 'InsertStmt':
      target(body['relation'], 'insert');
      if ((body['onConflictClause'] as Node | undefined)?.['action'] === 'ONCONFLICT_UPDATE')
        target(body['relation'], 'update');
      break;
    case 'UpdateStmt':
      target(body['relation'], 'update');
      break;
    case 'DeleteStmt':
      target(body['relation'], 'delete');
      break;
    case 'MergeStmt':
      for (const effect of statementEffects(nodeType, body))
        target(body['relation'], effect.command.toLowerCase() as RelationEffect);
      break;
    case 'CopyStmt':
      if (body['is_from'] === true) target(body['relation'], 'insert');
      break;
    case 'TruncateStmt':
      for (const r of (body['relations'] as Node[] | undefined) ?? [])
        target(r['RangeVar'], 'truncate', body['behavior'] === 'DROP_CASCADE');
      break;
    case 'RefreshMatViewStmt':
      target(body['relation'], 'refresh');
      break;
    case 'VacuumStmt': {
      const rels = (body['rels'] as Node[] | undefined) ?? [];
      // VACUUM / ANALYZE without a list processes every table.
      if (rels.length === 0) ctx.code.relation('*', 'maintain', f.index);
      for (const r of rels) target((r['VacuumRelation'] as Node | undefined)?.['relation'], 'maintain');
      break;
    }
    case 'ClusterStmt':
      if (body['relation'] === undefined) ctx.code.relation('*', 'maintain', f.index);
      else target(body['relation'], 'maintain');
      break;
    case 'ReindexStmt':
      if (body['relation'] === undefined) ctx.code.relation('*', 'maintain', f.index);
      else target(body['relation'], 'maintain');
      break;
    case 'AlterTableStmt':
    case 'IndexStmt':
      target(body['relation'], 'maintain');
      break;
  }
}

/** Operators that PostgreSQL applies by name where none is written (btree/hash equality and ordering). */
const IMPLICIT_EQUALITY = ['='];
const IMPLICIT_ORDERING = ['<', '>'];
const BETWEEN_OPERATORS = ['>=', '<=', '<', '>'];

/** Code references in one node: operators, casts, attribute-notation calls, implicit comparisons. */
function collectNode(nodeType: string, node: Node, f: MutableFacts, ctx: WalkContext): void {
  const code = ctx.code;
  const operators = (ops: readonly string[]): void => {
    for (const op of ops) code.operator(op, f.index);
  };
  switch (nodeType) {
    case 'A_Expr': {
      const kind = String(node['kind']);
      if (kind.includes('BETWEEN')) operators(BETWEEN_OPERATORS);
      else {
        const op = lastName(node['name']);
        if (op !== undefined) code.operator(op, f.index);
      }
      break;
    }
    case 'SubLink': {
      const op = lastName(node['operName']);
      if (op !== undefined) code.operator(op, f.index);
      break;
    }
    case 'SortBy': {
      const op = lastName(node['useOp']);
      operators(op === undefined ? IMPLICIT_ORDERING : [op]);
      break;
    }
    case 'TypeCast': {
      const type = lastName((node['typeName'] as Node | undefined)?.['names']);
      if (type !== undefined) code.type(type, f.index);
      break;
    }
    case 'ColumnRef': {
      // `row.f` is f(row) when the row has no column f (PostgreSQL docs "Function Call": attribute notation).
      const fields = (node['fields'] as unknown[] | undefined) ?? [];
      const name = fields.length >= 2 ? lastName(fields) : undefined;
      if (name !== undefined) code.attributeCall(name, f.index);
      break;
    }
    case 'A_Indirection':
      for (const item of (node['indirection'] as Node[] | undefined) ?? []) {
        const s = item['String'] as Node | undefined;
        if (typeof s?.['sval'] === 'string') code.attributeCall(s['sval'].toLowerCase(), f.index);
      }
      break;
    case 'JoinExpr':
      if (node['usingClause'] !== undefined || node['isNatural'] === true) operators(IMPLICIT_EQUALITY);
      break;
    case 'CaseExpr':
      if (node['arg'] !== undefined) operators(IMPLICIT_EQUALITY);
      break;
    case 'MinMaxExpr': // GREATEST / LEAST
      operators(IMPLICIT_ORDERING);
      break;
    case 'SelectStmt': {
      const setOperation = node['op'] !== undefined && node['op'] !== 'SETOP_NONE' && node['all'] !== true;
      if (node['groupClause'] !== undefined || node['distinctClause'] !== undefined || setOperation)
        operators(IMPLICIT_EQUALITY);
      break;
    }
    case 'WindowDef':
      if (node['partitionClause'] !== undefined) operators(IMPLICIT_EQUALITY);
      break;
  }
}

function walkValue(value: unknown, f: MutableFacts, ctx: WalkContext, key: string): void {
  if (Array.isArray(value)) {
    for (const item of value) if (item !== null && typeof item === 'object') walkValue(item, f, ctx, key);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const node = value as Node;
  // Fields typed as a specific struct come without the node-type wrapper: RangeVar (relation, rel, view, …),
  // VariableSetStmt (setstmt), FuncCall (CallStmt.funccall).
  if (typeof node['relname'] === 'string') {
    f.tables.add(relationName(node));
    if (QUERY_STATEMENTS.has(ctx.statement))
      ctx.code.relation(String(node['relname']).toLowerCase(), 'read', f.index);
  }
  if (key === 'over') collectNode('WindowDef', node, f, ctx);
  if (key === 'setstmt') {
    visitStatement('VariableSetStmt', node, f, ctx, f);
    return;
  }
  if (key === 'funccall') visitFuncCall(node, f, ctx);
  for (const k in node) {
    const v = node[k];
    if (v === null || typeof v !== 'object') continue;
    const first = k.charCodeAt(0);
    const isNodeType = first >= 65 && first <= 90; // upper-case: a node wrapper such as { RangeVar: {...} }
    if (isNodeType && !Array.isArray(v)) collectNode(k, v as Node, f, ctx);
    if (k === 'DefElem') defElemSecrets(v as Node, ctx.secrets);
    if (!isNodeType) {
      walkValue(v, f, ctx, k);
    } else if (k === 'FuncCall') {
      visitFuncCall(v as Node, f, ctx);
      walkValue(v, f, ctx, k);
    } else if (k.endsWith('Stmt') && !(k === 'SelectStmt' && SUBQUERY_KEYS.has(key))) {
      visitStatement(k, v as Node, f, ctx, f);
    } else {
      walkValue(v, f, ctx, k);
    }
  }
}

function visitFuncCall(call: Node, f: MutableFacts, ctx: WalkContext): void {
  const parts = names(call['funcname']);
  const name = lowerName(parts);
  f.functions.add(name);
  const base = (parts[parts.length - 1] ?? '').toLowerCase();
  const schema = parts.length > 1 ? parts[parts.length - 2]?.toLowerCase() : undefined;
  const args = (call['args'] as unknown[] | undefined) ?? [];
  const ordered =
    call['agg_within_group'] === true ? ((call['agg_order'] as unknown[] | undefined)?.length ?? 0) : 0;
  ctx.code.call(base, args.length + ordered, call['func_variadic'] === true, f.index);
  functionCallSecrets(base, args, ctx.secrets);
  for (const effect of builtinFunctionEffects(schema, base, args)) pushEffect(f, effect, ctx);
  if (base === 'set_config') {
    const command = checkSetConfig(args, ctx.refusals, (node) => readConstant(node, ctx));
    const words = command === undefined ? undefined : SET_CONFIG_COMMANDS[command];
    if (words !== undefined) {
      const setting = newFacts(words, f);
      setting.functions.add(name);
      pushFacts(ctx, setting);
    }
  } else if (SQL_RUNNING_FUNCTIONS.has(base)) {
    for (const arg of args) {
      const literal = readConstant(arg, ctx);
      if (literal === undefined) {
        const dyn = newFacts('EXECUTE', f);
        dyn.dynamic = true;
        dyn.functions.add(name);
        pushFacts(ctx, dyn);
        continue;
      }
      if (looksLikeSql(literal)) analyzeNested(literal, f, ctx);
    }
  }
}

/** Connection names and strings (`myconn`, `dbname=app`) do not parse; SQL does. */
function looksLikeSql(text: string): boolean {
  try {
    return (parseSql(text).stmts?.length ?? 0) > 0;
  } catch {
    return false;
  }
}

/**
 * CREATE FUNCTION/PROCEDURE (`AS '…'`) and DO bodies: SQL bodies are parsed as SQL, PL/pgSQL bodies by the
 * PL/pgSQL compiler, bodies in any other language (plpython, C, `internal` aliases of built-ins) cannot be read
 * and make the statement dynamic. `BEGIN ATOMIC` bodies are already in the tree (sql_body) and walked as such.
 */
function analyzeRoutineBody(
  options: unknown,
  defaultLanguage: string,
  f: MutableFacts,
  ctx: WalkContext,
): void {
  let language = defaultLanguage;
  let body: string | undefined;
  for (const opt of (options as Node[] | undefined) ?? []) {
    const def = opt['DefElem'] as Node | undefined;
    if (def === undefined) continue;
    const arg = def['arg'] as Node | undefined;
    if (def['defname'] === 'language') {
      const s = arg?.['String'] as Node | undefined;
      if (typeof s?.['sval'] === 'string') language = s['sval'].toLowerCase();
    } else if (def['defname'] === 'as') {
      const direct = arg?.['String'] as Node | undefined;
      if (typeof direct?.['sval'] === 'string') body = direct['sval'];
      else body = names((arg?.['List'] as Node | undefined)?.['items'])[0];
    }
  }
  if (body === undefined) return; // BEGIN ATOMIC, or a definition without a body
  if (language === 'sql') {
    analyzeNested(body, f, ctx);
  } else if (language === 'plpgsql') {
    // CREATE FUNCTION (whose default language is sql): the PL/pgSQL compiler reads the whole statement (argument
    // types with typmods, defaults), not only the body. DO has no number outside its body (gram.y dostmt_opt_list).
    if (defaultLanguage === 'sql') ctx.numericValuesMatter = true;
    analyzePlpgsql(f, ctx);
  } else f.dynamic = true;
}

/** PL/pgSQL statements whose `query` is a string expression executed as SQL (pl_gram.y: EXECUTE, FOR … EXECUTE). */
const DYNAMIC_PL_STATEMENTS = new Set(['PLpgSQL_stmt_dynexecute', 'PLpgSQL_stmt_dynfors']);

function analyzePlpgsql(f: MutableFacts, ctx: WalkContext): void {
  if (ctx.depth >= MAX_DEPTH) {
    ctx.errors.push(`SQL nested more than ${MAX_DEPTH} levels deep`);
    return;
  }
  let tree: unknown;
  try {
    tree = parsePlpgsql(f.text);
  } catch (err) {
    ctx.errors.push(`PL/pgSQL: ${describeParseError(err)}`);
    return;
  }
  walkPlpgsql(tree, f, ctx, '', '');
}

function walkPlpgsql(
  value: unknown,
  f: MutableFacts,
  ctx: WalkContext,
  key: string,
  statement: string,
): void {
  if (Array.isArray(value)) {
    for (const item of value) walkPlpgsql(item, f, ctx, key, statement);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Node)) {
    if (k === 'PLpgSQL_expr') {
      const dynamic = key === 'dynquery' || (key === 'query' && DYNAMIC_PL_STATEMENTS.has(statement));
      visitPlExpression(v as Node, dynamic, f, ctx);
    } else if (k.startsWith('PLpgSQL_stmt_')) {
      walkPlpgsql(v, f, ctx, k, k);
    } else if (typeof v === 'object' && v !== null) {
      walkPlpgsql(v, f, ctx, k, statement);
    }
  }
}

/**
 * One PL/pgSQL expression or SQL statement. `parseMode` is PostgreSQL's RawParseMode: 0 a whole statement,
 * 2 an expression (parsed as `SELECT expr`), 3-5 an assignment `target := expr`.
 */
function visitPlExpression(expr: Node, dynamic: boolean, f: MutableFacts, ctx: WalkContext): void {
  const query = typeof expr['query'] === 'string' ? expr['query'] : '';
  const mode = typeof expr['parseMode'] === 'number' ? expr['parseMode'] : 0;
  const sql = mode === 0 ? query : mode === 2 ? `SELECT ${query}` : assignmentAsSelect(query);
  if (!dynamic) {
    analyzeNested(sql, f, ctx);
    return;
  }
  // EXECUTE 'DROP TABLE t' runs a known string: analyse it. Anything computed is dynamic.
  const literal = singleLiteral(sql);
  if (literal !== undefined) {
    analyzeNested(literal, f, ctx);
    return;
  }
  const dyn = newFacts('EXECUTE', { text: query, span: undefined });
  dyn.dynamic = true;
  pushFacts(ctx, dyn);
  analyzeNested(sql, dyn, ctx);
  rollUp(f, dyn);
}

function singleLiteral(selectSql: string): string | undefined {
  try {
    const stmts = parseSql(selectSql).stmts ?? [];
    const select = stmts.length === 1 ? (stmts[0]?.stmt?.['SelectStmt'] as Node | undefined) : undefined;
    const targets = select?.['targetList'] as Node[] | undefined;
    if (select === undefined || select['fromClause'] !== undefined || targets?.length !== 1) return undefined;
    const val = (targets[0]?.['ResTarget'] as Node | undefined)?.['val'];
    const aConst = (val as Node | undefined)?.['A_Const'] as Node | undefined;
    const sval = aConst?.['sval'] as Node | undefined;
    return typeof sval?.['sval'] === 'string' ? sval['sval'] : undefined;
  } catch {
    return undefined;
  }
}

/** `a[i] := expr` → `SELECT a[i], expr`: the first top-level `:=` or `=` separates target and value. */
export function assignmentAsSelect(query: string): string {
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < query.length; i++) {
    const c = query[i];
    if (quote !== null) {
      if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (depth === 0 && c === ':' && query[i + 1] === '=')
      return `SELECT ${query.slice(0, i)}, ${query.slice(i + 2)}`;
    else if (depth === 0 && c === '=') return `SELECT ${query.slice(0, i)}, ${query.slice(i + 1)}`;
  }
  return `SELECT ${query}`;
}
