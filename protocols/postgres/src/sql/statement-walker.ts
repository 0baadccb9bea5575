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
import { QUERY_STATEMENTS } from './code-collector.js';
import { commandOf } from './command-names.js';
import { connectionSecrets, defElemSecrets, functionCallSecrets, settingSecrets } from './credentials.js';
import { containsNode } from './constants.js';
import { builtinFunctionEffects, statementEffects } from './effects.js';
import { collectNode, collectTargets } from './node-code-refs.js';
import { describeParseError, parseSql } from './pg-parser.js';
import { analyzeRoutineBody } from './plpgsql-bodies.js';
import { statementSlice } from './sql-text.js';
import { checkVariableSet, checkSetConfig, SET_CONFIG_COMMANDS, refuseSettingsWrite } from './traps.js';
import {
  copyFacts,
  lowerName,
  MAX_DEPTH,
  names,
  newFacts,
  pushEffect,
  pushFacts,
  readConstant,
  relationName,
  rollUp,
  type MutableFacts,
  type TextSource,
  type WalkContext,
} from './walk-context.js';

export { assignmentAsSelect } from './plpgsql-bodies.js';

type Node = Record<string, unknown>;

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
 * Functions that run SQL given as text (xml.c query_to_xml family, contrib/dblink, ts_stat). String literals among
 * their arguments that parse as SQL are analysed as nested statements; a computed argument makes the call dynamic.
 */
const SQL_RUNNING_FUNCTIONS = new Set([
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'dblink',
  'dblink_exec',
  'dblink_open',
  'dblink_send_query',
  'ts_stat',
]);

/**
 * The arguments of a call that may hold SQL it runs. ts_rewrite(query, 'SELECT target, substitute …') runs its second
 * argument only (the first is a tsquery); the three-argument form runs none.
 */
function sqlArguments(base: string, args: readonly unknown[]): readonly unknown[] {
  if (SQL_RUNNING_FUNCTIONS.has(base)) return args;
  return base === 'ts_rewrite' && args.length === 2 ? args.slice(1) : [];
}

const COLUMN_REFERENCES = new Set(['ColumnRef', 'CurrentOfExpr']);

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
    visitStatement(nodeType, stmt[nodeType] as Node, { text: slice, span }, ctx, parent);
    if (topLevel) ctx.topLevelCount++;
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
      analyzeRoutineBody(body['options'], 'sql', f, ctx, analyzeNested);
      break;
    case 'DoStmt':
      analyzeRoutineBody(body['args'], 'plpgsql', f, ctx, analyzeNested);
      break;
  }

  ctx.code.leave(stored, ctx.facts.length);
  for (const effect of statementEffects(nodeType, body)) pushEffect(f, effect, ctx);
  ctx.statement = outerStatement;
  if (parent !== undefined) rollUp(parent, f);
  return f;
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
  } else {
    for (const arg of sqlArguments(base, args)) {
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
