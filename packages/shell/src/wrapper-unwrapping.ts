/**
 * Where the command a wrapper runs starts (`sudo -u root rm x` runs `rm x`), read from its spec (wrapper-spec.ts):
 * options with values are skipped, shell-code options are analysed, and an option the spec does not know makes
 * every later operand a possible start of the command.
 */
import { judgeAssignment, isCommandVariable } from './environment.js';
import { isGitExecKey, isHookVariable, runHookValue } from './assignments.js';
import {
  runShellString,
  runShellWords,
  spanText,
  splitLong,
  type CommandCollector,
} from './command-collector.js';
import { SUBCOMMAND_WRAPPERS } from './subcommand-wrappers.js';
import type { WrapperSpec } from './wrapper-spec.js';
import { quoteForShell, type ResolvedWord, type SourceText } from './words.js';

// env and sudo take any word with `=` after a non-empty name as a variable, names a shell could not assign
// included: `env 'BASH_FUNC_ls%%=() { …; }' bash` defines a function for the bash it starts.
const ASSIGNMENT_WORD = /^[^=]+=/;

/** Unwrap `words` (the wrapper's own name first) and report the command it runs to `collector`. */
export function expandWrapper(
  collector: CommandCollector,
  spec: WrapperSpec,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): void {
  let operandsToSkip = spec.operandsBefore ?? 0;
  let optionsDone = spec.noOptions ?? false;
  let joinAsShell = spec.joinAsShell ?? false;
  let shellFlag = false;
  let index = 1;
  const guessFrom = (from: number): void => guessWrappedCommand(collector, spec, words, from, source, depth);
  for (; index < words.length; index++) {
    const word = words[index]!;
    const value = word.value;
    if (word.dynamic) {
      // `env A="$x" cmd`: a quoted expansion in an assignment's value cannot become another word.
      // (Before `--`, a word starting with `-` is an option, `"--split-string=$x"` included.)
      if (
        spec.assignments &&
        !word.splits &&
        ASSIGNMENT_WORD.test(value) &&
        (optionsDone || value[0] !== '-')
      ) {
        judgeWrapperAssignment(collector, word, source, depth);
        continue;
      }
      return collector.pushUnknown(words, index, source);
    }
    if (!optionsDone && value === '--') {
      optionsDone = true;
      continue;
    }
    if (!optionsDone && value.startsWith('--') && value.length > 2) {
      const [name, attached] = splitLong(value);
      if (spec.noCommandLongs?.includes(name)) return;
      if (spec.unknownLongs?.includes(name)) return collector.pushUnknown(words, 0, source);
      if (spec.splitStringLongs?.includes(name)) {
        const next = attached === undefined ? words[index + 1] : undefined;
        const restFrom = index + (attached === undefined ? 2 : 1);
        return runSplitString(collector, next, attached ?? '', words, restFrom, source, depth);
      }
      if (spec.shellStringLongs?.includes(name)) {
        if (attached !== undefined) collector.analyzeSource(attached, depth + 1);
        else runShellString(collector, words[++index], words, source, depth);
      } else if (spec.interactiveShellLongs?.includes(name)) shellFlag = true;
      else if (spec.valueLongs?.includes(name)) {
        if (attached === undefined && !skipValue(collector, words, ++index, source)) return;
      } else if (!spec.flagLongs?.includes(name) && attached === undefined && !spec.longsAttachedOnly) {
        return guessFrom(index + 1); // an option we do not know may take the next word as its value
      }
      continue;
    }
    if (!optionsDone && value.startsWith('-') && value.length > 1) {
      if (spec.numericOption && /^-\d+$/.test(value)) continue;
      for (let letterIndex = 1; letterIndex < value.length; letterIndex++) {
        const letter = value[letterIndex]!;
        const rest = value.slice(letterIndex + 1);
        if (spec.noCommandLetters?.includes(letter)) return;
        if (spec.unknownLetters?.includes(letter)) return collector.pushUnknown(words, 0, source);
        if (spec.splitStringLetters?.includes(letter)) {
          // `env -S 'prog args' more`: the string is split into words like a shell would, then run.
          const next = rest ? undefined : words[index + 1];
          return runSplitString(collector, next, rest, words, index + (rest ? 1 : 2), source, depth);
        }
        if (spec.shellStringLetters?.includes(letter)) {
          if (rest) collector.analyzeSource(rest, depth + 1);
          else runShellString(collector, words[++index], words, source, depth);
          break;
        }
        if (spec.valueLetters?.includes(letter)) {
          if (!rest && !skipValue(collector, words, ++index, source)) return;
          break;
        }
        if (spec.attachedValueLetters?.includes(letter)) break;
        if (spec.execLetters?.includes(letter)) joinAsShell = false;
        else if (spec.interactiveShellLetters?.includes(letter)) shellFlag = true;
        else if (!spec.flagLetters?.includes(letter)) {
          // A letter we do not know: it may take the rest of the word, or the next word, as its value.
          return guessFrom(index + 1);
        }
      }
      continue;
    }
    if (spec.loneDash && value === '-') continue; // `env -` is `env -i`; `sg - group` is a login
    // `flock FILE -c CMD`: the shell-code option may follow the operand.
    if (optionsDone && operandsToSkip === 0 && isShellStringOption(spec, value)) {
      return runShellString(collector, words[index + 1], words, source, depth);
    }
    if (spec.assignments && ASSIGNMENT_WORD.test(value)) {
      judgeWrapperAssignment(collector, word, source, depth);
      continue;
    }
    optionsDone = true; // these programs stop option parsing at the first operand (getopt "+…")
    if (operandsToSkip > 0) {
      operandsToSkip--;
      continue;
    }
    break;
  }
  const inner = words.slice(index);
  if (inner.length === 0) {
    // `chroot DIR`, `sudo -s`, `sudo -i`: an interactive shell whose commands arrive on stdin.
    if (spec.defaultsToShell || shellFlag) collector.pushUnknown(words, 0, source);
    return;
  }
  // `sudo -s cmd` runs cmd through $SHELL -c, as `watch cmd` runs it through sh -c.
  if (joinAsShell || shellFlag) return runShellWords(collector, inner, words, source, depth);
  // `chrt [prio] cmd`, `setarch [arch] cmd`: with the operand left out, the command starts one word earlier.
  if (spec.optionalOperandBefore && inner.length > 1) collector.emitWrapped(inner.slice(1), source, depth);
  collector.emitWrapped(inner, source, depth);
}

/**
 * `npm exec CMD`, `perf stat CMD`, `ip netns exec NS CMD`: the subcommand is a wrapper. It is found anywhere among
 * the words, so global options with values before it cannot hide it. Returns whether one was found.
 */
export function expandSubcommandWrapper(
  collector: CommandCollector,
  program: string,
  words: readonly ResolvedWord[],
  source: SourceText,
  depth: number,
): boolean {
  const subcommands = SUBCOMMAND_WRAPPERS.get(program);
  if (!subcommands) return false;
  for (let index = 1; index < words.length; index++) {
    if (words[index]!.value === '--') return false;
    for (const [path, spec] of subcommands) {
      const parts = path.split(' ');
      const matches = parts.every((part, i) => {
        const word = words[index + i];
        return word !== undefined && !word.dynamic && word.value === part;
      });
      if (!matches) continue;
      const last = index + parts.length - 1;
      expandWrapper(collector, spec, words.slice(last), source, depth);
      return true;
    }
  }
  return false;
}

/**
 * A wrapper option we do not know: every later word that is not an option may be where the command starts
 * (`bwrap --bind / / rm x`). Wrappers that also take shell code in options count as unknown instead.
 */
function guessWrappedCommand(
  collector: CommandCollector,
  spec: WrapperSpec,
  words: readonly ResolvedWord[],
  from: number,
  source: SourceText,
  depth: number,
): void {
  const takesCode =
    spec.shellStringLetters || spec.shellStringLongs || spec.splitStringLetters || spec.joinAsShell;
  if (takesCode) return collector.pushUnknown(words, 0, source);
  for (let index = from; index < words.length; index++) {
    const word = words[index]!;
    if (word.dynamic) return collector.pushUnknown(words, index, source);
    if (word.value.startsWith('-')) continue;
    collector.emitWrapped(words.slice(index), source, depth);
  }
}

/**
 * `env PAGER=cmd git log`, `sudo LD_PRELOAD=x.so prog`, `env BASH_ENV=f bash -c ls`: a `NAME=value` word put in
 * the environment of the program run next (also each entry of a container's environment, analyze.ts).
 */
export function judgeWrapperAssignment(
  collector: CommandCollector,
  word: ResolvedWord,
  source: SourceText,
  depth: number,
): void {
  const equals = word.value.indexOf('=');
  const name = word.value.slice(0, equals);
  const value: ResolvedWord = { ...word, value: word.value.slice(equals + 1) };
  if (isCommandVariable(name)) {
    judgeAssignment(name, value, collector.sink([word], word.value, source, depth), isGitExecKey);
  } else if (isHookVariable(name) && (value.dynamic || value.value !== '')) {
    // An empty BASH_ENV or prompt runs nothing; bash reads these from its environment as from an assignment.
    runHookValue(collector, name, value, spanText([word], source), depth);
  }
}

/** `env -S 'prog args' more`: the string split like a shell would, followed by the remaining words. */
function runSplitString(
  collector: CommandCollector,
  word: ResolvedWord | undefined,
  attached: string,
  words: readonly ResolvedWord[],
  restFrom: number,
  source: SourceText,
  depth: number,
): void {
  const rest = words.slice(restFrom);
  if (word?.dynamic || rest.some((w) => w.splits)) return collector.pushUnknown(words, 0, source);
  const code = [word ? word.value : attached, ...rest.map((w) => quoteForShell(w.value))].join(' ');
  collector.analyzeSource(code, depth + 1);
}

/** An option's value word: a quoted expansion is fine (`-u "$user"`), a splitting one may hide the command. */
function skipValue(
  collector: CommandCollector,
  words: readonly ResolvedWord[],
  index: number,
  source: SourceText,
): boolean {
  const value = words[index];
  if (value?.splits) {
    collector.pushUnknown(words, index, source);
    return false;
  }
  return true;
}

function isShellStringOption(spec: WrapperSpec, value: string): boolean {
  if (spec.shellStringLongs?.includes(splitLong(value)[0])) return true;
  return value.length === 2 && value[0] === '-' && (spec.shellStringLetters?.includes(value[1]!) ?? false);
}
