/**
 * How programs run other programs or code, as data: for every binary the GTFOBins catalogue lists with a `shell`,
 * `command`, `reverse-shell`, `bind-shell`, `library-load` or `inherit` function (GTFOBins/GTFOBins.github.io,
 * `_gtfobins/*.md`, read in 2025), the option or argument through which it does so, and the class that decides
 * what the analyser makes of it (packages/shell/README.md). Only facts are taken from GTFOBins (program names,
 * option names, which function a program has); the table, its classes and their wording are ours. A few widely
 * used programs GTFOBins does not list (Rscript, deno, ipython, sbcl, …) are classified the same way.
 *
 * Classes:
 * - `interpreter`: code given inline (`-c`, `-e`) or read from stdin is unknown; a script file is the program.
 * - `commands`: reads its own commands, which have a shell escape (`psql` `\!`, `ftp` `!`), from stdin: unknown
 *   unless they are given inline (checked for the escape) or from a file.
 * - `options`: named options or arguments run a command line (analysed as shell code) or code (unknown).
 * - `always`: its purpose is to run programs or a shell it chooses (debuggers, multiplexers, agents): unknown.
 * - `interactive`: runs commands only from keystrokes at a terminal (pagers, full-screen editors): the program.
 * - `files`: runs what files, configuration or packages say (make, package managers): the program.
 * - `container`: runs commands inside containers or on remote agents: the program (see the Docker listener).
 * - `handler`: read by a dedicated reader (awk, sed, git, tar, ssh and family, vi, less, man, zip, socat, …).
 * - `wrapper`: its arguments end with a command: unwrapped (wrappers.ts).
 * - `shell`: a POSIX-like shell: `-c` code is analysed, a script or stdin is unknown.
 * Programs in no class are programs like any other.
 */
import { COMMAND_READERS } from './catalogue/command-readers.js';
import type { ProgramExecution } from './catalogue/entry.js';
import { HANDLERS_AND_WRAPPERS } from './catalogue/handlers-and-wrappers.js';
import { INTERACTIVE_FILES_CONTAINERS } from './catalogue/interactive-files-containers.js';
import { INTERPRETERS } from './catalogue/interpreters.js';
import { OPTION_RUNNERS } from './catalogue/option-runners.js';

export type { ExecutionClass, ProgramExecution } from './catalogue/entry.js';

/** Later rows win, as in the Map constructor. */
export const CATALOGUE: ReadonlyMap<string, ProgramExecution> = new Map<string, ProgramExecution>([
  ...INTERPRETERS,
  ...COMMAND_READERS,
  ...OPTION_RUNNERS,
  ...HANDLERS_AND_WRAPPERS,
  ...INTERACTIVE_FILES_CONTAINERS,
]);

/** Names that are one of the above under another name (versions, distributions' aliases, GTFOBins aliases). */
const ALIASES: readonly (readonly [RegExp, string])[] = [
  [/^python[0-9.]*(-dbg)?$/, 'python'],
  [/^pypy[0-9.]*$/, 'pypy'],
  [/^ipython[0-9.]*$/, 'ipython'],
  [/^perl[0-9.]*$/, 'perl'],
  [/^ruby[0-9.]*$/, 'ruby'],
  [/^(node|nodejs)[0-9.]*$/, 'node'],
  [/^php[0-9.]*(-cli)?$/, 'php'],
  [/^lua[0-9.]*$/, 'lua'],
  [/^luajit[0-9.-]*$/, 'luajit'],
  [/^tclsh[0-9.]*$/, 'tclsh'],
  [/^wish[0-9.]*$/, 'wish'],
  [/^(mariadb|mysql-client)$/, 'mysql'],
  [/^(pip|pip[0-9.]+)$/, 'pip'],
  [/^gem[0-9.]*$/, 'gem'],
  [/^(.*-)?(gcc|g\+\+|cc|c\+\+|c89|c99|clang|clang\+\+)(-[0-9.]+)?$/, 'gcc'],
  [/^(netcat|ncat|nc\.traditional|nc\.openbsd|netcat\.openbsd|netcat\.traditional)$/, 'nc'],
  [/^(s-nail|bsd-mailx|heirloom-mailx|nail)$/, 'mailx'],
  [/^(vim\.basic|vim\.tiny|vim\.nox|vim\.gtk3?|vimx|gview|eview|nvi|elvis)$/, 'vi'],
  [/^(xelatex|xetex)$/, 'xetex'],
  [/^(sqlite)$/, 'sqlite3'],
  [/^pico$/, 'nano'],
  [/^bundler$/, 'bundle'],
];

/** The catalogue entry of a program by its basename, following version suffixes and aliases. */
export function programExecution(program: string): ProgramExecution | undefined {
  const direct = CATALOGUE.get(program);
  if (direct !== undefined) return direct;
  for (const [pattern, name] of ALIASES) if (pattern.test(program)) return CATALOGUE.get(name);
  return undefined;
}
