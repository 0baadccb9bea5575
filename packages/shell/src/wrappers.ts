/**
 * Programs that run another program given in their arguments ("wrappers") and interpreters that run code given in
 * their arguments or read it from stdin. For each, where the inner command starts, following the options of the
 * GNU coreutils / util-linux / sudo / findutils / procps man pages. Options that take a value are listed so that
 * the value is not mistaken for the command (`sudo -u root rm`, `timeout -s KILL 5 rm`).
 *
 * Not unwrapped (documented limits): `parallel` (its `:::` templates), `ssh host cmd` (runs on another host),
 * `nsenter`/`unshare` (option grammar too loose to be sure); those count as the wrapper program only.
 */

export interface WrapperSpec {
  /** Short option letters that take a value (attached `-uroot` or as the next word `-u root`). */
  readonly valueLetters?: string;
  /** Short option letters whose value may only be attached (`xargs -i{}`): the rest of the cluster. */
  readonly attachedValueLetters?: string;
  /** Long options that take a value when not written `--opt=value`. */
  readonly valueLongs?: readonly string[];
  /** Option letters / long options with which the wrapper runs no command (`command -v rm` only prints). */
  readonly noCommandLetters?: string;
  readonly noCommandLongs?: readonly string[];
  /** Option letters / long options whose value is shell code (`su -c 'cmd'`, `flock f -c 'cmd'`). */
  readonly shellStringLetters?: string;
  readonly shellStringLongs?: readonly string[];
  /** Option letters / long options whose value is split into words and run (`env -S 'prog args'`). */
  readonly splitStringLetters?: string;
  readonly splitStringLongs?: readonly string[];
  /** Operands before the command (`timeout DURATION cmd`, `chroot NEWROOT cmd`, `taskset MASK cmd`). */
  readonly operandsBefore?: number;
  /** `NAME=value` words before the command are environment settings (`env`, `sudo`). */
  readonly assignments?: boolean;
  /** Options stop at the first operand (always true here; kept explicit for readers). */
  readonly noOptions?: boolean;
  /** The remaining words are joined with spaces and run by `sh -c` (`watch`). */
  readonly joinAsShell?: boolean;
  /** Option letters that turn `joinAsShell` off (`watch -x`). */
  readonly execLetters?: string;
  /** With no command the wrapper starts an interactive shell, whose commands come from stdin (`chroot DIR`). */
  readonly defaultsToShell?: boolean;
}

export const WRAPPERS: ReadonlyMap<string, WrapperSpec> = new Map<string, WrapperSpec>([
  [
    'sudo',
    {
      valueLetters: 'ugpCDrtUTRh',
      valueLongs: [
        '--user',
        '--group',
        '--prompt',
        '--close-from',
        '--chdir',
        '--role',
        '--type',
        '--other-user',
        '--command-timeout',
        '--chroot',
        '--host',
      ],
      noCommandLetters: 'elvVK',
      noCommandLongs: ['--edit', '--list', '--validate', '--version', '--remove-timestamp'],
      assignments: true,
      defaultsToShell: false,
    },
  ],
  ['doas', { valueLetters: 'uC', assignments: false }],
  [
    'env',
    {
      valueLetters: 'uC',
      valueLongs: ['--unset', '--chdir', '--default-signal', '--ignore-signal', '--block-signal'],
      splitStringLetters: 'S',
      splitStringLongs: ['--split-string'],
      assignments: true,
    },
  ],
  [
    'xargs',
    {
      valueLetters: 'adEILnPs',
      attachedValueLetters: 'eil',
      valueLongs: [
        '--arg-file',
        '--delimiter',
        '--max-lines',
        '--max-args',
        '--max-procs',
        '--max-chars',
        '--process-slot-var',
      ],
    },
  ],
  ['nice', { valueLetters: 'n', valueLongs: ['--adjustment'] }],
  ['nohup', { noOptions: true }],
  ['timeout', { valueLetters: 'sk', valueLongs: ['--signal', '--kill-after'], operandsBefore: 1 }],
  ['time', { valueLetters: 'fo', valueLongs: ['--format', '--output'] }],
  ['exec', { valueLetters: 'a' }],
  ['command', { noCommandLetters: 'vV' }],
  ['builtin', { noOptions: true }],
  ['stdbuf', { valueLetters: 'ioe', valueLongs: ['--input', '--output', '--error'] }],
  ['chroot', { valueLongs: ['--userspec', '--groups'], operandsBefore: 1, defaultsToShell: true }],
  [
    'ionice',
    {
      valueLetters: 'cn',
      noCommandLetters: 'pPu',
      valueLongs: ['--class', '--classdata'],
      noCommandLongs: ['--pid', '--pgid', '--uid'],
    },
  ],
  ['setsid', {}],
  ['taskset', { noCommandLetters: 'p', noCommandLongs: ['--pid'], operandsBefore: 1 }],
  [
    'flock',
    {
      valueLetters: 'wE',
      valueLongs: ['--timeout', '--wait', '--conflict-exit-code'],
      shellStringLetters: 'c',
      shellStringLongs: ['--command'],
      operandsBefore: 1,
    },
  ],
  [
    'su',
    {
      valueLetters: 'sgGw',
      valueLongs: ['--shell', '--group', '--supp-group', '--whitelist-environment'],
      shellStringLetters: 'c',
      shellStringLongs: ['--command', '--session-command'],
      noCommandLetters: '',
    },
  ],
  [
    'runuser',
    {
      valueLetters: 'ugGsw',
      valueLongs: ['--user', '--group', '--supp-group', '--shell'],
      shellStringLetters: 'c',
      shellStringLongs: ['--command', '--session-command'],
    },
  ],
  [
    'watch',
    {
      valueLetters: 'nq',
      attachedValueLetters: 'd',
      valueLongs: ['--interval', '--equexit'],
      joinAsShell: true,
      execLetters: 'x',
    },
  ],
  ['strace', { valueLetters: 'abeEIoOpPsSuUX', noCommandLetters: '' }],
  ['ltrace', { valueLetters: 'aeEilnopsuxAD' }],
  ['unbuffer', { noOptions: true }],
  ['busybox', { noOptions: true }],
  ['caffeinate', {}],
  ['catchsegv', { noOptions: true }],
]);

/** Shells: `-c STRING` runs STRING; a script operand or stdin runs code we cannot see. */
export const SHELLS: ReadonlySet<string> = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'ksh',
  'mksh',
  'ash',
  'yash',
  'posh',
  'rbash',
  'lksh',
  'pdksh',
  'fish',
]);

export const SHELL_SPEC: InterpreterSpec = {
  codeLetters: 'c',
  valueLetters: 'oO',
  valueLongs: ['--rcfile', '--init-file'],
  codeIsShell: true,
  scriptIsOpaque: true,
};

export interface InterpreterSpec {
  /** Option letters whose presence means the code is given in the arguments (`-c`, `-e`). */
  readonly codeLetters: string;
  readonly codeLongs?: readonly string[];
  readonly valueLetters?: string;
  readonly valueLongs?: readonly string[];
  /** The code given with the code option is shell code: analyse it recursively. */
  readonly codeIsShell?: boolean;
  /** A script file operand is as unknown as stdin (shells: `bash script.sh` is `source script.sh`). */
  readonly scriptIsOpaque?: boolean;
}

/** Other interpreters: only the stdin forms (`python`, `python -`, `curl … | perl`) are unknowable here. */
export const INTERPRETERS: ReadonlyMap<string, InterpreterSpec> = new Map<string, InterpreterSpec>([
  ['python', { codeLetters: 'cm', valueLetters: 'WXQ' }],
  ['pypy', { codeLetters: 'cm', valueLetters: 'WXQ' }],
  ['perl', { codeLetters: 'eE', valueLetters: '' }],
  ['ruby', { codeLetters: 'e', valueLetters: 'IrCE' }],
  [
    'node',
    {
      codeLetters: 'ep',
      codeLongs: ['--eval', '--print', '--test'],
      valueLetters: 'r',
      valueLongs: ['--require', '--import', '--loader', '--experimental-loader', '--input-type'],
    },
  ],
  ['php', { codeLetters: 'rfB', valueLetters: 'cdz' }],
  ['lua', { codeLetters: 'e', valueLetters: 'l' }],
  ['tclsh', { codeLetters: '' }],
  ['osascript', { codeLetters: 'e' }],
]);

export function interpreterSpec(program: string): InterpreterSpec | undefined {
  if (SHELLS.has(program)) return SHELL_SPEC;
  const direct = INTERPRETERS.get(program);
  if (direct) return direct;
  // python3, python3.11, pypy3, nodejs, perl5.36, ruby3.1, lua5.4, php8.2
  const family = /^(python|pypy|perl|ruby|lua|php|node)(js)?[0-9.]*$/.exec(program);
  return family ? INTERPRETERS.get(family[1]!) : undefined;
}

/** Builtins that run their string arguments as shell code. */
export const EVALUATORS: ReadonlySet<string> = new Set(['eval']);
/** Builtins that run a file's contents as shell code. */
export const SOURCERS: ReadonlySet<string> = new Set(['source', '.']);
