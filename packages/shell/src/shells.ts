/** Shells, and the shell builtins that run other shell code. */

/** Shells: `-c STRING` runs STRING; a script operand or stdin runs code we cannot see. */
export const SHELLS: ReadonlySet<string> = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'ksh',
  'ksh93',
  'mksh',
  'oksh',
  'loksh',
  'ash',
  'yash',
  'posh',
  'rbash',
  'lksh',
  'pdksh',
  'fish',
  'csh',
  'tcsh',
  'sash',
  'rc',
  'mrsh',
  'osh',
]);

export interface ShellSpec {
  readonly codeLetters: string;
  readonly valueLetters: string;
  readonly valueLongs: readonly string[];
}

export const SHELL_SPEC: ShellSpec = {
  codeLetters: 'c',
  valueLetters: 'oO',
  valueLongs: ['--rcfile', '--init-file'],
};

/** Builtins that run their string arguments as shell code. */
export const EVALUATORS: ReadonlySet<string> = new Set(['eval']);
/** Builtins that run a file's contents as shell code. */
export const SOURCERS: ReadonlySet<string> = new Set(['source', '.']);
