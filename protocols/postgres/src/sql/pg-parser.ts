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

/** One token of PostgreSQL's scanner, located in the JS string (`start`/`end` are string indices). */
export interface SqlToken {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** A string constant: '…', E'…', $tag$…$tag$, U&'…'. */
  readonly isString: boolean;
  /** The decoded value of a string constant; undefined when it cannot be decoded here. */
  readonly value: string | undefined;
  readonly isComment: boolean;
  readonly isParam: boolean;
  readonly isIdentifier: boolean;
}

/** scan.l token numbers (libpg_query's ScanResult tokenName is UNKNOWN for some of them). */
const USCONST = 262;

/** Tokens of `text` as the server's scanner splits it (standard_conforming_strings on); throws on lexer errors. */
export function scanSql(text: string): SqlToken[] {
  const result = libpg.scanSync(text);
  const toIndex = byteToIndex(text);
  return result.tokens.map((t) => {
    const start = toIndex(t.start);
    const end = toIndex(t.end);
    const raw = text.slice(start, end);
    const unicode = t.tokenType === USCONST;
    const isString = t.tokenName === 'SCONST' || unicode;
    return {
      start,
      end,
      text: raw,
      isString,
      value: isString ? decodeStringToken(raw) : undefined,
      isComment: t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT',
      isParam: t.tokenName === 'PARAM',
      isIdentifier: t.tokenName === 'IDENT',
    };
  });
}

function byteToIndex(text: string): (byte: number) => number {
  if (/^[\x00-\x7f]*$/.test(text)) return (b) => b;
  const bytes = Buffer.from(text, 'utf8');
  return (b) => bytes.subarray(0, b).toString('utf8').length;
}

/** The value of a string token (scan.l xq, xe, xdolq, xus; continuation across newlines), or undefined. */
export function decodeStringToken(raw: string): string | undefined {
  try {
    return decodeString(raw);
  } catch {
    return undefined; // an escape naming an invalid code point
  }
}

function decodeString(raw: string): string | undefined {
  const dollar = /^(\$[A-Za-z_0-9]*\$)([\s\S]*)\1$/.exec(raw);
  if (dollar) return dollar[2];
  if (/^[Uu]&'/.test(raw)) return decodeQuoted(raw.slice(2), 'unicode');
  if (/^[Ee]'/.test(raw)) return decodeQuoted(raw.slice(1), 'escape');
  if (raw.startsWith("'")) return decodeQuoted(raw, 'standard');
  return undefined;
}

const SIMPLE_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function decodeQuoted(raw: string, style: 'standard' | 'escape' | 'unicode'): string | undefined {
  let out = '';
  let i = 0;
  const n = raw.length;
  while (i < n) {
    if (raw[i] !== "'") {
      // Between segments of a continued literal: whitespace with a newline (and comments) only.
      if (/\s/.test(raw[i]!)) {
        i++;
        continue;
      }
      return undefined;
    }
    i++;
    for (;;) {
      if (i >= n) return undefined;
      const c = raw[i]!;
      if (c === "'") {
        if (raw[i + 1] === "'") {
          out += "'";
          i += 2;
          continue;
        }
        i++;
        break;
      }
      if (c === '\\' && style !== 'standard') {
        const decoded = style === 'escape' ? escapeSequence(raw, i) : unicodeSequence(raw, i);
        if (decoded === undefined) return undefined;
        out += decoded.text;
        i = decoded.next;
        continue;
      }
      out += c;
      i++;
    }
  }
  return out;
}

function escapeSequence(raw: string, at: number): { text: string; next: number } | undefined {
  const c = raw[at + 1];
  if (c === undefined) return undefined;
  if (SIMPLE_ESCAPES[c] !== undefined) return { text: SIMPLE_ESCAPES[c], next: at + 2 };
  const octal = /^[0-7]{1,3}/.exec(raw.slice(at + 1, at + 4));
  if (octal) return { text: String.fromCharCode(parseInt(octal[0], 8)), next: at + 1 + octal[0].length };
  const hex = /^x([0-9A-Fa-f]{1,2})/.exec(raw.slice(at + 1, at + 4));
  if (hex) return { text: String.fromCharCode(parseInt(hex[1]!, 16)), next: at + 1 + hex[0].length };
  const u4 = /^u([0-9A-Fa-f]{4})/.exec(raw.slice(at + 1, at + 6));
  if (u4) return { text: String.fromCodePoint(parseInt(u4[1]!, 16)), next: at + 6 };
  const u8 = /^U([0-9A-Fa-f]{8})/.exec(raw.slice(at + 1, at + 10));
  if (u8) return { text: String.fromCodePoint(parseInt(u8[1]!, 16)), next: at + 10 };
  return { text: c, next: at + 2 };
}

function unicodeSequence(raw: string, at: number): { text: string; next: number } | undefined {
  if (raw[at + 1] === '\\') return { text: '\\', next: at + 2 };
  const u4 = /^([0-9A-Fa-f]{4})/.exec(raw.slice(at + 1, at + 5));
  if (u4) return { text: String.fromCodePoint(parseInt(u4[1]!, 16)), next: at + 5 };
  const u6 = /^\+([0-9A-Fa-f]{6})/.exec(raw.slice(at + 1, at + 8));
  if (u6) return { text: String.fromCodePoint(parseInt(u6[1]!, 16)), next: at + 8 };
  return undefined;
}
