/**
 * The analysis in progress as the pieces that read wrappers, shell-code arguments and assignments see it
 * (analyze.ts implements it): they report what a command runs through it, so the limits on nesting, wrapper depth
 * and command count are kept in one place.
 */
import type { ShellSimpleCommand } from '@agentgate/core';
import type { CommandSink } from './execution.js';
import type { ResolvedWord, SourceText } from './words.js';

export interface CommandCollector {
  readonly commands: ShellSimpleCommand[];
  /** Analyse `text` as shell code nested `depth` levels deep. */
  analyzeSource(text: string, depth: number): void;
  /** Analyse `text` in a collector of its own and return the commands it found. */
  analyzeApart(text: string, depth: number): ShellSimpleCommand[];
  /** The command a wrapper runs (`sudo CMD`, `find -exec CMD ;`). */
  emitWrapped(inner: readonly ResolvedWord[], source: SourceText, depth: number): void;
  /** A program whose code cannot be seen before it runs: counts as an unknown program. */
  pushUnknown(words: readonly ResolvedWord[], from: number, source: SourceText): void;
  /** Where a reader reports what the program made of `words` runs. */
  sink(words: readonly ResolvedWord[], text: string, source: SourceText, depth: number): CommandSink;
}

/** Words joined with spaces and run as shell code (`eval a b`, `watch cmd args`). */
export function runShellWords(
  collector: CommandCollector,
  code: readonly ResolvedWord[],
  all: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  if (code.some((w) => w.dynamic)) return collector.pushUnknown(all, 0, source);
  if (code.length > 0) collector.analyzeSource(code.map((w) => w.value).join(' '), depth + 1);
}

/** One word run as shell code (`sh -c WORD`, `su -c WORD`, a trap handler). */
export function runShellString(
  collector: CommandCollector,
  word: ResolvedWord | undefined,
  all: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  if (!word) return;
  if (word.dynamic) return collector.pushUnknown(all, 0, source);
  collector.analyzeSource(word.value, depth + 1);
}

/** `--name=value` → [`--name`, `value`]; `--name` → [`--name`, undefined]. */
export function splitLong(option: string): [string, string | undefined] {
  const equals = option.indexOf('=');
  return equals === -1 ? [option, undefined] : [option.slice(0, equals), option.slice(equals + 1)];
}

/** The source text from the first word's start to the last word's end. */
export function spanText(words: readonly ResolvedWord[], source: SourceText): string {
  const first = words[0];
  const last = words[words.length - 1];
  return first && last ? source.slice(first.start, last.end) : '';
}
