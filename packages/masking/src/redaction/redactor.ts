/**
 * The redactor: compiled entries applied to event text (`text`, `body`) and to stream bytes (`stream`). In text a
 * secret becomes `[REDACTED]`; in streams it is overwritten with `*` byte for byte, line breaks kept, so lengths,
 * chunk timings and any framing inside the stream stay as they were.
 */
import type { Redacted, Redactor, StreamRedactor } from '@agentgate/core';
import {
  compileEntries,
  findSpans,
  mergeSpans,
  type CompiledEntries,
  type SecretSpan,
} from './compiled-entries.js';
import type { RedactionEntry } from './entries.js';
import { StreamRedactorImpl } from './stream-redactor.js';
import type { TriggerHit } from './trigger-filter.js';

export const REDACTED_TEXT = '[REDACTED]';

export function createRedactorFromEntries(entries: readonly RedactionEntry[]): Redactor {
  if (entries.length === 0) {
    return {
      active: false,
      text: (value) => ({ value, fired: [] }),
      body: (value) => ({ value, fired: [] }),
      stream: () => new StreamRedactorImpl(undefined),
    };
  }
  const compiled = compileEntries(entries);
  return {
    active: true,
    text: (value) => redactText(compiled, value),
    body: (value) => redactBody(compiled, value),
    stream: () => new StreamRedactorImpl(compiled),
  };
}

/** Secret spans in a whole string: each entry whose trigger occurs (or that has none) runs once over it. */
export function textSpans(compiled: CompiledEntries, text: string): SecretSpan[] {
  const spans: SecretSpan[] = [];
  if (text.length < 3) return spans;
  const hits: TriggerHit[] = [];
  compiled.filter.scanText(text, hits);
  if (hits.length > 0) {
    const run = new Set<CompiledEntry>();
    for (const hit of hits) for (const entry of compiled.entriesOfTrigger[hit.trigger]!) run.add(entry);
    for (const entry of run) findSpans(entry, text, 0, spans);
  }
  for (const entry of compiled.untriggered) findSpans(entry, text, 0, spans);
  return spans;
}

type CompiledEntry = CompiledEntries['entries'][number];

function redactText(compiled: CompiledEntries, text: string): Redacted<string> {
  const spans = textSpans(compiled, text);
  if (spans.length === 0) return { value: text, fired: [] };
  const { merged, fired } = mergeSpans(spans);
  let out = '';
  let copied = 0;
  for (const [start, end] of merged) {
    out += text.slice(copied, start) + REDACTED_TEXT;
    copied = end;
  }
  return { value: out + text.slice(copied), fired };
}

function redactBody<T>(compiled: CompiledEntries, value: T): Redacted<T> {
  const fired: string[] = [];
  const out = walk(compiled, value, fired, 0);
  return { value: out as T, fired };
}

/** Deep enough for any event body; anything deeper is left as it is (bodies are built by the gateway). */
const MAX_DEPTH = 32;

/**
 * Whether any entry can match in `text`: one without a trigger, or one whose trigger occurs. Most strings of a body
 * meet none, and are then passed over with nothing allocated.
 */
function mayMatch(compiled: CompiledEntries, text: string): boolean {
  if (text.length < 3) return false; // as textSpans
  if (compiled.untriggered.length > 0) return true;
  const long = text.length >= minRememberedText;
  // A text that is the clean one or its start holds no trigger either (a statement's text cut from its command's).
  if (long && compiled === cleanFor && startsClean(text)) return false;
  if (compiled.filter.occursInText(text)) return true;
  if (long) {
    cleanText = text;
    cleanFor = compiled;
  }
  return false;
}

/**
 * The last long string in which no trigger of `cleanFor` occurs. A polling client's answer recurs as the same
 * string, whose comparison with itself costs nothing, and so does a prepared statement's text; a string cannot
 * change, so the verdict cannot go stale, and it belongs to one compiled set of entries (a reload compiles another).
 * Shorter strings are probed without the scratch copy, which costs about what a comparison would.
 */
const minRememberedText = 48;
let cleanText = '';
let cleanFor: CompiledEntries | undefined;

/** `text` is cleanText or its start (a slice and an equality: V8's startsWith costs several times that here). */
function startsClean(text: string): boolean {
  if (text === cleanText) return true;
  return text.length < cleanText.length && cleanText.slice(0, text.length) === text;
}

function walk(compiled: CompiledEntries, value: unknown, fired: string[], depth: number): unknown {
  if (typeof value === 'string') {
    if (!mayMatch(compiled, value)) return value;
    const r = redactText(compiled, value);
    addFired(fired, r.fired);
    return r.value;
  }
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    if (value.length > 1 && allStrings(value)) return redactWords(compiled, value as string[], fired);
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = walk(compiled, value[i], fired, depth + 1);
      if (next !== value[i]) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  // The values in one call (V8 reads a plain object's values from its own layout), and the keys only when a
  // member must be replaced: reading each member by its key is what a body's walk spent most on.
  const values = Object.values(value);
  let copy: Record<string, unknown> | undefined;
  let keys: string[] | undefined;
  for (let i = 0; i < values.length; i++) {
    const current = values[i];
    const next = walk(compiled, current, fired, depth + 1);
    if (next === current) continue;
    if (copy === undefined) {
      copy = { ...(value as Record<string, unknown>) };
      keys = Object.keys(value);
    }
    copy[keys![i]!] = next;
  }
  return copy ?? value;
}

function allStrings(values: readonly unknown[]): boolean {
  for (let i = 0; i < values.length; i++) if (typeof values[i] !== 'string') return false;
  return true;
}

/**
 * A list of strings (argv, an Env list) is matched as one line, its items joined by spaces, so `-p` glued to
 * `mysql` two items earlier, or `--password` and its value in the next item, are recognised; each item keeps its
 * own text with its secret parts replaced. A value that is a whole item, or follows `NAME=` / `--opt=` in one, ends
 * with its item: the joined line shows a space inside it (`--password 'two words'`) where a pattern stops.
 */
function redactWords(
  compiled: CompiledEntries,
  words: readonly string[],
  fired: string[],
): readonly string[] {
  if (!wordsMayMatch(compiled, words)) return words;
  const line = words.join(' ');
  const spans = textSpans(compiled, line);
  if (spans.length === 0) return words;
  const { merged, fired: names } = mergeSpans(spans);
  addFired(fired, names);
  const out = words.slice();
  let offset = 0;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const wordEnd = offset + word.length;
    let text = '';
    let copied = 0;
    for (const [start, end] of merged) {
      if (end <= offset || start >= wordEnd) continue;
      const from = Math.max(start, offset) - offset;
      text += word.slice(copied, from) + REDACTED_TEXT;
      copied = Math.min(end, wordEnd) - offset;
      if (copied < word.length && isSpace(word, copied) && !hasSpace(word, from)) copied = word.length;
    }
    if (copied > 0 || text !== '') out[i] = text + word.slice(copied);
    offset = wordEnd + 1;
  }
  return out;
}

function isSpace(word: string, at: number): boolean {
  const c = word.charCodeAt(at);
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** The first `end` characters of `word` hold whitespace (the item is a script or phrase, not one value). */
function hasSpace(word: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (isSpace(word, i)) return true;
  return false;
}

/**
 * mayMatch over the words joined by spaces, without joining them: a trigger with no space in it that occurs in the
 * joined line occurs within one word.
 */
function wordsMayMatch(compiled: CompiledEntries, words: readonly string[]): boolean {
  if (compiled.untriggered.length > 0 || compiled.filter.spaced) return true;
  for (const word of words) if (word.length >= 3 && compiled.filter.occursInText(word)) return true;
  return false;
}

function addFired(into: string[], names: readonly string[]): void {
  for (const name of names) if (!into.includes(name)) into.push(name);
}

export type { StreamRedactor };
