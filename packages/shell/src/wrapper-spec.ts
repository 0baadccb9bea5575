/**
 * How a wrapper's own options and operands are read up to the command it runs (wrappers.ts, subcommand-wrappers.ts),
 * and the specs both tables share.
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

/** `npx` and the `npm exec` / `npm x` subcommands. */
export const NPX: WrapperSpec = {
  valueLetters: 'pw',
  flagLetters: 'yq',
  valueLongs: ['--package', '--workspace'],
  flagLongs: ['--yes', '--no', '--quiet', '--workspaces', '--include-workspace-root'],
  shellStringLetters: 'c',
  shellStringLongs: ['--call'],
};

/** Package managers' "run this command in the project's environment" forms: no options of their own we rely on. */
export const RUNNER: WrapperSpec = {};
