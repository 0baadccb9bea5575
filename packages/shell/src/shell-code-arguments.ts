/**
 * Commands whose arguments are shell code: `sh -c STRING`, `su -c STRING`, `trap 'handler' SIGNAL`,
 * `alias name='value'`, `mapfile -C callback`, `compgen`/`complete -C command`. The code is analysed as if written in place; code that cannot be read counts as unknown.
 */
import { analyzeExpandedText } from './assignments.js';
import { runShellString, spanText, splitLong, type CommandCollector } from './command-collector.js';
import { SHELL_SPEC } from './shells.js';
import type { ResolvedWord, SourceText } from './words.js';

/**
 * A POSIX-like shell: `sh -c STRING [name [args]]` runs STRING; `sh FILE` and `sh` (stdin: `curl … | sh`,
 * `sh < f`) run code we cannot see.
 */
export function expandShell(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  const spec = SHELL_SPEC;
  let index = 1;
  let codeOption = false;
  for (; index < words.length; index++) {
    const word = words[index]!;
    if (word.dynamic) return collector.pushUnknown(words, 0, source);
    const value = word.value;
    if (value === '--') {
      index++;
      break;
    }
    if (value.startsWith('--') && value.length > 2) {
      const [name, attached] = splitLong(value);
      if (spec.valueLongs.includes(name) && attached === undefined) index++;
      continue;
    }
    const isOption = value.length > 1 && (value.startsWith('-') || value.startsWith('+'));
    if (!isOption) break;
    let skipNext = false;
    for (let letterIndex = 1; letterIndex < value.length; letterIndex++) {
      const letter = value[letterIndex]!;
      if (spec.codeLetters.includes(letter)) codeOption = true;
      else if (spec.valueLetters.includes(letter)) {
        skipNext = letterIndex === value.length - 1;
        break;
      }
    }
    if (skipNext) index++;
  }
  if (codeOption) return runShellString(collector, words[index], words, source, depth);
  collector.pushUnknown(words, 0, source);
}

/**
 * `su [-] [user] -c CMD`, `runuser user -c CMD`: options may follow operands (getopt permutes); without -c they
 * start an interactive shell reading stdin.
 */
export function expandSuLike(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  let ranCode = false;
  for (let index = 1; index < words.length; index++) {
    const value = words[index]!.value;
    if (value === '--') break;
    if (words[index]!.dynamic) continue;
    if (value === '-c' || value === '--command' || value === '--session-command') {
      runShellString(collector, words[index + 1], words, source, depth);
      ranCode = true;
      index++;
    } else if (/^--(session-)?command=/.test(value)) {
      collector.analyzeSource(value.slice(value.indexOf('=') + 1), depth + 1);
      ranCode = true;
    } else if (/^-[a-zA-Z]*c./.test(value) && !value.startsWith('--')) {
      collector.analyzeSource(value.slice(value.indexOf('c') + 1), depth + 1);
      ranCode = true;
    }
  }
  if (!ranCode) collector.pushUnknown(words, 0, source);
}

/** `trap 'cmd' SIGNAL…`: the handler is shell code run later in this shell. */
export function expandTrap(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  let index = 1;
  if (words[index]?.value === '--') index++;
  const handler = words[index];
  if (!handler || (!handler.dynamic && (handler.value.startsWith('-') || handler.value === ''))) return;
  runShellString(collector, handler, words, source, depth);
}

/** Options of `mapfile` that take a value (bash builtins/mapfile.def). */
const MAPFILE_VALUE_LETTERS = 'dnOsucC';

/** `mapfile -C 'cmd' -c N`: bash evaluates the callback as code every N lines read (and at the end). */
export function expandMapfileCallback(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  const read = forEachValuedOption(words, MAPFILE_VALUE_LETTERS, (letter, operand) => {
    if (letter === 'C') runShellString(collector, operand, words, source, depth);
  });
  if (!read) collector.pushUnknown(words, 0, source); // a word we cannot read may be a -C option
}

/** `alias ls='rm -rf'`: an interactive shell runs the value in place of the name on later lines. */
export function expandAlias(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  for (const word of words.slice(1)) {
    if (word.dynamic) return collector.pushUnknown(words, 0, source);
    const equals = word.value.indexOf('=');
    if (equals > 0) collector.analyzeSource(word.value.slice(equals + 1), depth + 1);
  }
}

/** Options of `complete`/`compgen` that take a value (bash builtins/complete.def). */
const COMPLETION_VALUE_LETTERS = 'oAGWFCXPS';

/**
 * `compgen -C cmd`, `complete -C cmd`: cmd is shell code bash runs to list completions (at once for compgen, at
 * the next Tab for complete); `-W words` are expanded, command substitutions included.
 */
export function expandCompletionCode(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  const read = forEachValuedOption(words, COMPLETION_VALUE_LETTERS, (letter, operand) => {
    if (letter === 'C') runShellString(collector, operand, words, source, depth);
    else if (letter === 'W' && operand !== undefined) {
      if (operand.dynamic) collector.pushUnknown(words, 0, source);
      else analyzeExpandedText(collector, operand.value, spanText(words, source), depth);
    }
  });
  if (!read) collector.pushUnknown(words, 0, source); // a word we cannot read may be a -C option
}

/**
 * A builtin's valued options as bash's getopt reads them: letters cluster (`-ac`), and the first letter in
 * `valueLetters` takes the rest of its word, else the next word; `--` or the first operand ends them. False when a
 * word could not be read (an expansion), which could be any option.
 */
function forEachValuedOption(
  words: readonly ResolvedWord[],
  valueLetters: string,
  visit: (letter: string, operand: ResolvedWord | undefined) => void,
): boolean {
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    if (word.dynamic) return false;
    const value = word.value;
    if (value === '--' || !value.startsWith('-')) return true;
    for (let at = 1; at < value.length; at++) {
      const letter = value[at]!;
      if (!valueLetters.includes(letter)) continue;
      const attached = value.slice(at + 1);
      visit(letter, attached !== '' ? { ...word, value: attached } : words[++index]);
      break;
    }
  }
  return true;
}
