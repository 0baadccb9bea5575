/**
 * Programs whose arguments end with a command they run ("wrappers"): where that command starts, following the
 * options of their man pages (GNU coreutils, util-linux, sudo, findutils, procps, and the tools GTFOBins lists).
 * Options that take a value are listed so that the value is not mistaken for the command (`sudo -u root rm`,
 * `timeout -s KILL 5 rm`); flags are listed so that an option missing from both lists is noticed: from there on
 * every later word counts as a possible start of the command (`bwrap --bind / / rm x` runs rm, whatever the
 * grammar), so an option we do not know can hide nothing.
 */

export interface WrapperSpec {
  /** Short option letters that take a value (attached `-uroot` or as the next word `-u root`). */
  readonly valueLetters?: string;
  /** Short option letters whose value may only be attached (`xargs -i{}`): the rest of the cluster. */
  readonly attachedValueLetters?: string;
  /** Short option letters that take no value. */
  readonly flagLetters?: string;
  /** Long options that take a value when not written `--opt=value`. */
  readonly valueLongs?: readonly string[];
  /** Long options that take no value (or only an attached `--opt=value`). */
  readonly flagLongs?: readonly string[];
  /** Every long option takes its value attached only (`valgrind --tool=x`), so none swallows the next word. */
  readonly longsAttachedOnly?: boolean;
  /** `-5` is an option with its value (`nice -5 cmd`). */
  readonly numericOption?: boolean;
  /** Option letters / long options with which the wrapper runs no command (`command -v rm` only prints). */
  readonly noCommandLetters?: string;
  readonly noCommandLongs?: readonly string[];
  /** Option letters / long options whose value is shell code (`su -c 'cmd'`, `flock f -c 'cmd'`). */
  readonly shellStringLetters?: string;
  readonly shellStringLongs?: readonly string[];
  /** Option letters / long options whose value is split into words and run (`env -S 'prog args'`). */
  readonly splitStringLetters?: string;
  readonly splitStringLongs?: readonly string[];
  /** Options whose value is a library or code the wrapper loads (`ld.so --preload`): the command is unknown. */
  readonly unknownLetters?: string;
  readonly unknownLongs?: readonly string[];
  /** Options that start an interactive shell, whose commands arrive on stdin (`sudo -s`, `systemd-run -S`). */
  readonly interactiveShellLetters?: string;
  readonly interactiveShellLongs?: readonly string[];
  /** Operands before the command (`timeout DURATION cmd`, `chroot NEWROOT cmd`, `taskset MASK cmd`). */
  readonly operandsBefore?: number;
  /** One operand before the command that may be left out (`chrt [prio] cmd`, `setarch [arch] cmd`): both count. */
  readonly optionalOperandBefore?: boolean;
  /** `NAME=value` words before the command are environment settings (`env`, `sudo`). */
  readonly assignments?: boolean;
  /** A lone `-` is an option (`env -`, `sg - group`), not the first operand. */
  readonly loneDash?: boolean;
  /** The wrapper has no options: the first word is the command. */
  readonly noOptions?: boolean;
  /** The remaining words are joined with spaces and run by `sh -c` (`watch`, `sg`). */
  readonly joinAsShell?: boolean;
  /** Option letters that turn `joinAsShell` off (`watch -x`). */
  readonly execLetters?: string;
  /** With no command the wrapper starts an interactive shell, whose commands come from stdin (`chroot DIR`). */
  readonly defaultsToShell?: boolean;
}

const SUDO: WrapperSpec = {
  valueLetters: 'ugpCDrtUTRh',
  flagLetters: 'AbBEHknNPS',
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
  flagLongs: [
    '--askpass',
    '--background',
    '--bell',
    '--preserve-env',
    '--preserve-groups',
    '--set-home',
    '--non-interactive',
    '--stdin',
    '--reset-timestamp',
  ],
  noCommandLetters: 'elvVK',
  noCommandLongs: ['--edit', '--list', '--validate', '--version', '--remove-timestamp', '--help'],
  interactiveShellLetters: 'si',
  interactiveShellLongs: ['--shell', '--login'],
  assignments: true,
};

const NPX: WrapperSpec = {
  valueLetters: 'pw',
  flagLetters: 'yq',
  valueLongs: ['--package', '--workspace'],
  flagLongs: ['--yes', '--no', '--quiet', '--workspaces', '--include-workspace-root'],
  shellStringLetters: 'c',
  shellStringLongs: ['--call'],
};

/** Package managers' "run this command in the project's environment" forms: no options of their own we rely on. */
const RUNNER: WrapperSpec = {};

const SETARCH: WrapperSpec = {
  flagLetters: '3BFLRSTXZv',
  flagLongs: [
    '--uname-2.6',
    '--verbose',
    '--addr-no-randomize',
    '--fdpic-funcptrs',
    '--mmap-page-zero',
    '--addr-compat-layout',
    '--read-implies-exec',
    '--32bit',
    '--short-inode',
    '--whole-seconds',
    '--sticky-timeouts',
    '--3gb',
    '--4gb',
  ],
  defaultsToShell: true,
};

export const WRAPPERS: ReadonlyMap<string, WrapperSpec> = new Map<string, WrapperSpec>([
  ['sudo', SUDO],
  ['doas', { valueLetters: 'u', flagLetters: 'n', noCommandLetters: 'CL', interactiveShellLetters: 's' }],
  [
    'run0',
    {
      valueLetters: 'ugD',
      valueLongs: [
        '--user',
        '--group',
        '--chdir',
        '--setenv',
        '--nice',
        '--property',
        '--description',
        '--slice',
      ],
      flagLongs: ['--no-ask-password', '--machine', '--unit'],
      defaultsToShell: true,
    },
  ],
  [
    'env',
    {
      valueLetters: 'uCa',
      flagLetters: '0iv',
      valueLongs: ['--unset', '--chdir', '--argv0'],
      flagLongs: [
        '--ignore-environment',
        '--null',
        '--debug',
        '--list-signal-handling',
        '--default-signal',
        '--ignore-signal',
        '--block-signal',
      ],
      noCommandLongs: ['--help', '--version'],
      splitStringLetters: 'S',
      splitStringLongs: ['--split-string'],
      assignments: true,
      loneDash: true,
    },
  ],
  [
    'xargs',
    {
      valueLetters: 'adEILnPs',
      attachedValueLetters: 'eil',
      flagLetters: '0optrx',
      valueLongs: [
        '--arg-file',
        '--delimiter',
        '--max-args',
        '--max-procs',
        '--max-chars',
        '--process-slot-var',
      ],
      flagLongs: [
        '--null',
        '--open-tty',
        '--interactive',
        '--no-run-if-empty',
        '--verbose',
        '--exit',
        '--max-lines',
        '--eof',
        '--replace',
      ],
      noCommandLongs: ['--show-limits', '--help', '--version'],
    },
  ],
  ['nice', { valueLetters: 'n', valueLongs: ['--adjustment'], numericOption: true }],
  ['nohup', { noOptions: true }],
  [
    'timeout',
    {
      valueLetters: 'sk',
      flagLetters: 'fpv',
      valueLongs: ['--signal', '--kill-after'],
      flagLongs: ['--foreground', '--preserve-status', '--verbose'],
      operandsBefore: 1,
    },
  ],
  [
    'time',
    {
      valueLetters: 'fo',
      flagLetters: 'apqv',
      valueLongs: ['--format', '--output'],
      flagLongs: ['--append', '--portability', '--quiet', '--verbose'],
    },
  ],
  ['exec', { valueLetters: 'a', flagLetters: 'cl' }],
  ['command', { noCommandLetters: 'vV', flagLetters: 'p' }],
  ['builtin', { noOptions: true }],
  ['stdbuf', { valueLetters: 'ioe', valueLongs: ['--input', '--output', '--error'] }],
  [
    'chroot',
    {
      valueLongs: ['--userspec', '--groups'],
      flagLongs: ['--skip-chdir'],
      operandsBefore: 1,
      defaultsToShell: true,
    },
  ],
  [
    'ionice',
    {
      valueLetters: 'cn',
      flagLetters: 't',
      noCommandLetters: 'pPu',
      valueLongs: ['--class', '--classdata'],
      flagLongs: ['--ignore'],
      noCommandLongs: ['--pid', '--pgid', '--uid'],
    },
  ],
  ['setsid', { flagLetters: 'cfw', flagLongs: ['--ctty', '--fork', '--wait'] }],
  [
    'taskset',
    {
      flagLetters: 'ac',
      noCommandLetters: 'p',
      flagLongs: ['--all-tasks', '--cpu-list'],
      noCommandLongs: ['--pid'],
      operandsBefore: 1,
    },
  ],
  [
    'flock',
    {
      valueLetters: 'wE',
      flagLetters: 'sxnuFeo',
      valueLongs: ['--timeout', '--wait', '--conflict-exit-code'],
      flagLongs: [
        '--shared',
        '--exclusive',
        '--nonblock',
        '--nb',
        '--unlock',
        '--close',
        '--no-fork',
        '--verbose',
      ],
      shellStringLetters: 'c',
      shellStringLongs: ['--command'],
      operandsBefore: 1,
    },
  ],
  [
    'runuser',
    {
      valueLetters: 'ugGsw',
      flagLetters: 'lmpPf',
      valueLongs: ['--user', '--group', '--supp-group', '--shell', '--whitelist-environment'],
      flagLongs: ['--login', '--preserve-environment', '--pty'],
      shellStringLetters: 'c',
      shellStringLongs: ['--command', '--session-command'],
    },
  ],
  [
    'watch',
    {
      valueLetters: 'nq',
      attachedValueLetters: 'd',
      flagLetters: 'bcCeghprtw',
      valueLongs: ['--interval', '--equexit'],
      flagLongs: [
        '--beep',
        '--color',
        '--no-color',
        '--errexit',
        '--chgexit',
        '--precise',
        '--no-title',
        '--no-wrap',
        '--no-rerun',
        '--differences',
      ],
      joinAsShell: true,
      execLetters: 'x',
    },
  ],
  ['strace', { valueLetters: 'abeEIoOpPsSuUX', flagLetters: 'cCdDfFhikKnNqrtTvVwxyYzZ' }],
  ['ltrace', { valueLetters: 'aeEilnopsuwxAD', flagLetters: 'bcCfhLrStTV' }],
  ['unbuffer', { flagLetters: 'p' }],
  ['busybox', { noOptions: true }],
  ['caffeinate', { valueLetters: 'tw', flagLetters: 'dimsu' }],
  ['catchsegv', { noOptions: true }],
  ['eatmydata', { noOptions: true }],
  ['nocache', { noOptions: true }],
  ['chronic', { flagLetters: 'ev' }],
  ['torify', { noOptions: true }],
  ['torsocks', { valueLetters: 'upaP', flagLetters: 'iqd6h', interactiveShellLongs: ['--shell'] }],
  [
    'nsenter',
    {
      valueLetters: 'tSG',
      attachedValueLetters: 'mutinpUCTrw',
      flagLetters: 'FZae',
      valueLongs: ['--target', '--setuid', '--setgid'],
      flagLongs: [
        '--mount',
        '--uts',
        '--ipc',
        '--net',
        '--pid',
        '--cgroup',
        '--user',
        '--time',
        '--root',
        '--wd',
        '--all',
        '--no-fork',
        '--preserve-credentials',
        '--follow-context',
        '--env',
        '--user-parent',
        '--keep-caps',
      ],
      defaultsToShell: true,
    },
  ],
  [
    'unshare',
    {
      valueLetters: 'SGRw',
      attachedValueLetters: 'muinpUCT',
      flagLetters: 'fcr',
      valueLongs: [
        '--setuid',
        '--setgid',
        '--root',
        '--wd',
        '--propagation',
        '--setgroups',
        '--map-user',
        '--map-group',
        '--map-users',
        '--map-groups',
        '--load-interp',
        '--monotonic',
        '--boottime',
      ],
      flagLongs: [
        '--mount',
        '--uts',
        '--ipc',
        '--net',
        '--pid',
        '--user',
        '--cgroup',
        '--time',
        '--fork',
        '--kill-child',
        '--mount-proc',
        '--map-root-user',
        '--map-current-user',
        '--map-auto',
        '--keep-caps',
      ],
      defaultsToShell: true,
    },
  ],
  [
    'aa-exec',
    {
      valueLetters: 'pn',
      flagLetters: 'ivd',
      valueLongs: ['--profile', '--namespace'],
      flagLongs: ['--immediate', '--verbose', '--debug'],
    },
  ],
  ['aoss', { noOptions: true }],
  [
    'choom',
    { valueLetters: 'n', noCommandLetters: 'p', valueLongs: ['--adjust'], noCommandLongs: ['--pid'] },
  ],
  [
    'chrt',
    {
      valueLetters: 'TPD',
      flagLetters: 'abdefiorRv',
      noCommandLetters: 'mp',
      valueLongs: ['--sched-runtime', '--sched-period', '--sched-deadline'],
      flagLongs: [
        '--all-tasks',
        '--batch',
        '--deadline',
        '--ext',
        '--fifo',
        '--idle',
        '--other',
        '--rr',
        '--reset-on-fork',
        '--verbose',
      ],
      noCommandLongs: ['--max', '--pid'],
      optionalOperandBefore: true,
    },
  ],
  ['cpulimit', { valueLetters: 'lpeP', flagLetters: 'fkbqvzir' }],
  ['firejail', { longsAttachedOnly: true, defaultsToShell: true }],
  ['logsave', { flagLetters: 'asv', operandsBefore: 1 }],
  ['multitime', { valueLetters: 'nsio', flagLetters: 'qlv' }],
  [
    'pkexec',
    {
      valueLongs: ['--user'],
      flagLongs: ['--disable-internal-agent', '--keep-cwd'],
      noCommandLongs: ['--help', '--version'],
      defaultsToShell: true,
    },
  ],
  [
    'rlwrap',
    {
      valueLetters: 'bCDeEfFgHlMOPqsStw',
      attachedValueLetters: 'apm',
      flagLetters: 'AchiInNoRrUvW',
      shellStringLetters: 'z',
    },
  ],
  ['setarch', { ...SETARCH, optionalOperandBefore: true }],
  ['linux32', SETARCH],
  ['linux64', SETARCH],
  ['i386', SETARCH],
  ['x86_64', SETARCH],
  ['setlock', { flagLetters: 'nNxX', operandsBefore: 1 }],
  ['softlimit', { valueLetters: 'madslfcoptr' }],
  ['sshpass', { valueLetters: 'pfdP', attachedValueLetters: 'e', flagLetters: 'vhV' }],
  ['ssh-agent', { valueLetters: 'aEOPt', flagLetters: 'cDdks' }],
  ['valgrind', { longsAttachedOnly: true, flagLetters: 'qvdh' }],
  ['distcc', { noOptions: true }],
  ['grc', { valueLetters: 'c', flagLetters: 'esS', flagLongs: ['--stderr', '--stdout', '--pty'] }],
  [
    'msgfilter',
    { valueLetters: 'iodDw', valueLongs: ['--input', '--directory', '--output-file', '--width'] },
  ],
  ['openvt', { valueLetters: 'cu', flagLetters: 'eflsvwV', defaultsToShell: true }],
  [
    'sg',
    { operandsBefore: 1, shellStringLetters: 'c', joinAsShell: true, defaultsToShell: true, loneDash: true },
  ],
  [
    'systemd-run',
    {
      valueLetters: 'puEMH',
      flagLetters: 'tPqGrd',
      valueLongs: [
        '--property',
        '--unit',
        '--setenv',
        '--machine',
        '--host',
        '--description',
        '--slice',
        '--uid',
        '--gid',
        '--nice',
        '--working-directory',
        '--service-type',
      ],
      flagLongs: [
        '--pty',
        '--pipe',
        '--quiet',
        '--collect',
        '--remain-after-exit',
        '--same-dir',
        '--user',
        '--system',
        '--scope',
        '--wait',
        '--no-block',
        '--send-sighup',
        '--no-ask-password',
      ],
      interactiveShellLetters: 'S',
      interactiveShellLongs: ['--shell'],
    },
  ],
  ['dbus-run-session', { longsAttachedOnly: true }],
  ['dbus-launch', { longsAttachedOnly: true }],
  ['xvfb-run', { valueLetters: 'nsfep', flagLetters: 'ahl' }],
  ['faketime', { flagLetters: 'mf', operandsBefore: 1 }],
  [
    'fakeroot',
    {
      valueLetters: 'sib',
      unknownLetters: 'l',
      unknownLongs: ['--lib'],
      flagLetters: 'u',
      defaultsToShell: true,
    },
  ],
  ['runcon', { valueLetters: 'turl', flagLetters: 'c', optionalOperandBefore: true }],
  ['prlimit', { noCommandLetters: 'p', longsAttachedOnly: true }],
  ['numactl', { longsAttachedOnly: true }],
  ['trickle', { valueLetters: 'udwtlLn', flagLetters: 'vVs' }],
  ['bwrap', {}],
  ['npx', NPX],
  ['pnpx', RUNNER],
  ['bunx', RUNNER],
  ['uvx', RUNNER],
]);

/**
 * The dynamic loader run as a program (`/lib64/ld-linux-x86-64.so.2 prog args`): its name varies with the
 * architecture and C library.
 */
export const DYNAMIC_LOADER: WrapperSpec = {
  valueLongs: [
    '--library-path',
    '--inhibit-rpath',
    '--argv0',
    '--glibc-hwcaps-prefix',
    '--glibc-hwcaps-mask',
  ],
  flagLongs: ['--inhibit-cache'],
  unknownLongs: ['--audit', '--preload'],
  noCommandLongs: ['--list', '--verify', '--help', '--version', '--list-tunables', '--list-diagnostics'],
};

export function wrapperSpec(program: string): WrapperSpec | undefined {
  const direct = WRAPPERS.get(program);
  if (direct) return direct;
  if (/^ld(-linux[\w.-]*|-musl[\w.-]*)?\.so(\.\d+)*$/.test(program)) return DYNAMIC_LOADER;
  return undefined;
}

/**
 * Subcommands that run the command after them (`npm exec rm x`, `perf stat rm x`, `ip netns exec NS rm x`).
 * A subcommand is found wherever it appears among the program's words (not only first), so that global options
 * with values before it cannot hide it.
 */
export const SUBCOMMAND_WRAPPERS: ReadonlyMap<string, readonly (readonly [string, WrapperSpec])[]> = new Map<
  string,
  readonly (readonly [string, WrapperSpec])[]
>([
  [
    'npm',
    [
      ['exec', NPX],
      ['x', NPX],
    ],
  ],
  [
    'pnpm',
    [
      ['exec', RUNNER],
      ['dlx', RUNNER],
    ],
  ],
  [
    'yarn',
    [
      ['exec', RUNNER],
      ['dlx', RUNNER],
    ],
  ],
  ['bun', [['x', RUNNER]]],
  [
    'uv',
    [
      ['run', RUNNER],
      ['tool run', RUNNER],
    ],
  ],
  ['pipx', [['run', RUNNER]]],
  ['poetry', [['run', RUNNER]]],
  ['pdm', [['run', RUNNER]]],
  ['hatch', [['run', RUNNER]]],
  ['conda', [['run', RUNNER]]],
  ['mamba', [['run', RUNNER]]],
  ['micromamba', [['run', RUNNER]]],
  ['bundle', [['exec', RUNNER]]],
  ['cabal', [['exec', RUNNER]]],
  ['stack', [['exec', RUNNER]]],
  ['rbenv', [['exec', RUNNER]]],
  ['pyenv', [['exec', RUNNER]]],
  ['nodenv', [['exec', RUNNER]]],
  ['asdf', [['exec', RUNNER]]],
  [
    'mise',
    [
      ['exec', RUNNER],
      ['x', RUNNER],
    ],
  ],
  ['direnv', [['exec', { operandsBefore: 1 }]]],
  ['rustup', [['run', { operandsBefore: 1 }]]],
  ['xdotool', [['exec', { flagLongs: ['--sync'] }]]],
  ['nix', [['develop', { shellStringLongs: ['--command'], shellStringLetters: 'c' }]]],
  [
    'ip',
    [
      ['netns exec', { optionalOperandBefore: true }],
      ['vrf exec', { operandsBefore: 1 }],
    ],
  ],
  [
    'perf',
    [
      ['stat', RUNNER],
      ['record', RUNNER],
      ['trace', RUNNER],
      ['sched record', RUNNER],
      ['lock record', RUNNER],
      ['mem record', RUNNER],
      ['c2c record', RUNNER],
      ['kmem record', RUNNER],
      ['kvm record', RUNNER],
      ['ftrace', RUNNER],
    ],
  ],
  ['git', [['bisect run', RUNNER]]],
]);

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
