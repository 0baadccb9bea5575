/**
 * awk (POSIX awk, gawk, mawk, busybox awk): a program given inline counts as unknown when it can run a command —
 * `system()`, an output pipe `print | "cmd"`, an input pipe `"cmd" | getline`, a coprocess `|&`, or a gawk
 * directive or indirect call (`@load`, `@f()`). Strings and regular expressions are skipped only where their
 * extent is certain; wherever a `/` could be a division or a regex the check falls back to the whole text, so a
 * lexer disagreement can only make a harmless program unknown, never hide a pipe.
 */
import type { ProgramReader } from './execution.js';
import { isStdin, scanArguments } from './options.js';
import type { ResolvedWord } from './words.js';

const AWK_OPTIONS = {
  '-f': 'file',
  '--file': 'file',
  '-E': 'file',
  '--exec': 'file',
  '-e': 'inline',
  '--source': 'inline',
  '-v': 'value',
  '--assign': 'value',
  '-F': 'value',
  '--field-separator': 'value',
  '-i': 'file',
  '--include': 'file',
  '-l': 'unknown',
  '--load': 'unknown',
  '-D': 'unknown-flag',
  '--debug': 'unknown-flag',
  '-W': 'value',
  '-S': 'no-stdin',
  '--sandbox': 'no-stdin',
  '-d': 'attached',
  '-o': 'attached',
  '-p': 'attached',
  '-L': 'attached',
  '--version': 'none',
  '--help': 'none',
} as const;

export const readAwk: ProgramReader = (words, sink) => {
  const scanned = scanArguments(words, { options: AWK_OPTIONS, stopAtOperand: true });
  if (scanned.unknowable) return sink.unknown();
  if (scanned.found.some((o) => o.meaning === 'none')) return;
  // gawk --sandbox disables system(), pipes, redirections and extensions.
  const sandboxed = scanned.found.some((o) => o.meaning === 'no-stdin');
  let programGiven = false;
  let unknown = false;
  for (const option of scanned.found) {
    if (option.meaning === 'unknown' || option.meaning === 'unknown-flag') unknown = true;
    if (option.meaning === 'file') {
      programGiven = true;
      if (option.value === undefined || isStdin(option.value.value)) unknown = true;
    }
    if (option.meaning === 'inline') {
      programGiven = true;
      if (option.value === undefined || runsCommands(option.value)) unknown = true;
    }
    // mawk `-W exec file` names the program file; any other -W setting is inert.
    if (
      option.name === '-W' &&
      option.value !== undefined &&
      /^e(x(ec?)?)?(\s|=|$)/.test(option.value.value)
    ) {
      programGiven = true;
    }
  }
  if (!programGiven) {
    const program = scanned.operands[0];
    if (program === undefined) return; // awk with no program only prints its usage
    if (runsCommands(program)) unknown = true;
  }
  if (unknown && !sandboxed) sink.unknown();
};

function runsCommands(program: ResolvedWord): boolean {
  if (program.dynamic) return true;
  return awkRunsCommands(program.value);
}

/** Whether an awk program's text can run a command. Exported for the tests. */
export function awkRunsCommands(text: string): boolean {
  if (/\bsystem\b|@/.test(text)) return true;
  const code = awkCodeOutsideLiterals(text);
  // `||` is a logical or; any other `|` is a pipe (`print | "cmd"`, `"cmd" | getline`, `|&`).
  return /(^|[^|])\|(?!\|)/.test(code.replace(/\|\|/g, '  '));
}

/**
 * The program with string literals and regular expressions blanked out, or the whole text when a `/` could be
 * read either way (after `)`, `++`, `--`): then the `|` of a regex counts too.
 */
function awkCodeOutsideLiterals(text: string): string {
  let out = '';
  let previous = ''; // the last significant character outside literals
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end === -1) return text;
      out += ' '.repeat(end - i + 1);
      i = end;
      previous = '"';
      continue;
    }
    if (c === '/') {
      const position = slashPosition(previous, text, i);
      if (position === 'ambiguous') return text;
      if (position === 'regex') {
        const end = regexEnd(text, i);
        if (end === -1) return text;
        out += ' '.repeat(end - i + 1);
        i = end;
        previous = '/';
        continue;
      }
    }
    out += c;
    if (!/\s/.test(c)) previous = c;
  }
  return out;
}

/** After an operand a `/` divides; after an operator or at a statement start it opens a regex. */
function slashPosition(previous: string, text: string, at: number): 'regex' | 'division' | 'ambiguous' {
  if (previous === '' || '({[,;!~&|=<>?:+-*%^\n'.includes(previous)) {
    // `x++ / 2`: after `++`/`--` either reading is possible.
    const before = text.slice(0, at).trimEnd();
    if (before.endsWith('++') || before.endsWith('--')) return 'ambiguous';
    return 'regex';
  }
  if (previous === ')') return 'ambiguous';
  if (/[A-Za-z0-9_$\]"./]/.test(previous)) {
    // A keyword such as `print` or `return` is followed by an expression, which may be a regex.
    const word = /([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(text.slice(0, at));
    if (word && ['print', 'printf', 'return', 'in', 'getline', 'else', 'do', 'case'].includes(word[1]!)) {
      return 'ambiguous';
    }
    return 'division';
  }
  return 'ambiguous';
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
    else if (text[i] === '\n') return -1;
  }
  return -1;
}

function regexEnd(text: string, start: number): number {
  let bracket = false;
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '[') bracket = true;
    else if (c === ']') bracket = false;
    else if (c === '/' && bracket)
      return -1; // awks disagree whether `/` ends a regex inside brackets
    else if (c === '/') return i;
    else if (c === '\n') return -1;
  }
  return -1;
}
