/**
 * Routine bodies: CREATE FUNCTION/PROCEDURE and DO bodies in SQL or PL/pgSQL, read as nested statements; PL/pgSQL
 * through its own compiler's tree, whose expressions and statements are SQL (EXECUTE of a computed string is
 * dynamic).
 */
import { describeParseError, parsePlpgsql, parseSql } from './pg-parser.js';
import {
  MAX_DEPTH,
  names,
  newFacts,
  pushFacts,
  rollUp,
  type MutableFacts,
  type WalkContext,
} from './walk-context.js';

type Node = Record<string, unknown>;

/** Analyse SQL found inside another statement, one level deeper (statement-walker.ts). */
export type AnalyzeNested = (text: string, parent: MutableFacts, ctx: WalkContext) => void;

/**
 * CREATE FUNCTION/PROCEDURE (`AS '…'`) and DO bodies: SQL bodies are parsed as SQL, PL/pgSQL bodies by the
 * PL/pgSQL compiler, bodies in any other language (plpython, C, `internal` aliases of built-ins) cannot be read
 * and make the statement dynamic. `BEGIN ATOMIC` bodies are already in the tree (sql_body) and walked as such.
 */
export function analyzeRoutineBody(
  options: unknown,
  defaultLanguage: string,
  f: MutableFacts,
  ctx: WalkContext,
  analyzeNested: AnalyzeNested,
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
    analyzePlpgsql(f, ctx, analyzeNested);
  } else f.dynamic = true;
}

/** PL/pgSQL statements whose `query` is a string expression executed as SQL (pl_gram.y: EXECUTE, FOR … EXECUTE). */
const DYNAMIC_PL_STATEMENTS = new Set(['PLpgSQL_stmt_dynexecute', 'PLpgSQL_stmt_dynfors']);

function analyzePlpgsql(f: MutableFacts, ctx: WalkContext, analyzeNested: AnalyzeNested): void {
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
  walkPlpgsql(tree, f, ctx, '', '', analyzeNested);
}

function walkPlpgsql(
  value: unknown,
  f: MutableFacts,
  ctx: WalkContext,
  key: string,
  statement: string,
  analyzeNested: AnalyzeNested,
): void {
  if (Array.isArray(value)) {
    for (const item of value) walkPlpgsql(item, f, ctx, key, statement, analyzeNested);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Node)) {
    if (k === 'PLpgSQL_expr') {
      const dynamic = key === 'dynquery' || (key === 'query' && DYNAMIC_PL_STATEMENTS.has(statement));
      visitPlExpression(v as Node, dynamic, f, ctx, analyzeNested);
    } else if (k.startsWith('PLpgSQL_stmt_')) {
      walkPlpgsql(v, f, ctx, k, k, analyzeNested);
    } else if (typeof v === 'object' && v !== null) {
      walkPlpgsql(v, f, ctx, k, statement, analyzeNested);
    }
  }
}

/**
 * One PL/pgSQL expression or SQL statement. `parseMode` is PostgreSQL's RawParseMode: 0 a whole statement,
 * 2 an expression (parsed as `SELECT expr`), 3-5 an assignment `target := expr`.
 */
function visitPlExpression(
  expr: Node,
  dynamic: boolean,
  f: MutableFacts,
  ctx: WalkContext,
  analyzeNested: AnalyzeNested,
): void {
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

/** The string literal `SELECT '…'` consists of, if that is all it is. */
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
