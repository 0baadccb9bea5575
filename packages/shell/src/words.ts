/**
 * Word resolution: what argument a shell word becomes after quote removal, as bash does it
 * (bash manual §3.1.2 Quoting, §3.5.9 Quote Removal), or `dynamic` when its value depends on expansions that
 * happen at run time (parameter, command, arithmetic, process substitution; globs and brace expansion, which can
 * turn one word into other words).
 */
import { type ShDblQuoted, type ShLit, type ShNode, type ShSglQuoted, type ShWord } from './mvdan-sh.js';

export interface ResolvedWord {
  /** The argument after quote removal; run-time parts are kept as their source text (`$HOME`). */
  readonly value: string;
  /** True when expansion at run time may change the value (or the number of words: see `splits`). */
  readonly dynamic: boolean;
  /** True when an unquoted expansion, glob or brace may turn this word into several words (or none). */
  readonly splits: boolean;
  /**
   * True when an unquoted expansion's result is split into fields (`$x`, `$(cmd)`): a new word may start anywhere
   * in it. A glob or brace alone keeps each resulting word's literal prefix.
   */
  readonly fieldSplits?: boolean;
  /** Byte offsets of the word in its source. */
  readonly start: number;
  readonly end: number;
}

/** A source text with byte-offset slicing (the parser reports UTF-8 byte offsets). */
export class SourceText {
  readonly bytes: Buffer;
  constructor(readonly text: string) {
    this.bytes = Buffer.from(text, 'utf8');
  }
  slice(start: number, end: number): string {
    return this.bytes.subarray(start, end).toString('utf8');
  }
}

export function resolveWord(word: ShWord, source: SourceText): ResolvedWord {
  let value = '';
  let dynamic = false;
  let splits = false;
  let fieldSplits = false;
  const parts = word.Parts;
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index]!;
    switch (part.type) {
      case 'Lit': {
        const raw = (part as ShLit).Value;
        if (hasUnquotedExpansionChars(raw)) dynamic = splits = true;
        value += unescapeUnquoted(raw);
        break;
      }
      case 'SglQuoted': {
        const quoted = part as ShSglQuoted;
        value += quoted.Dollar ? decodeAnsiC(quoted.Value) : quoted.Value;
        break;
      }
      case 'DblQuoted': {
        for (const inner of (part as ShDblQuoted).Parts) {
          if (inner.type === 'Lit') value += unescapeDoubleQuoted((inner as ShLit).Value);
          else {
            dynamic = true;
            value += sliceNode(inner, source);
          }
        }
        break;
      }
      default:
        // ParamExp, CmdSubst, ArithmExp, ProcSubst, ExtGlob, BraceExp: only known at run time.
        dynamic = splits = true;
        if (part.type !== 'ExtGlob' && part.type !== 'BraceExp') fieldSplits = true;
        value += sliceNode(part, source);
    }
  }
  return { value, dynamic, splits, ...(fieldSplits ? { fieldSplits } : {}), start: word.pos, end: word.end };
}

/**
 * The text a word contributes as written, its expansions left out (each replaced by a NUL, so literal text on
 * either side of one does not join up): what bash would find in it if it read the text again.
 */
export function literalText(word: ShWord): string {
  let out = '';
  for (const part of word.Parts) {
    if (part.type === 'Lit') out += unescapeUnquoted((part as ShLit).Value);
    else if (part.type === 'SglQuoted') {
      const quoted = part as ShSglQuoted;
      out += quoted.Dollar ? decodeAnsiC(quoted.Value) : quoted.Value;
    } else if (part.type === 'DblQuoted') {
      for (const inner of (part as ShDblQuoted).Parts)
        out += inner.type === 'Lit' ? unescapeDoubleQuoted((inner as ShLit).Value) : '\0';
    } else out += '\0';
  }
  return out;
}

export function sliceNode(node: ShNode, source: SourceText): string {
  return source.slice(node.pos, node.end);
}

/**
 * Unquoted glob characters (`*`, `?`, `[…]`) and brace expansion (`{a,b}`, `{1..3}`) can make a word expand to
 * other words (`/bin/r?` may run rm, `{rm,-rf,x}` runs `rm -rf x`). Backslash-escaped characters do not count.
 */
function hasUnquotedExpansionChars(raw: string): boolean {
  let openBracket = false;
  let openBrace = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '*' || c === '?') return true;
    if (c === '[') openBracket = true;
    else if (c === ']' && openBracket) return true;
    else if (c === '{') openBrace = true;
    else if (openBrace && (c === ',' || (c === '.' && raw[i + 1] === '.'))) return true;
  }
  return false;
}

/** Outside quotes a backslash quotes the next character; backslash-newline is a line continuation (removed). */
function unescapeUnquoted(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      const next = raw[++i]!;
      if (next !== '\n') out += next;
    } else if (c !== '\\') out += c;
  }
  return out;
}

/** Inside double quotes a backslash quotes only `$`, `` ` ``, `"`, `\` and newline (bash §3.1.2.3). */
function unescapeDoubleQuoted(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    const next = raw[i + 1];
    if (c === '\\' && next !== undefined && '$`"\\\n'.includes(next)) {
      i++;
      if (next !== '\n') out += next;
    } else out += c;
  }
  return out;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  e: '\x1b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '?': '?',
};

/** `$'…'` ANSI-C quoting (bash §3.1.2.4). */
export function decodeAnsiC(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '\\' || i + 1 >= raw.length) {
      out += c;
      continue;
    }
    const next = raw[++i]!;
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      out += simple;
      continue;
    }
    let match: RegExpMatchArray | null;
    const rest = raw.slice(i);
    if ((match = /^[0-7]{1,3}/.exec(rest))) {
      out += String.fromCharCode(parseInt(match[0], 8) & 0xff);
      i += match[0].length - 1;
    } else if ((match = /^x([0-9a-fA-F]{1,2})/.exec(rest))) {
      out += String.fromCharCode(parseInt(match[1]!, 16));
      i += match[0].length - 1;
    } else if ((match = /^u([0-9a-fA-F]{1,4})/.exec(rest)) || (match = /^U([0-9a-fA-F]{1,8})/.exec(rest))) {
      const codePoint = parseInt(match[1]!, 16);
      out += codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : '';
      i += match[0].length - 1;
    } else if ((match = /^c(.)/s.exec(rest))) {
      out += String.fromCharCode(match[1]!.charCodeAt(0) & 0x1f);
      i += 1;
    } else out += '\\' + next;
  }
  return out;
}

export function basename(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? path : path.slice(slash + 1);
}

/** Render an argv element so that a shell would read it back as the same word (for argv-built texts). */
export function quoteForShell(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
