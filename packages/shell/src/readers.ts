/**
 * Readers for programs whose command-running arguments need more than an option table: tar (old-style option
 * clusters), vi and less (`+command` arguments), zip (two-letter options), socat (addresses), cmake (`-E env`),
 * capsh (`--` hands the rest to bash). The table of which program gets which reader is in analyze.ts.
 */
import { awkRunsCommands, readAwk } from './awk.js';
import type { CommandSink, ProgramReader } from './execution.js';
import { readGit } from './git.js';
import { attachedWord, scanArguments, type OptionMeaning } from './options.js';
import { readMosh, readScp, readSftp, readSsh, readSshfs } from './remote.js';
import { readSed } from './sed.js';
import type { ResolvedWord } from './words.js';

const TAR_OPTIONS: Readonly<Record<string, OptionMeaning>> = {
  '-I': 'shell',
  '--use-compress-program': 'shell',
  '--to-command': 'shell',
  '--checkpoint-action': 'checkpoint',
  '--checkpoint': 'attached',
  '-F': 'shell',
  '--info-script': 'shell',
  '--new-volume-script': 'shell',
  '--rsh-command': 'shell',
  '--rmt-command': 'shell',
  '-f': 'value',
  '--file': 'value',
  '-C': 'value',
  '--directory': 'value',
  '-T': 'value',
  '--files-from': 'value',
  '-X': 'value',
  '--exclude-from': 'value',
  '-b': 'value',
  '--blocking-factor': 'value',
  '-L': 'value',
  '--tape-length': 'value',
  '-N': 'value',
  '--newer': 'value',
  '--after-date': 'value',
  '-K': 'value',
  '--starting-file': 'value',
  '-V': 'value',
  '--label': 'value',
  '-H': 'value',
  '--format': 'value',
  '-g': 'value',
  '--listed-incremental': 'value',
  '--exclude': 'value',
  '--transform': 'value',
  '--xform': 'value',
  '--owner': 'value',
  '--group': 'value',
  '--mode': 'value',
  '--mtime': 'value',
  '--strip-components': 'value',
  '--suffix': 'value',
  '--record-size': 'value',
};
/** Letters of an old-style cluster (`tar xvfI a.tar CMD`) that take the next unused word as their value. */
const TAR_VALUE_LETTERS = 'fCTXbLNKVHgIF';

/** GNU tar: options that run a command (`--to-command`, `-I`, `--checkpoint-action=exec=`, `-F`, …). */
const readTar: ProgramReader = (words, sink) => {
  let argv = words;
  const first = words[1];
  if (first !== undefined && !first.dynamic && /^[A-Za-z]+$/.test(first.value)) {
    // Old-style: the letters of the first word are options; those taking a value take the next words in order.
    const expanded: ResolvedWord[] = [words[0]!];
    let next = 2;
    for (const letter of first.value) {
      expanded.push(attachedWord(first, `-${letter}`));
      if (TAR_VALUE_LETTERS.includes(letter) && next < words.length) expanded.push(words[next++]!);
    }
    argv = [...expanded, ...words.slice(next)];
  }
  const scanned = scanArguments(argv, { options: TAR_OPTIONS });
  if (scanned.unknowable) return sink.unknown();
  for (const option of scanned.found) {
    const value = option.value;
    if (value === undefined) continue;
    if (option.meaning === 'shell') sink.shell(value);
    if (option.meaning === 'checkpoint' && /^exec=/.test(value.value)) {
      sink.shell(attachedWord(value, value.value.slice('exec='.length)));
    }
  }
};

/** `+`, `+NUM`, `+/pattern`, `+?pattern`: positions; any other `+command` is a command of the program. */
function harmlessPlus(text: string): boolean {
  return /^\+\+?(\d*|[gGF]|\d+[%pP]|[/?][^\x00-\x1f]*)$/.test(text);
}

/**
 * vi, vim, nvim and their names: ex commands given with `-c`, `--cmd` or `+cmd` (`:!`, `:py`, `:lua`, …), ex mode
 * (`-e`, `-E`, `-es`) reading commands from stdin, and `--remote-send`/`--remote-expr` to another instance.
 */
const readVi: ProgramReader = (words, sink) => {
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    const text = word.value;
    if (text === '--') return;
    if (word.dynamic) {
      if (/^[-+$`]/.test(text) || word.splits) return sink.unknown();
      continue;
    }
    if (text.startsWith('+')) {
      if (!harmlessPlus(text)) return sink.unknown();
      continue;
    }
    if (text === '--cmd' || text === '--remote-send' || text === '--remote-expr') return sink.unknown();
    if (text.startsWith('--')) {
      if (['--startuptime', '--servername', '--listen', '--log'].includes(text)) index++;
      continue;
    }
    if (!text.startsWith('-') || text === '-') continue;
    for (let i = 1; i < text.length; i++) {
      const letter = text[i]!;
      if (letter === 'c' || letter === 'e' || letter === 'E') return sink.unknown();
      // Options that must take a value: the rest of the word, or the next word. Options whose value is
      // optional (-r, -q, -S) are not listed: reading the next word as theirs could hide a -c after them.
      if ('TtiuUwWs'.includes(letter)) {
        if (i === text.length - 1) index++;
        break;
      }
      if ('oOpV'.includes(letter)) break; // -o[N], -V[N][file]: attached only
    }
  }
};

/** less: `+command` (run at start, `!` included), and `-p`/`--pattern` whose text is read as keystrokes. */
const readLess: ProgramReader = (words, sink) => {
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    const text = word.value;
    if (text === '--') return;
    if (word.dynamic) {
      if (/^[-+$`]/.test(text) || word.splits) return sink.unknown();
      continue;
    }
    if (text.startsWith('+')) {
      if (!harmlessPlus(text)) return sink.unknown();
      continue;
    }
    let pattern: string | undefined;
    if (text.startsWith('--pattern=')) pattern = text.slice('--pattern='.length);
    else if (text === '--pattern') pattern = words[++index]?.value;
    else if (/^-[^-]/.test(text)) {
      // In a cluster the first letter that takes a value takes the rest, or the next word.
      const at = text.slice(1).search(/[bhjkoOpPtTxyz#]/);
      if (at !== -1 && text[at + 1] === 'p') pattern = text.slice(at + 2) || words[++index]?.value;
      else if (at !== -1 && at + 2 === text.length) index++;
    }
    if (pattern !== undefined && /[\x00-\x1f]/.test(pattern)) return sink.unknown();
  }
};

/** zip: `-TT cmd` / `--unzip-command cmd` tests the archive by running cmd through the shell. */
const readZip: ProgramReader = (words, sink) => {
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    const text = word.value;
    if (word.dynamic) {
      if (/^[-$`]/.test(text) || word.splits) return sink.unknown();
      continue;
    }
    // zip accepts unique abbreviations of long options: `--unz…` can only be --unzip-command.
    const long = /^--unz[a-z-]*(=|$)/.exec(text);
    const tt = /^-[A-Za-z]*TT/.exec(text);
    if (long === null && tt === null) continue;
    const attached = long ? text.slice(long[0].length) : text.slice(tt![0].length).replace(/^=/, '');
    const value = attached !== '' ? attachedWord(word, attached) : words[++index];
    if (value !== undefined) sink.shell(value);
  }
};

/** socat: `EXEC:prog args`, `SYSTEM:cmd` and `SHELL:cmd` addresses run a command (options follow a comma). */
const readSocat: ProgramReader = (words, sink) => {
  for (const word of words.slice(1)) {
    const match = /^(exec|system|shell):/i.exec(word.value);
    if (word.dynamic && (match !== null || /^[$`]/.test(word.value) || word.splits)) return sink.unknown();
    if (match === null) continue;
    const address = word.value.slice(match[0].length);
    // Quoting and escapes inside addresses (socat ≥ 1.8) are not read here: such an address is unknown.
    if (/["'\\]/.test(address)) return sink.unknown();
    const command = address.split(',')[0] ?? '';
    if (command.trim() !== '') sink.shell(attachedWord(word, command));
  }
};

/** cmake: `-E env [NAME=VALUE…] cmd`, `-E time cmd`, `-E chdir DIR cmd` run cmd. */
const readCmake: ProgramReader = (words, sink) => {
  const e = words.findIndex((w, i) => i > 0 && w.value === '-E');
  if (e === -1) return;
  const tool = words[e + 1];
  if (tool === undefined) return;
  if (tool.dynamic) return sink.unknown();
  let from = e + 2;
  if (tool.value === 'chdir') from++;
  else if (tool.value === 'env') {
    while (from < words.length && /^(-|[A-Za-z_][A-Za-z0-9_]*=)/.test(words[from]!.value)) {
      if (words[from]!.value === '--') {
        from++;
        break;
      }
      if (words[from]!.value === '--modify') from++;
      from++;
    }
  } else if (tool.value !== 'time') return;
  const command = words.slice(from);
  if (command.length > 0) sink.command(command);
};

/** capsh: the words after `--` are handed to `/bin/bash` (or `--shell=`); `==` runs capsh again. */
const readCapsh: ProgramReader = (words, sink) => {
  let shellProgram = '/bin/bash';
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    if (word.dynamic) return sink.unknown();
    if (word.value === '==') return sink.unknown();
    if (word.value.startsWith('--shell=')) shellProgram = word.value.slice('--shell='.length);
    if (word.value === '--') {
      sink.command([attachedWord(word, shellProgram), ...words.slice(index + 1)]);
      return;
    }
  }
};

export const READERS: ReadonlyMap<string, ProgramReader> = new Map<string, ProgramReader>([
  ['awk', readAwk],
  ['sed', readSed],
  ['git', readGit],
  ['tar', readTar],
  ['ssh', readSsh],
  ['autossh', readSsh],
  ['scp', readScp],
  ['sftp', readSftp],
  ['sshfs', readSshfs],
  ['mosh', readMosh],
  ['vi', readVi],
  ['less', readLess],
  ['zip', readZip],
  ['socat', readSocat],
  ['cmake', readCmake],
  ['capsh', readCapsh],
]);

/** Names that read as one of the readers above. */
const READER_ALIASES: readonly (readonly [RegExp, string])[] = [
  [/^(g|m|n|original-|go|busybox-)?awk$/, 'awk'],
  [/^(g|busybox-)?sed$/, 'sed'],
  [/^(bsd|g)?tar$/, 'tar'],
  [
    /^(vim?|nvim|gvim|evim|view|rview|rvim|vimdiff|gview|eview|vimx|vim\.(basic|tiny|nox|gtk3?)|nvi|elvis)$/,
    'vi',
  ],
];

export function programReader(program: string): ProgramReader | undefined {
  const direct = READERS.get(program);
  if (direct !== undefined) return direct;
  for (const [pattern, name] of READER_ALIASES) if (pattern.test(program)) return READERS.get(name);
  return undefined;
}

export { awkRunsCommands };
export type { CommandSink };
