/**
 * Environment variables whose value programs run later: pagers and editors (`PAGER=… git log`, GTFOBins' git and
 * crash entries), `LESSOPEN` (less), ssh commands for git and rsync, password and proxy commands, and variables
 * that load libraries or code into any program (`LD_PRELOAD`, `PERL5DB`, `GCONV_PATH`). Set in front of a
 * command, with `export`/`declare`, or through `env NAME=value`: a command line is analysed, a library or code
 * counts as unknown. (`PROMPT_COMMAND`, the prompts and `BASH_ENV`/`ENV` are bash's own: assignments.ts.)
 */
import type { CommandSink } from './execution.js';
import type { ResolvedWord } from './words.js';

type Judgement = 'shell' | 'program' | 'lessopen' | 'unknown' | 'git-config-key' | 'function' | RegExp;

const SHELL_VARIABLES = [
  'PAGER',
  'MANPAGER',
  'GIT_PAGER',
  'SYSTEMD_PAGER',
  'PSQL_PAGER',
  'CRASHPAGER',
  'BAT_PAGER',
  'AWS_PAGER',
  'GH_PAGER',
  'EDITOR',
  'VISUAL',
  'GIT_EDITOR',
  'GIT_SEQUENCE_EDITOR',
  'SYSTEMD_EDITOR',
  'SUDO_EDITOR',
  'FCEDIT',
  'PSQL_EDITOR',
  'KUBE_EDITOR',
  'GIT_SSH_COMMAND',
  'GIT_PROXY_COMMAND',
  'GIT_EXTERNAL_DIFF',
  'RSYNC_RSH',
  'CVS_RSH',
  'BORG_RSH',
  'BORG_PASSCOMMAND',
  'RESTIC_PASSWORD_COMMAND',
  'BROWSER',
  'FZF_DEFAULT_COMMAND',
  'LESSCLOSE',
];

/** Variables naming one program, run with arguments of the caller's choosing (`SHELL`, `GIT_SSH`). */
const PROGRAM_VARIABLES = [
  'SHELL',
  'GIT_SSH',
  'GIT_ASKPASS',
  'SSH_ASKPASS',
  'SUDO_ASKPASS',
  'AUTOM4TE',
  'AUTOCONF',
  'AUTOHEADER',
  'M4',
];

const VARIABLES: ReadonlyMap<string, Judgement> = new Map<string, Judgement>([
  ...SHELL_VARIABLES.map((name) => [name, 'shell'] as const),
  ...PROGRAM_VARIABLES.map((name) => [name, 'program'] as const),
  ['LESSOPEN', 'lessopen'],
  // Libraries loaded into every program, or code run by an interpreter before anything else.
  ['LD_PRELOAD', 'unknown'],
  ['LD_AUDIT', 'unknown'],
  ['LD_LIBRARY_PATH', 'unknown'],
  ['GCONV_PATH', 'unknown'],
  ['PERL5DB', 'unknown'],
  ['PERL5OPT', 'unknown'],
  ['GIT_EXEC_PATH', 'unknown'],
  ['GIT_TEMPLATE_DIR', 'unknown'],
  ['GIT_CONFIG_PARAMETERS', 'unknown'],
  ['GROFF_BIN_PATH', 'unknown'],
  ['VIMINIT', 'unknown'],
  ['EXINIT', 'unknown'],
  // Options of other programs that can carry a command.
  ['NODE_OPTIONS', /data:/],
  ['JAVA_TOOL_OPTIONS', /-(agentpath|agentlib|javaagent)/],
  ['_JAVA_OPTIONS', /-(agentpath|agentlib|javaagent)/],
  ['JDK_JAVA_OPTIONS', /-(agentpath|agentlib|javaagent)/],
  [
    'TAR_OPTIONS',
    /checkpoint-action|to-command|use-compress|info-script|volume-script|rsh-command|rmt-command|(^|\s)-[A-Za-z]*[IF]/,
  ],
  ['MAKEFLAGS', /--eval|(^|\s)-[A-Za-z]*E/],
  ['FZF_DEFAULT_OPTS', /--(bind|preview|listen|with-shell)/],
  ['MANOPT', /-[A-Za-z]*[PH]|--(pager|html)/],
  ['LESS', /(^|\s)\+|!/],
  // `extdebug` at bash's start-up makes it source the debugger's start file (`bash --debugger`) first.
  ['BASHOPTS', /(^|:)extdebug(:|$)/],
]);

function judgementOf(name: string): Judgement | undefined {
  const direct = VARIABLES.get(name);
  if (direct !== undefined) return direct;
  if (/^GIT_CONFIG_KEY_\d+$/.test(name)) return 'git-config-key';
  // bash imports `BASH_FUNC_name%%=() { body; }` from its environment as a function named `name` (older
  // shellshock-patched builds: `BASH_FUNC_name()`), which then runs in place of the program of that name.
  if (/^BASH_FUNC_.+(%%|\(\))$/.test(name)) return 'function';
  return undefined;
}

/** Whether assigning this variable can matter; callers skip the rest otherwise. */
export function isCommandVariable(name: string): boolean {
  return judgementOf(name) !== undefined;
}

/**
 * Judge `NAME=value`. `value` undefined: its value cannot be read (an array assignment); `isGitExecKey` tells
 * whether a git configuration key runs a command (git.ts).
 */
export function judgeAssignment(
  name: string,
  value: ResolvedWord | undefined,
  sink: CommandSink,
  isGitExecKey: (key: string) => boolean,
): void {
  const judgement = judgementOf(name);
  if (judgement === undefined) return;
  if (value === undefined || value.dynamic) return sink.unknown();
  const text = value.value;
  if (text.trim() === '') return;
  if (judgement === 'unknown') return sink.unknown();
  if (judgement === 'git-config-key') {
    if (isGitExecKey(text)) sink.unknown();
    return;
  }
  if (judgement instanceof RegExp) {
    if (judgement.test(text)) sink.unknown();
    return;
  }
  if (judgement === 'program') return sink.program(value);
  if (judgement === 'function') return sink.shell({ ...value, value: `agentgate_imported_function ${text}` });
  if (judgement === 'lessopen') {
    // `|cmd %s` and `||cmd %s` pipe through cmd; a leading `-` also passes stdin; else cmd names a file.
    return sink.shell({ ...value, value: text.replace(/^\|?\|?-?/, '') });
  }
  sink.shell(value);
}
