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
  const clean = new CleanStrings();
  return {
    active: true,
    text: (value) => (clean.has(value) ? { value, fired: [] } : redactText(compiled, value, clean)),
    body: (value) => redactBody(compiled, clean, value),
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

/** Strings shorter than this are scanned every time: looking them up would cost about as much. */
const CLEAN_MIN_LENGTH = 256;
/** Characters remembered at most; the memo starts over when it would hold more. */
const CLEAN_MAX_CHARS = 1 << 20;

/**
 * Long strings in which no entry matched, remembered by their content (strings are immutable, so the verdict
 * cannot go stale; a reload compiles a new redactor with a memo of its own): the same text recorded again, such as
 * the answer of a client polling, is not scanned again.
 */
class CleanStrings {
  private readonly strings = new Set<string>();
  private chars = 0;

  has(text: string): boolean {
    return text.length >= CLEAN_MIN_LENGTH && this.strings.has(text);
  }

  add(text: string): void {
    if (text.length < CLEAN_MIN_LENGTH || text.length > CLEAN_MAX_CHARS) return;
    if (this.chars + text.length > CLEAN_MAX_CHARS) {
      this.strings.clear();
      this.chars = 0;
    }
    this.strings.add(text);
    this.chars += text.length;
  }
}

function redactText(compiled: CompiledEntries, text: string, clean?: CleanStrings): Redacted<string> {
  const spans = textSpans(compiled, text);
  if (spans.length === 0) {
    clean?.add(text);
    return { value: text, fired: [] };
  }
  const { merged, fired } = mergeSpans(spans);
  let out = '';
  let copied = 0;
  for (const [start, end] of merged) {
    out += text.slice(copied, start) + REDACTED_TEXT;
    copied = end;
  }
  return { value: out + text.slice(copied), fired };
}

function redactBody<T>(compiled: CompiledEntries, clean: CleanStrings, value: T): Redacted<T> {
  const fired: string[] = [];
  const out = walk(compiled, clean, value, fired, 0);
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
  return compiled.untriggered.length > 0 || compiled.filter.occursInText(text);
}

function walk(
  compiled: CompiledEntries,
  clean: CleanStrings,
  value: unknown,
  fired: string[],
  depth: number,
): unknown {
  if (typeof value === 'string') {
    if (clean.has(value)) return value;
    if (!mayMatch(compiled, value)) {
      clean.add(value);
      return value;
    }
    const r = redactText(compiled, value, clean);
    addFired(fired, r.fired);
    return r.value;
  }
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    if (value.length > 1 && allStrings(value)) return redactWords(compiled, value as string[], fired);
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = walk(compiled, clean, value[i], fired, depth + 1);
      if (next !== value[i]) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const current = (value as Record<string, unknown>)[key];
    const next = walk(compiled, clean, current, fired, depth + 1);
    if (next !== current) (copy ??= { ...(value as Record<string, unknown>) })[key] = next;
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
 * own text with its secret parts replaced.
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
    }
    if (copied > 0 || text !== '') out[i] = text + word.slice(copied);
    offset = wordEnd + 1;
  }
  return out;
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
