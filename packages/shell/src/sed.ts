/**
 * sed: a script given inline counts as unknown when GNU sed would run a command from it — the `e` command or the
 * `e` flag of `s///e`. The script is read command by command as GNU sed reads it (sed/compile.c); anything this
 * reader does not follow exactly makes the script unknown rather than harmless.
 */
import type { ProgramReader } from './execution.js';
import { isStdin, scanArguments } from './options.js';

const SED_OPTIONS = {
  '-e': 'inline',
  '--expression': 'inline',
  '-f': 'file',
  '--file': 'file',
  '-i': 'attached',
  '-l': 'value',
  '--line-length': 'value',
  '--sandbox': 'no-stdin',
  '--version': 'none',
  '--help': 'none',
} as const;

export const readSed: ProgramReader = (words, sink) => {
  const scanned = scanArguments(words, { options: SED_OPTIONS });
  if (scanned.unknowable) return sink.unknown();
  if (scanned.found.some((o) => o.meaning === 'none')) return;
  // --sandbox rejects e, r and w commands.
  if (scanned.found.some((o) => o.meaning === 'no-stdin')) return;
  const scripts: string[] = [];
  let fromFiles = false;
  for (const option of scanned.found) {
    if (option.meaning === 'file') {
      fromFiles = true;
      if (option.value === undefined || isStdin(option.value.value)) return sink.unknown();
    }
    if (option.meaning === 'inline') {
      if (option.value === undefined || option.value.dynamic) return sink.unknown();
      scripts.push(option.value.value);
    }
  }
  if (scripts.length === 0 && !fromFiles) {
    const script = scanned.operands[0];
    if (script === undefined) return;
    if (script.dynamic) return sink.unknown();
    scripts.push(script.value);
  }
  // GNU sed joins -e scripts with newlines.
  if (sedRunsCommands(scripts.join('\n'))) sink.unknown();
};

const SIMPLE = new Set([...'=dDgGhHnNpPxzF']);
const OPTIONAL_NUMBER = new Set([...'qQlLv']);
const FILE_NAME = new Set([...'rRwW']);
const LABEL = new Set([...':bTt']);
const TEXT = new Set([...'aic']);

/** Whether GNU sed would run a command from this script (or the script is beyond this reader). */
export function sedRunsCommands(script: string): boolean {
  let i = 0;
  const n = script.length;
  const skipSpace = (): void => {
    while (i < n && /[ \t]/.test(script[i]!)) i++;
  };
  const toEndOfLine = (): void => {
    while (i < n && script[i] !== '\n') i++;
  };
  /** A delimited part (`/re/`, `\cREc`, the halves of `s` and `y`); false when unterminated. */
  const delimited = (delimiter: string): boolean => {
    for (; i < n; i++) {
      const c = script[i];
      if (c === '\\') i++;
      else if (c === delimiter) {
        i++;
        return true;
      } else if (c === '\n' && delimiter !== '\n') return false;
    }
    return false;
  };
  const address = (): boolean => {
    const c = script[i];
    if (c === undefined) return true;
    if (/[0-9]/.test(c)) {
      while (i < n && /[0-9~]/.test(script[i]!)) i++;
    } else if (c === '$') i++;
    else if (c === '/' || c === '\\') {
      const delimiter = c === '/' ? '/' : script[++i];
      if (delimiter === undefined || delimiter === '\n') return false;
      i++;
      if (!delimited(delimiter)) return false;
      while (i < n && /[IM]/.test(script[i]!)) i++;
    }
    return true;
  };
  while (i < n) {
    while (i < n && /[\s;]/.test(script[i]!)) i++;
    if (i >= n) return false;
    if (script[i] === '#') {
      toEndOfLine();
      continue;
    }
    if (!address()) return true;
    skipSpace();
    if (script[i] === ',') {
      i++;
      skipSpace();
      if (script[i] === '+' || script[i] === '~') {
        i++;
        while (i < n && /[0-9]/.test(script[i]!)) i++;
      } else if (!address()) return true;
    }
    skipSpace();
    while (script[i] === '!') {
      i++;
      skipSpace();
    }
    const command = script[i++];
    if (command === undefined) return true; // an address without a command
    if (command === 'e') return true;
    if (command === '{' || command === '}') continue;
    if (SIMPLE.has(command)) continue;
    if (OPTIONAL_NUMBER.has(command)) {
      skipSpace();
      while (i < n && /[0-9]/.test(script[i]!)) i++;
      continue;
    }
    if (FILE_NAME.has(command)) {
      toEndOfLine(); // a file name runs to the end of the line, `;` included
      continue;
    }
    if (LABEL.has(command)) {
      // GNU sed (compile.c read_label) ends a label at whitespace or `;`.
      skipSpace();
      while (i < n && !/[\s;]/.test(script[i]!)) i++;
      continue;
    }
    if (TEXT.has(command)) {
      // `a text`, `a\` newline text; a backslash at the end of a line continues the text.
      for (; i < n; i++) {
        if (script[i] === '\\') i++;
        else if (script[i] === '\n') break;
      }
      continue;
    }
    if (command === 's' || command === 'y') {
      const delimiter = script[i++];
      if (delimiter === undefined || delimiter === '\n' || delimiter === '\\') return true;
      if (!delimited(delimiter) || !delimited(delimiter)) return true;
      if (command === 'y') continue;
      // Flags: g p i I m M e, a number, or `w file` (to the end of the line).
      for (; i < n; i++) {
        const flag = script[i]!;
        if (flag === 'e') return true;
        if (flag === 'w') {
          toEndOfLine();
          break;
        }
        if (!/[gpiImM0-9]/.test(flag)) break;
      }
      continue;
    }
    return true; // not a command this reader knows: count it as running something
  }
  return false;
}
