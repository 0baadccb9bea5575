/**
 * The one place that talks to the WASM PostgreSQL parser.
 *
 * Decision (PL/pgSQL): `libpg-query` 17.7.4 (the lean build) exports only `parse`/`parseSync`; its WASM has no
 * PL/pgSQL entry point. `@libpg-query/parser` 17.6.10 is the same maintainers' full build of the same PG 17
 * grammar (libpg_query 17-6.1.0) and also exports `parsePlPgSQLSync`, so DO blocks and PL/pgSQL function bodies
 * are compiled by PostgreSQL's own PL/pgSQL grammar instead of being guessed at. It is pinned and used for both
 * entry points, so only one WASM module is loaded. (Its ESM file imports a CommonJS proto module by name and
 * fails to load; the package `main` — CommonJS — works, and that is what Node resolves for the bare specifier.)
 * Anything either parser rejects is reported as an error and the gateway denies it.
 */
import * as libpg from '@libpg-query/parser';

let loaded: Promise<void> | undefined;

export function loadPgParser(): Promise<void> {
  loaded ??= libpg.loadModule();
  return loaded;
}

/** Raw parse tree (libpg_query JSON): `{ version, stmts: [{ stmt: { NodeType: {...} }, stmt_location?, stmt_len? }] }`. */
export interface RawParseResult {
  readonly stmts?: readonly RawStmt[];
}
export interface RawStmt {
  readonly stmt?: Record<string, unknown>;
  readonly stmt_location?: number;
  readonly stmt_len?: number;
}

export function parseSql(text: string): RawParseResult {
  return libpg.parseSync(text) as unknown as RawParseResult;
}

/** `{ plpgsql_funcs: [{ PLpgSQL_function: … }] }` for every PL/pgSQL function or DO block in the text. */
export function parsePlpgsql(text: string): unknown {
  return libpg.parsePlPgSQLSync(text) as unknown;
}

/** A parser error as one line, with the position when the parser gives one. */
export function describeParseError(err: unknown): string {
  const e = err as { message?: unknown; sqlDetails?: { cursorPosition?: unknown } } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // The PL/pgSQL entry point returns plain-text errors that its wrapper then fails to JSON.parse.
  if (err instanceof SyntaxError && /JSON/.test(message)) return 'PL/pgSQL body could not be compiled';
  const pos = e?.sqlDetails?.cursorPosition;
  return typeof pos === 'number' && pos >= 0 ? `${message} at position ${pos}` : message;
}
