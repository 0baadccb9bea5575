/**
 * What a program's arguments make it run, per its catalogue entry (catalogue.ts): commands given in options are
 * handed to the sink to be analysed as shell code; code, libraries and commands read from stdin make it unknown.
 */
import type { ProgramExecution } from './catalogue.js';
import { isStdin, scanArguments, type FoundOption } from './options.js';
import type { ResolvedWord } from './words.js';

/** Where a reader reports what the program it reads runs. */
export interface CommandSink {
  /** A command line run by a shell (`sh -c VALUE`); unknown when its text is only known at run time. */
  shell(word: ResolvedWord): void;
  /** Words joined with spaces and run by a shell (`ssh host ls -l`). */
  shellWords(words: readonly ResolvedWord[]): void;
  /** Words run as a command, the first being the program (`pidstat -e prog args`). */
  command(words: readonly ResolvedWord[]): void;
  /** A program (a path) run later with arguments of the caller's choosing (`SHELL=/bin/zsh`). */
  program(word: ResolvedWord): void;
  /** The program runs what cannot be known before it runs. */
  unknown(): void;
}

/** A dedicated reader for a program whose arguments need more than the generic option table. */
export type ProgramReader = (words: readonly ResolvedWord[], sink: CommandSink) => void;

export function runCatalogueEntry(
  entry: ProgramExecution,
  words: readonly ResolvedWord[],
  sink: CommandSink,
): void {
  const subcommand = findSubcommand(entry, words);
  if (subcommand !== undefined) {
    return runCatalogueEntry(subcommand.entry, words.slice(subcommand.index), sink);
  }
  if (entry.unknownArguments && words.slice(1).some((w) => entry.unknownArguments!.test(w.value))) {
    return sink.unknown();
  }
  const scanned = scanArguments(words, entry);
  if (scanned.unknowable && mayRunCommand(entry)) return sink.unknown();
  if (scanned.found.some((o) => o.meaning === 'none') && !scanned.found.some(runsSomething)) return;

  let unknown = entry.class === 'always';
  let commandsGiven = false;
  for (const option of scanned.found) {
    const value = option.value;
    switch (option.meaning) {
      case 'shell':
      case 'shell-attached':
        if (value !== undefined) sink.shell(value);
        commandsGiven = true;
        break;
      case 'unknown':
      case 'unknown-flag':
        unknown = true;
        break;
      case 'inline':
        commandsGiven = true;
        if (value === undefined || value.dynamic || entry.escape?.test(value.value)) unknown = true;
        break;
      case 'file':
        commandsGiven = true;
        if (value === undefined || isStdin(value.value)) unknown = true;
        break;
      case 'module':
        if (value?.value.trim().startsWith('data:')) unknown = true;
        break;
      case 'setting':
        if (value !== undefined) unknown = judgeSetting(entry, value, sink) || unknown;
        break;
      case 'checkpoint':
        if (value !== undefined && /^exec=/.test(value.value)) {
          sink.shell({ ...value, value: value.value.slice('exec='.length) });
        }
        break;
      case 'pipe':
        if (value !== undefined && value.value.startsWith('|')) {
          sink.shell({ ...value, value: value.value.slice(1) });
        }
        break;
      case 'rest':
        if (option.rest !== undefined && option.rest.length > 0) sink.command(option.rest);
        commandsGiven = true;
        break;
      case 'no-stdin':
        commandsGiven = true;
        break;
      case 'value':
      case 'attached':
      case 'none':
        break;
    }
  }
  const operands = scanned.operands;
  if (entry.shellOperand !== undefined) {
    const operand = operands[entry.shellOperand];
    if (operand !== undefined) sink.shell(operand);
  }
  if (entry.class === 'interpreter' || entry.class === 'commands') {
    if (!commandsGiven) {
      const script = entry.scriptOperand ? operands[0] : undefined;
      const inline = entry.inlineOperand === undefined ? undefined : operands[entry.inlineOperand];
      if (inline !== undefined) {
        if (inline.dynamic || entry.escape?.test(inline.value)) unknown = true;
      } else if (script === undefined || isStdin(script.value)) {
        unknown = true; // commands or code from stdin (or an interactive session)
      }
    }
  }
  if (unknown) sink.unknown();
}

/**
 * Whether a word whose value is only known at run time could make the program run a command: it could be an
 * option that takes one (`tar "$opt"`, `tar -czf x.tgz *` with a file named `--checkpoint-action=exec=…`), or an
 * interpreter's script operand (`python3 "$x"` with x=`-c…`). Options that only load a library (`curl --engine`)
 * are not counted there (README: limits).
 */
function mayRunCommand(entry: ProgramExecution): boolean {
  if (entry.class !== 'options') return true;
  if (entry.shellOperand !== undefined) return true;
  return Object.values(entry.options ?? {}).some((m) => COMMAND_MEANINGS.has(m));
}

const COMMAND_MEANINGS: ReadonlySet<string> = new Set([
  'shell',
  'shell-attached',
  'checkpoint',
  'pipe',
  'setting',
  'rest',
]);

function runsSomething(option: FoundOption): boolean {
  return option.meaning !== 'none' && option.meaning !== 'value' && option.meaning !== 'attached';
}

/** `-o Key=Value` / `-o 'Key Value'`: the entry says what a key's value is. */
function judgeSetting(entry: ProgramExecution, value: ResolvedWord, sink: CommandSink): boolean {
  if (entry.settings === undefined) return false;
  if (value.dynamic) return true;
  const match = /^\s*([^=\s]+)\s*(?:=|\s)\s*([\s\S]*)$/.exec(value.value);
  if (match === null) return false;
  const kind = entry.settings(match[1]!);
  if (kind === 'unknown') return true;
  if (kind === 'shell' && match[2]!.trim() !== '') sink.shell({ ...value, value: match[2]! });
  return false;
}

/** A subcommand of the entry among the program's operands: its index in `words`, and its own entry. */
function findSubcommand(
  entry: ProgramExecution,
  words: readonly ResolvedWord[],
): { index: number; entry: ProgramExecution } | undefined {
  if (entry.subcommands === undefined) return undefined;
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    if (word.value === '--') return undefined;
    if (word.dynamic) continue;
    const found = entry.subcommands[word.value];
    if (found !== undefined) return { index, entry: found };
  }
  return undefined;
}
