/**
 * The shell parser: mvdan/sh (the parser behind shfmt), as its GopherJS build `mvdan-sh`.
 *
 * Why this one: it is a complete POSIX + bash parser with a full AST (every word part, command substitution,
 * process substitution, heredoc bodies) and it is synchronous, so `analyzeShellCommand` needs no async start-up.
 * Its WASM successor `sh-syntax` was evaluated first (0.7.0, Node 20): its JSON output stops at statement level
 * (`Stmt.Cmd` carries only Pos/End, no arguments), and a TinyGo instance cannot be reused across calls (its GC
 * faults on the second parse), so each parse needs a fresh ~12 ms instance and an async API. mvdan-sh parses a
 * typical command line in ~0.4 ms after a one-off ~110 ms load.
 *
 * The syntax tree is copied out of GopherJS's Go objects into plain objects (see `toPlain`: this reads GopherJS
 * internals, which is why the version is pinned exactly; the unit tests cover every node kind we rely on). The
 * types below describe only the fields we read. Positions are byte offsets into the UTF-8 encoding of the source.
 */
import { createRequire } from 'node:module';

/** A syntax node converted to a plain object: `type` is the Go type name (`CallExpr`), positions are byte offsets. */
export interface ShNode {
  readonly type: string;
  /** -1 for helper structs that are not nodes (`Expansion`, `Replace`, `Slice`). */
  readonly pos: number;
  readonly end: number;
}

export interface ShLit extends ShNode {
  readonly Value: string;
}
export interface ShSglQuoted extends ShNode {
  readonly Value: string;
  readonly Dollar: boolean;
}
export interface ShDblQuoted extends ShNode {
  readonly Parts: readonly ShNode[];
}
export interface ShWord extends ShNode {
  readonly Parts: readonly ShNode[];
}
export interface ShAssign extends ShNode {
  readonly Naked: boolean;
  readonly Name: ShLit | null;
  readonly Value: ShWord | null;
  readonly Array: ShNode | null;
}
export interface ShRedirect extends ShNode {
  readonly Word: ShWord | null;
}
export interface ShCallExpr extends ShNode {
  readonly Assigns: readonly ShAssign[];
  readonly Args: readonly ShWord[];
}
export interface ShDeclClause extends ShNode {
  readonly Variant: ShLit;
  readonly Args: readonly ShAssign[];
}
export interface ShStmt extends ShNode {
  readonly Cmd: ShNode | null;
  readonly Redirs: readonly ShRedirect[];
}
export interface ShFile extends ShNode {
  readonly Stmts: readonly ShStmt[];
}

interface ShParser {
  Parse(src: string, name: string): ShFile;
}

/** A parse error; `incomplete` when the text ended too early (an open quote, `if` without `fi`, a trailing `|`). */
export class ShellSyntaxError extends Error {
  constructor(
    message: string,
    readonly incomplete: boolean,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

interface ShSyntax {
  NewParser(...options: unknown[]): ShParser;
  KeepComments(keep: boolean): unknown;
  Variant(lang: unknown): unknown;
  readonly LangBash: unknown;
  IsIncomplete(err: unknown): boolean;
}

const require = createRequire(import.meta.url);
const syntax = (require('mvdan-sh') as { syntax: ShSyntax }).syntax;

/** Bash is the superset: a line valid in sh/dash is parsed the same way (bash-only syntax only adds commands). */
const parser = syntax.NewParser(syntax.KeepComments(false), syntax.Variant(syntax.LangBash));

/** Parse or throw an Error whose message is the parser's `line:col: reason`. */
export function parseShell(source: string): ShFile {
  let file: { __internal_object__?: GoObject };
  try {
    file = parser.Parse(source, '') as unknown as { __internal_object__?: GoObject };
  } catch (err) {
    // GopherJS throws the Go error value; its Error() method carries the message.
    const goError = err as { Error?: () => string; message?: string };
    const message = typeof goError?.Error === 'function' ? goError.Error() : String(goError?.message ?? err);
    let incomplete = false;
    try {
      incomplete = syntax.IsIncomplete(err);
    } catch {
      // not a parser error value: treat as a plain syntax error
    }
    throw new ShellSyntaxError(message, incomplete, { cause: err });
  }
  const root = file.__internal_object__;
  if (!root || !isSyntaxObject(root)) throw new Error('unexpected parser output');
  return toPlain(root) as unknown as ShFile;
}

/**
 * GopherJS's JS-facing wrappers (`syntax.Walk`, field getters) build a wrapper object per node by reflection,
 * which is slow; reading the Go objects behind them (`__internal_object__`) directly and copying the tree into
 * plain objects once is much faster (docs/performance.md, "Smaller measurements"). Go pointers are objects whose constructor names the Go type; nil
 * pointers are typed sentinels (`constructor.nil`); slices are `{$array, $offset, $length}`; strings are UTF-8
 * bytes in a JS string.
 */
interface GoObject {
  readonly constructor: { readonly string?: string; readonly nil?: unknown };
  Pos?: () => { Offset(): number };
  End?: () => { Offset(): number };
  [field: string]: unknown;
}

interface GoSlice {
  readonly $array: readonly unknown[];
  readonly $offset: number;
  readonly $length: number;
}

const SYNTAX_PREFIX = '*syntax.';

function isSyntaxObject(value: unknown): value is GoObject {
  if (value === null || typeof value !== 'object') return false;
  const ctor = (value as GoObject).constructor;
  const goType = ctor?.string;
  return (
    typeof goType === 'string' &&
    goType.startsWith(SYNTAX_PREFIX) &&
    goType !== '*syntax.Pos' &&
    value !== ctor.nil
  );
}

function goString(bytes: string): string {
  return /[^\x00-\x7f]/.test(bytes) ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
}

function toPlain(raw: GoObject): ShNode {
  const type = raw.constructor.string!.slice(SYNTAX_PREFIX.length);
  const node: Record<string, unknown> = { type, pos: -1, end: -1 };
  if (typeof raw.Pos === 'function' && typeof raw.End === 'function') {
    node.pos = raw.Pos().Offset();
    node.end = raw.End().Offset();
  }
  for (const key of Object.keys(raw)) {
    if (key === '$val') continue;
    const value = raw[key];
    if (typeof value === 'string') node[key] = goString(value);
    else if (typeof value === 'boolean' || typeof value === 'number') node[key] = value;
    else if (isSyntaxObject(value)) node[key] = toPlain(value);
    else if (value !== null && typeof value === 'object' && '$array' in value) {
      const slice = value as GoSlice;
      const items: ShNode[] = [];
      for (let index = 0; index < slice.$length; index++) {
        const item = slice.$array[slice.$offset + index];
        if (isSyntaxObject(item)) items.push(toPlain(item));
      }
      node[key] = items;
    } else node[key] = null;
  }
  return node as unknown as ShNode;
}

/** Pre-order walk over every syntax node (fields in Go declaration order, which is source order). */
export function walk(node: ShNode, visit: (node: ShNode) => void): void {
  visit(node);
  const fields = node as unknown as Record<string, unknown>;
  for (const key in fields) {
    const value = fields[key];
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (const item of value as ShNode[]) walk(item, visit);
    } else walk(value as ShNode, visit);
  }
}
