/**
 * Redaction entries compiled for scanning: one RegExp per entry (JavaScript has no inline case flag, so entries
 * are not combined into one alternation), the pre-filter over all triggers, and the function that finds the
 * secret spans of one entry in a piece of text.
 */
import type { RedactionEntry } from './entries.js';
import { TriggerFilter } from './trigger-filter.js';

export interface CompiledEntry {
  readonly name: string;
  readonly regex: RegExp;
  readonly multiline: boolean;
  /** Sticky: matched at the start of the bytes that follow a secret recorded before its end. */
  readonly continuation: RegExp;
  readonly validate: ((match: string) => boolean) | undefined;
  readonly triggered: boolean;
}

/** A secret found: `[start, end)` is replaced; `[matchStart, matchEnd)` is the whole match. */
export interface SecretSpan {
  readonly start: number;
  readonly end: number;
  readonly matchStart: number;
  readonly matchEnd: number;
  readonly entry: CompiledEntry;
}

export interface CompiledEntries {
  readonly entries: readonly CompiledEntry[];
  readonly filter: TriggerFilter;
  /** Per filter trigger: the entries it stands for. */
  readonly entriesOfTrigger: readonly (readonly CompiledEntry[])[];
  /** Entries without triggers: scanned over everything. */
  readonly untriggered: readonly CompiledEntry[];
}

const WORD_REST = String.raw`(?:[^\s'"\\]|\\.)*`;

export function compileEntries(entries: readonly RedactionEntry[]): CompiledEntries {
  const compiled: CompiledEntry[] = [];
  const triggers: string[] = [];
  const entriesOfTrigger: CompiledEntry[][] = [];
  const triggerIndex = new Map<string, number>();
  for (const entry of entries) {
    const flags = entry.ignoreCase ? 'gdi' : 'gd';
    const one: CompiledEntry = {
      name: entry.name,
      regex: new RegExp(entry.pattern, flags),
      multiline: entry.multiline === true,
      continuation: new RegExp(entry.continuation ?? WORD_REST, 'y'),
      validate: entry.validate,
      triggered: entry.triggers !== undefined && entry.triggers.length > 0,
    };
    compiled.push(one);
    for (const trigger of entry.triggers ?? []) {
      const key = trigger.toLowerCase();
      let index = triggerIndex.get(key);
      if (index === undefined) {
        index = triggers.length;
        triggerIndex.set(key, index);
        triggers.push(key);
        entriesOfTrigger.push([]);
      }
      if (!entriesOfTrigger[index]!.includes(one)) entriesOfTrigger[index]!.push(one);
    }
  }
  return {
    entries: compiled,
    filter: new TriggerFilter(triggers),
    entriesOfTrigger,
    untriggered: compiled.filter((e) => !e.triggered),
  };
}

/** Append the secret spans of `entry` in `text` (offsets shifted by `offset`). */
export function findSpans(entry: CompiledEntry, text: string, offset: number, spans: SecretSpan[]): void {
  const regex = entry.regex;
  regex.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = regex.exec(text)) !== null) {
    if (match[0].length === 0) {
      regex.lastIndex++;
      continue;
    }
    if (entry.validate !== undefined && !entry.validate(match[0])) continue;
    const whole = match.indices![0]!;
    const matchStart = whole[0] + offset;
    const matchEnd = whole[1] + offset;
    let marked = false;
    const groups = match.indices!.groups;
    if (groups !== undefined) {
      for (const name in groups) {
        const span = groups[name];
        if (span === undefined || !name.startsWith('secret')) continue;
        marked = true; // an empty secret (`-p''`) has nothing to replace
        if (span[1] > span[0])
          spans.push({ start: span[0] + offset, end: span[1] + offset, matchStart, matchEnd, entry });
      }
    }
    if (!marked) spans.push({ start: matchStart, end: matchEnd, matchStart, matchEnd, entry });
  }
}

/** Spans sorted by start with overlaps merged; the names of the entries behind them, in first-fired order. */
export function mergeSpans(spans: SecretSpan[]): { merged: [number, number][]; fired: string[] } {
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: [number, number][] = [];
  const fired: string[] = [];
  for (const span of spans) {
    if (!fired.includes(span.entry.name)) fired.push(span.entry.name);
    const last = merged[merged.length - 1];
    if (last !== undefined && span.start <= last[1]) last[1] = Math.max(last[1], span.end);
    else merged.push([span.start, span.end]);
  }
  return { merged, fired };
}
