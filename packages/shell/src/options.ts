/**
 * A getopt-style reader for the arguments of programs that can run other programs: which option a word is, and
 * which word is its value. It errs towards reporting an option that runs something: a long option abbreviated to
 * a prefix of several (`--to` of `--to-command`/`--totals`) counts as the one that runs, and a word whose value is
 * only known at run time counts as any option it could expand to (the caller treats it as unknown).
 */
import type { ResolvedWord } from './words.js';

/**
 * What an option's value, or its presence, means.
 * - `value`: it takes a value that runs nothing; `attached`: the same, but only attached (`-i.bak`, `-d[file]`).
 * - `shell`: the value is a command line run by a shell (or a program and its arguments): analysed as shell code.
 *   `shell-attached`: the same, attached only (`man -Hbrowser`).
 * - `unknown`: the value is code in another language, a library to load, or a command that cannot be read;
 *   `unknown-flag`: the option alone lets the program run what cannot be seen (`--shell-escape`, `-i` REPLs).
 * - `inline`: the value is the program's own commands (`psql -c`), checked for shell escapes by the caller;
 *   `file`: the value is a file of commands (`psql -f`): commands do not come from stdin (unless it is `-`).
 * - `module`: a module to load (`node --import`): a `data:` URL is inline code.
 * - `setting`: `key=value` (`ssh -o`, `apt-get -o`, `restic -o`): the caller judges the key.
 * - `checkpoint`: `tar --checkpoint-action`: `exec=CMD` runs CMD.
 * - `pipe`: a file name, or `|command` (`psql -o '|cmd'`).
 * - `rest`: the remaining words are a command (`pidstat -e prog args`).
 * - `no-stdin`: a flag that means no commands are read from stdin (`node --test`).
 * - `none`: the program only prints and exits (`--version`); nothing runs.
 */
export type OptionMeaning =
  | 'value'
  | 'attached'
  | 'shell'
  | 'shell-attached'
  | 'unknown'
  | 'unknown-flag'
  | 'inline'
  | 'file'
  | 'module'
  | 'setting'
  | 'checkpoint'
  | 'pipe'
  | 'rest'
  | 'no-stdin'
  | 'none';

export interface OptionGrammar {
  /** `-x` letters (clustered `-abc`, value attached or next), `--long` names (abbreviable, `=value` or next). */
  readonly options?: Readonly<Record<string, OptionMeaning>>;
  /** Every `-word` and `--word` is one option (`-toolexec`, `-shell-escape`, `--cmd`); keys are written `-word`. */
  readonly singleDashLongs?: boolean;
  /** Options are read only before the first operand (most programs permute, as GNU getopt does). */
  readonly stopAtOperand?: boolean;
}

/** One option that matters, with its value when it takes one. */
export interface FoundOption {
  readonly name: string;
  readonly meaning: OptionMeaning;
  /** The value as a word; for attached values a synthetic static word. */
  readonly value?: ResolvedWord;
  /** For `rest`: the words after the option. */
  readonly rest?: readonly ResolvedWord[];
}

export interface ScannedArguments {
  readonly found: readonly FoundOption[];
  /** Options that mean nothing in the grammar (flags, or values we need not read): `-N`, `--verbose`. */
  readonly flags: readonly string[];
  readonly operands: readonly ResolvedWord[];
  /** A word whose run-time value could be any option (or several words): the program counts as unknown. */
  readonly unknowable: boolean;
}

const TAKES_VALUE: ReadonlySet<OptionMeaning> = new Set([
  'value',
  'shell',
  'unknown',
  'inline',
  'file',
  'module',
  'setting',
  'checkpoint',
  'pipe',
]);
const ATTACHED_ONLY: ReadonlySet<OptionMeaning> = new Set(['attached', 'shell-attached']);

/** A synthetic word for a value that was attached to its option (`-Icmd`, `--to-command=cmd`). */
export function attachedWord(word: ResolvedWord, value: string): ResolvedWord {
  return { value, dynamic: word.dynamic, splits: word.splits, start: word.start, end: word.end };
}

/**
 * Whether a word may turn into an option at run time: an unquoted expansion split into fields, a glob or brace
 * that may start with `-` (`*` matching a file named `--checkpoint-action=exec=sh`), or a quoted expansion at
 * its start. A literal prefix (`./*`, `/data/"$f"`) keeps it an operand.
 */
export function couldBeOption(word: ResolvedWord): boolean {
  if (!word.dynamic) return false;
  if (word.fieldSplits) return true;
  if (word.splits) return word.value === '' || /^[-$`<>[?*{@+!]/.test(word.value);
  return word.value === '' || /^[-$`<>]/.test(word.value);
}

export function scanArguments(words: readonly ResolvedWord[], grammar: OptionGrammar): ScannedArguments {
  const options = grammar.options ?? {};
  const found: FoundOption[] = [];
  const flags: string[] = [];
  const operands: ResolvedWord[] = [];
  let unknowable = false;
  let optionsDone = false;
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    const text = word.value;
    if (!optionsDone && couldBeOption(word)) {
      unknowable = true;
      continue;
    }
    if (optionsDone || word.dynamic || !text.startsWith('-') || text === '-') {
      operands.push(word);
      if (grammar.stopAtOperand) optionsDone = true;
      continue;
    }
    if (text === '--') {
      optionsDone = true;
      continue;
    }
    const takeNext = (): ResolvedWord | undefined => {
      const next = words[index + 1];
      if (next === undefined) return undefined;
      index++;
      if (next.splits) unknowable = true;
      return next;
    };
    const isLong = grammar.singleDashLongs || text.startsWith('--');
    if (isLong) {
      const equals = text.indexOf('=');
      const given = (equals === -1 ? text : text.slice(0, equals)).replace(/^--?/, '');
      const attached = equals === -1 ? undefined : text.slice(equals + 1);
      const [name, meaning] = longOption(options, given, grammar.singleDashLongs ?? false);
      if (meaning === undefined) {
        flags.push(`-${text.startsWith('--') && !grammar.singleDashLongs ? '-' : ''}${given}`);
        continue; // a flag, or a value that is attached (`--opt=value`)
      }
      if (meaning === 'rest') {
        found.push({ name, meaning, rest: words.slice(index + 1) });
        return { found, flags, operands, unknowable };
      }
      if (ATTACHED_ONLY.has(meaning)) {
        if (attached !== undefined) found.push({ name, meaning, value: attachedWord(word, attached) });
        continue;
      }
      if (!TAKES_VALUE.has(meaning)) {
        found.push({ name, meaning });
        if (meaning === 'none') return { found, flags, operands, unknowable };
        continue;
      }
      const value = attached !== undefined ? attachedWord(word, attached) : takeNext();
      found.push(value === undefined ? { name, meaning } : { name, meaning, value });
      continue;
    }
    for (let letterIndex = 1; letterIndex < text.length; letterIndex++) {
      const name = `-${text[letterIndex]!}`;
      const meaning = options[name];
      if (meaning === undefined) {
        flags.push(name);
        continue;
      }
      const rest = text.slice(letterIndex + 1);
      if (meaning === 'rest') {
        found.push({ name, meaning, rest: words.slice(index + 1) });
        return { found, flags, operands, unknowable };
      }
      if (ATTACHED_ONLY.has(meaning)) {
        if (rest !== '') found.push({ name, meaning, value: attachedWord(word, rest) });
        break;
      }
      if (!TAKES_VALUE.has(meaning)) {
        found.push({ name, meaning });
        if (meaning === 'none') return { found, flags, operands, unknowable };
        continue;
      }
      const value = rest !== '' ? attachedWord(word, rest) : takeNext();
      found.push(value === undefined ? { name, meaning } : { name, meaning, value });
      break;
    }
  }
  return { found, flags, operands, unknowable };
}

const SEVERITY: Readonly<Record<OptionMeaning, number>> = {
  rest: 9,
  unknown: 8,
  'unknown-flag': 8,
  shell: 7,
  'shell-attached': 7,
  checkpoint: 7,
  setting: 6,
  pipe: 6,
  module: 6,
  inline: 5,
  file: 4,
  'no-stdin': 3,
  value: 2,
  attached: 2,
  none: 0,
};

/**
 * The option a long name means: an exact match, else (getopt_long) the options it abbreviates; of several, the
 * one that runs the most, so an ambiguous abbreviation is never read as harmless.
 */
function longOption(
  options: Readonly<Record<string, OptionMeaning>>,
  given: string,
  exactOnly: boolean,
): [string, OptionMeaning | undefined] {
  const exact = exactOnly ? (options[`-${given}`] ?? options[`--${given}`]) : options[`--${given}`];
  if (exact !== undefined) return [given, exact];
  if (exactOnly || given.length === 0) return [given, undefined];
  let best: [string, OptionMeaning] | undefined;
  for (const [key, meaning] of Object.entries(options)) {
    if (!key.startsWith(`--${given}`)) continue;
    if (best === undefined || SEVERITY[meaning] > SEVERITY[best[1]]) best = [key.slice(2), meaning];
  }
  return best ?? [given, undefined];
}

/** Files that are stdin under another name. */
export function isStdin(path: string): boolean {
  return ['-', '/dev/stdin', '/dev/fd/0', '/proc/self/fd/0'].includes(path);
}
