/**
 * The analysis cache key for a SQL text: the text with the digits of its numeric literal tokens replaced by `0`
 * (`... WHERE aid = 48213` → `... WHERE aid = 00000`), so statements that differ only in numbers share one cached
 * analysis. The replacement is length-preserving and ASCII for ASCII, so every character and UTF-8 byte offset
 * (libpg_query's stmt_location/stmt_len) is the same in the key as in the text.
 *
 * The scanner follows PostgreSQL 17's lexer (src/backend/parser/scan.l, the grammar libpg_query compiles) wherever a
 * token boundary decides what is a number: strings, identifiers, comments, dollar quotes and parameters are
 * skipped unaltered (their contents can be SQL: DO bodies, EXECUTE strings, query_to_xml arguments). Whatever it
 * is not sure of returns undefined, and the caller keys by the raw text.
 *
 * Numbers whose value the parser itself looks at keep their digits in the key:
 * - integers of 10 or more characters: scan.l's process_integer_literal turns a value beyond int32 into a float
 *   constant, which the grammar rejects where it wants an Iconst (`varchar(9999999999)`); 9 characters cannot
 *   exceed 0x7fffffff in any base;
 * - `FLOAT ( p )`: gram.y opt_float rejects p < 1 and p > 53;
 * - `ALTER [COLUMN] n`: gram.y alter_table_cmd rejects a column number outside 1..32767.
 * gram.y has no other check on a literal's value (every ereport in it was reviewed for this).
 */

const QUOTE = 39; // '
const DQUOTE = 34; // "
const DOLLAR = 36; // $
const DOT = 46;
const UNDERSCORE = 95;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** scan.l ident_start: [A-Za-z\200-\377_] (every byte of a non-ASCII UTF-8 character is in \200-\377). */
function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === UNDERSCORE || c >= 128;
}

/** scan.l ident_cont: [A-Za-z\200-\377_0-9\$]. */
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === DOLLAR;
}

/** scan.l dolq_cont: [A-Za-z\200-\377_0-9] (no `$`). */
function isDollarTagCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13); // [ \t\n\r\f\v]
}

function isBaseDigit(c: number, base: number): boolean {
  if (base === 16) return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
  if (base === 8) return c >= 48 && c <= 55;
  return c === 48 || c === 49;
}

const BASE_PREFIXES: Record<number, number> = { 120: 16, 88: 16, 111: 8, 79: 8, 98: 2, 66: 2 }; // xXoObB

/** Index after a quoted run opened at `open` (a quote char) where a doubled quote is an escape; -1 if unterminated. */
function skipQuoted(text: string, open: number, quote: number): number {
  let i = open + 1;
  for (;;) {
    const close = text.indexOf(quote === QUOTE ? "'" : '"', i);
    if (close < 0) return -1;
    if (text.charCodeAt(close + 1) !== quote) return close + 1;
    i = close + 2;
  }
}

/** Index after a nested `/* … *\/` comment opened at `open`; -1 if unterminated (scan.l xc: depth counts). */
function skipBlockComment(text: string, open: number): number {
  let depth = 1;
  let i = open + 2;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 47 && text.charCodeAt(i + 1) === 42) {
      depth++;
      i += 2;
    } else if (c === 42 && text.charCodeAt(i + 1) === 47) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return -1;
}

/** `D(_?D)*` (scan.l decinteger) starting at a digit; returns the index after it. */
function skipDecimal(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) i++;
    else if (c === UNDERSCORE && isDigit(text.charCodeAt(i + 1))) i += 2;
    else return i;
  }
}

interface NumberToken {
  readonly end: number;
  readonly integer: boolean;
  /** Index of the first digit (after a 0x/0o/0b prefix). */
  readonly digitsFrom: number;
  readonly hex: boolean;
}

/** A numeric literal starting at `start`, or undefined where scan.l would report an error or the form is odd. */
function scanNumber(text: string, start: number): NumberToken | undefined {
  const first = text.charCodeAt(start);
  const base = first === 48 ? BASE_PREFIXES[text.charCodeAt(start + 1)] : undefined;
  if (base !== undefined) {
    // hexinteger 0[xX](_?{hexdigit})+ and friends; hexfail (`0x`, `0x_`) is an error.
    let i = start + 2;
    let digits = 0;
    for (;;) {
      const c = text.charCodeAt(i);
      if (isBaseDigit(c, base)) i++;
      else if (c === UNDERSCORE && isBaseDigit(text.charCodeAt(i + 1), base)) i += 2;
      else break;
      digits++;
    }
    const next = text.charCodeAt(i);
    // *_junk rules (an identifier character right after) are errors; a digit or `.` right after is odd.
    if (digits === 0 || isIdentStart(next) || isDigit(next) || next === DOT) return undefined;
    return { end: i, integer: true, digitsFrom: start + 2, hex: base === 16 };
  }
  let i: number;
  let integer = true;
  if (first === DOT) {
    i = skipDecimal(text, start + 1); // numeric: \.{decinteger}
    integer = false;
  } else {
    i = skipDecimal(text, start);
    if (text.charCodeAt(i) === DOT) {
      // numericfail `1..`: the integer alone, `..` is the next token.
      if (text.charCodeAt(i + 1) === DOT) return { end: i, integer: true, digitsFrom: start, hex: false };
      i++; // numeric: {decinteger}\.{decinteger}?
      if (isDigit(text.charCodeAt(i))) i = skipDecimal(text, i);
      integer = false;
    }
  }
  const e = text.charCodeAt(i);
  if (e === 101 || e === 69) {
    // real: …[Ee][-+]?{decinteger}; realfail / junk otherwise.
    let k = i + 1;
    const sign = text.charCodeAt(k);
    if (sign === 43 || sign === 45) k++;
    if (!isDigit(text.charCodeAt(k))) return undefined;
    i = skipDecimal(text, k);
    integer = false;
  }
  if (isIdentStart(text.charCodeAt(i))) return undefined; // decinteger_junk, numeric_junk, real_junk
  return { end: i, integer, digitsFrom: start, hex: false };
}

/** text[from, to) with every digit (hex digit when `hex`) as `0`; `.`, `e`, signs and `_` stay. */
function zeroDigits(text: string, from: number, to: number, hex: boolean): string {
  let out = '';
  let run = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c) || (hex && isBaseDigit(c, 16))) {
      run++;
      continue;
    }
    if (run > 0) out += '0'.repeat(run);
    run = 0;
    out += text[i];
  }
  return run > 0 ? out + '0'.repeat(run) : out;
}

/** Tokens the value checks of gram.y are keyed on (see the module comment). */
const enum Recent {
  Other,
  OpenParen,
  Float,
  Alter,
  Column,
}

/** ASCII case-insensitive comparison of text[from, from + word.length) with a lower-case word. */
function isWord(text: string, from: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) {
    if ((text.charCodeAt(from + k) | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

function keywordOf(text: string, from: number, length: number): Recent {
  if (length === 5) {
    if (isWord(text, from, 'float')) return Recent.Float;
    if (isWord(text, from, 'alter')) return Recent.Alter;
  } else if (length === 6 && isWord(text, from, 'column')) {
    return Recent.Column;
  }
  return Recent.Other;
}

/**
 * The key for `text`, or undefined when the scanner cannot be sure of PostgreSQL's token boundaries (an E'…'
 * string, an unterminated quote or comment, a malformed number or parameter). A text without numbers is its own key.
 */
export function numericLiteralKey(text: string): string | undefined {
  const n = text.length;
  let key = '';
  let copiedTo = 0;
  // The last two significant tokens, for the grammar positions that read a literal's value.
  let previous = Recent.Other;
  let beforePrevious = Recent.Other;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (isSpace(c)) {
      i++;
    } else if (c === 45 && next === 45) {
      // `--` comment to the end of the line (scan.l comment; an operator run is cut at `--` too).
      let j = i + 2;
      while (j < n && text.charCodeAt(j) !== 10 && text.charCodeAt(j) !== 13) j++;
      i = j;
    } else if (c === 47 && next === 42) {
      const end = skipBlockComment(text, i);
      if (end < 0) return undefined;
      i = end;
    } else if (c === QUOTE || c === DQUOTE) {
      // Standard strings (standard_conforming_strings is on: traps.ts refuses turning it off) and quoted names.
      const end = skipQuoted(text, i, c);
      if (end < 0) return undefined;
      i = end;
      beforePrevious = previous;
      previous = Recent.Other;
    } else if (c === DOLLAR) {
      if (isDigit(next)) {
        // param \$\d+ (not a literal: kept as written); param_junk is an error.
        let j = i + 2;
        while (isDigit(text.charCodeAt(j))) j++;
        if (isIdentStart(text.charCodeAt(j))) return undefined;
        i = j;
        beforePrevious = previous;
        previous = Recent.Other;
        continue;
      }
      let j = i + 1;
      if (isIdentStart(next)) {
        j++;
        while (isDollarTagCont(text.charCodeAt(j))) j++;
      }
      if (text.charCodeAt(j) !== DOLLAR) {
        i++; // dolqfailed: a lone `$`, the rest is rescanned
        beforePrevious = previous;
        previous = Recent.Other;
        continue;
      }
      // dolqdelim: the body ends at the first occurrence of the same delimiter (scan.l xdolq).
      const delimiter = text.slice(i, j + 1);
      const close = text.indexOf(delimiter, j + 1);
      if (close < 0) return undefined;
      i = close + delimiter.length;
      beforePrevious = previous;
      previous = Recent.Other;
    } else if (isIdentStart(c)) {
      if (next === QUOTE) {
        if (c === 101 || c === 69) return undefined; // E'…': backslash escapes, not scanned here
        if (c === 98 || c === 66 || c === 120 || c === 88) {
          // B'…' / X'…' (scan.l xb/xh: no doubled-quote escape inside)
          const close = text.indexOf("'", i + 2);
          if (close < 0) return undefined;
          i = close + 1;
          beforePrevious = previous;
          previous = Recent.Other;
          continue;
        }
        // N'…' is an ordinary string after the N; any other letter ends an identifier before the quote.
      }
      if ((c === 117 || c === 85) && next === 38) {
        const quote = text.charCodeAt(i + 2);
        if (quote === QUOTE || quote === DQUOTE) {
          // U&'…' and U&"…" (scan.l xus/xui): doubled quotes escape, like their plain forms.
          const end = skipQuoted(text, i + 2, quote);
          if (end < 0) return undefined;
          i = end;
          beforePrevious = previous;
          previous = Recent.Other;
          continue;
        }
      }
      let j = i + 1;
      while (j < n && isIdentCont(text.charCodeAt(j))) j++;
      beforePrevious = previous;
      previous = keywordOf(text, i, j - i);
      i = j;
    } else if (isDigit(c) || (c === DOT && isDigit(next))) {
      const token = scanNumber(text, i);
      if (token === undefined) return undefined;
      const valueMatters =
        (token.integer && token.end - i >= 10) ||
        (previous === Recent.OpenParen && beforePrevious === Recent.Float) ||
        previous === Recent.Alter ||
        previous === Recent.Column;
      if (!valueMatters) {
        key +=
          text.slice(copiedTo, token.digitsFrom) + zeroDigits(text, token.digitsFrom, token.end, token.hex);
        copiedTo = token.end;
      }
      i = token.end;
      beforePrevious = previous;
      previous = Recent.Other;
    } else if (c === DOT && next === DOT) {
      i += 2; // dot_dot
      beforePrevious = previous;
      previous = Recent.Other;
    } else {
      i++;
      beforePrevious = previous;
      previous = c === 40 ? Recent.OpenParen : Recent.Other;
    }
  }
  return copiedTo === 0 ? text : key + text.slice(copiedTo);
}
