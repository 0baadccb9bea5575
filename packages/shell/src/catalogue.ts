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
import type { OptionGrammar, OptionMeaning } from './options.js';

export type ExecutionClass =
  | 'interpreter'
  | 'commands'
  | 'options'
  | 'always'
  | 'interactive'
  | 'files'
  | 'container'
  | 'handler'
  | 'wrapper'
  | 'shell';

export interface ProgramExecution extends OptionGrammar {
  readonly class: ExecutionClass;
  /** interpreter, commands: the first operand is a file of code or commands (`-` is stdin). */
  readonly scriptOperand?: boolean;
  /** commands: the operand at this index is inline commands (`sqlite3 DB 'SQL'`), checked with `escape`. */
  readonly inlineOperand?: number;
  /** The operand at this index is a command line run by a shell (`csvtool call CMD`, `task execute CMD`). */
  readonly shellOperand?: number;
  /** commands: a shell escape in inline commands (`\!` in psql, `.shell` in sqlite3). */
  readonly escape?: RegExp;
  /** Any argument matching this makes the program unknown (`ffmpeg -af ladspa=file=lib.so`). */
  readonly unknownArguments?: RegExp;
  /** `setting` options (`-o key=value`): what a key's value is. */
  readonly settings?: (key: string) => 'shell' | 'unknown' | undefined;
  /** Subcommands (a word among the operands) with their own meaning: `R CMD`, `dotnet fsi`, `puppet apply`. */
  readonly subcommands?: Readonly<Record<string, ProgramExecution>>;
}

type Options = Readonly<Record<string, OptionMeaning>>;

const interactive: ProgramExecution = { class: 'interactive' };
const files: ProgramExecution = { class: 'files' };
const container: ProgramExecution = { class: 'container' };
const handler: ProgramExecution = { class: 'handler' };
const wrapper: ProgramExecution = { class: 'wrapper' };
const shell: ProgramExecution = { class: 'shell' };
const always = (options: Options = {}, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'always',
  options,
  ...extra,
});
const withOptions = (options: Options, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'options',
  options,
  ...extra,
});
const interpreter = (options: Options, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'interpreter',
  options,
  scriptOperand: true,
  ...extra,
});
const commands = (options: Options, extra: Partial<ProgramExecution> = {}): ProgramExecution => ({
  class: 'commands',
  options,
  ...extra,
});
const VERSION: Options = { '--version': 'none', '--help': 'none' };

// ---- interpreters --------------------------------------------------------------------------------------------

const PYTHON = interpreter({
  ...VERSION,
  '-c': 'unknown',
  '-m': 'file',
  '-i': 'unknown-flag',
  '-W': 'value',
  '-X': 'value',
  '-Q': 'value',
  '-V': 'none',
  '-h': 'none',
  '--check-hash-based-pycs': 'value',
});
const PERL = interpreter({
  ...VERSION,
  '-e': 'unknown',
  '-E': 'unknown',
  '-M': 'unknown',
  '-m': 'unknown',
  '-I': 'value',
  '-i': 'attached',
  '-l': 'attached',
  '-0': 'attached',
  '-C': 'attached',
  '-d': 'attached',
  '-D': 'attached',
  '-x': 'attached',
  '-F': 'attached',
  '-V': 'attached',
  '-v': 'none',
});
const RUBY = interpreter({
  ...VERSION,
  '-e': 'unknown',
  '-I': 'value',
  '-r': 'value',
  '-C': 'value',
  '-E': 'value',
  '-x': 'attached',
  '-F': 'attached',
  '-0': 'attached',
  '-K': 'attached',
  '-T': 'attached',
  '-W': 'attached',
  '--encoding': 'value',
  '--external-encoding': 'value',
  '--internal-encoding': 'value',
});
const NODE = interpreter({
  ...VERSION,
  '-e': 'unknown',
  '--eval': 'unknown',
  '-p': 'unknown',
  '--print': 'unknown',
  '-i': 'unknown-flag',
  '--interactive': 'unknown-flag',
  '-r': 'module',
  '--require': 'module',
  '--import': 'module',
  '--loader': 'module',
  '--experimental-loader': 'module',
  '-C': 'value',
  '--conditions': 'value',
  '--input-type': 'value',
  '--env-file': 'value',
  '--title': 'value',
  '--test': 'no-stdin',
  '--run': 'file',
  '-c': 'no-stdin',
  '--check': 'no-stdin',
  '-v': 'none',
  '-h': 'none',
});
const LUA = interpreter({
  '-e': 'unknown',
  '-i': 'unknown-flag',
  '-l': 'value',
  '-v': 'none',
  '-b': 'none',
  '-j': 'value',
  '-O': 'attached',
});
const TCL = interpreter({ '-encoding': 'value' }, { singleDashLongs: true });
const PHP = interpreter(
  {
    ...VERSION,
    '-r': 'unknown',
    '-B': 'unknown',
    '-R': 'unknown',
    '-E': 'unknown',
    '-z': 'unknown',
    '-a': 'unknown-flag',
    '-f': 'file',
    '-F': 'file',
    '-S': 'file',
    '-c': 'value',
    '-d': 'value',
    '-t': 'value',
    '-i': 'none',
    '-v': 'none',
    '-m': 'none',
    '-h': 'none',
  },
  { unknownArguments: /(^|^-d)\s*(zend_)?extension\s*=/i },
);

// ---- commands readers: their stdin commands have a shell escape ------------------------------------------------

const SQLITE_ESCAPE =
  /(^|[\n;])\s*\.(sh|shell|system|once|output|import|read|load|excel|edit|open\b[^\n]*\|)|\bload_extension\s*\(|\bedit\s*\(/i;
const PSQL_ESCAPE = /\\!|\\[ogw][a-z]*\s*\||\\copy\b[\s\S]*\bprogram\b|\\e[fv]?\b|\\setenv\b|\\g[a-z]*\s+\|/i;
const MYSQL_ESCAPE = /\\[!Pe]|(^|[\n;])\s*(system|pager|edit)\b/i;

const SSH_SETTINGS = (key: string): 'shell' | 'unknown' | undefined => {
  const k = key.toLowerCase();
  if (k === 'proxycommand' || k === 'localcommand' || k === 'knownhostscommand') return 'shell';
  if (k === 'pkcs11provider' || k === 'securitykeyprovider' || k === 'match') return 'unknown';
  return undefined;
};

/**
 * Keys of `apt-get -o` whose value is a command (`APT::Update::Pre-Invoke`, `DPkg::Post-Invoke`), a program
 * (`Dir::Bin::*`) or a hook.
 */
const APT_SETTINGS = (key: string): 'shell' | 'unknown' | undefined =>
  /invoke|install-pkgs|dir::bin|hook|program|command|helper|pager|editor|methods/i.test(key)
    ? 'unknown'
    : undefined;

const RPM = withOptions(
  { '--eval': 'unknown', '-E': 'unknown', '--pipe': 'shell', '-D': 'value', '--define': 'value' },
  { unknownArguments: /%\(|%\{lua:|%\{\(/ },
);
const TEX = withOptions(
  {
    '-shell-escape': 'unknown-flag',
    '-enable-write18': 'unknown-flag',
  },
  { singleDashLongs: true },
);
const GROFF = withOptions({ '-U': 'unknown-flag' });
const AWK = handler;
const VI = handler;
const SSH_FAMILY = handler;

export const CATALOGUE: ReadonlyMap<string, ProgramExecution> = new Map<string, ProgramExecution>([
  // interpreters
  ['python', PYTHON],
  ['pypy', PYTHON],
  ['ipython', interpreter({ '-c': 'unknown', '-i': 'unknown-flag', '-m': 'file' })],
  ['perl', PERL],
  ['ruby', RUBY],
  ['node', NODE],
  ['php', PHP],
  ['lua', LUA],
  ['luajit', LUA],
  ['tclsh', TCL],
  ['wish', TCL],
  ['jimsh', TCL],
  [
    'expect',
    interpreter({ '-c': 'unknown', '-f': 'file', '-b': 'file', '-i': 'unknown-flag', '-D': 'value' }),
  ],
  ['osascript', interpreter({ '-e': 'unknown', '-l': 'value', '-s': 'value' })],
  [
    'R',
    commands(
      { ...VERSION, '-e': 'unknown', '-f': 'file', '--file': 'file' },
      { subcommands: { CMD: files } },
    ),
  ],
  ['Rscript', interpreter({ ...VERSION, '-e': 'unknown' })],
  [
    'julia',
    interpreter({
      ...VERSION,
      '-e': 'unknown',
      '-E': 'unknown',
      '--eval': 'unknown',
      '--print': 'unknown',
      '-i': 'unknown-flag',
      '-L': 'file',
      '--load': 'file',
      '-J': 'value',
      '--sysimage': 'value',
      '-t': 'value',
      '--threads': 'value',
      '-p': 'value',
      '--procs': 'value',
      '-O': 'attached',
      '-g': 'attached',
    }),
  ],
  ['ghc', withOptions({ '-e': 'unknown', '--interactive': 'unknown-flag' })],
  ['ghci', always()],
  ['runghc', interpreter({})],
  ['runhaskell', interpreter({})],
  [
    'guile',
    interpreter({
      '-c': 'unknown',
      '-s': 'file',
      '-l': 'file',
      '-e': 'value',
      '-L': 'value',
      '-C': 'value',
      '-x': 'value',
    }),
  ],
  [
    'clisp',
    interpreter({ '-x': 'unknown', '-i': 'file', '-c': 'file', '-M': 'value', '-m': 'value', '-B': 'value' }),
  ],
  [
    'sbcl',
    commands(
      {
        '-eval': 'unknown',
        '-load': 'file',
        '-script': 'file',
        '-core': 'value',
        '-dynamic-space-size': 'value',
      },
      { singleDashLongs: true },
    ),
  ],
  ['gnuplot', interpreter({ '-e': 'unknown', '-c': 'file' })],
  [
    'octave',
    interpreter({ '--eval': 'unknown', '-p': 'value', '--path': 'value', '--info-program': 'shell' }),
  ],
  [
    'octave-cli',
    interpreter({ '--eval': 'unknown', '-p': 'value', '--path': 'value', '--info-program': 'shell' }),
  ],
  ['slsh', interpreter({ '-e': 'unknown' })],
  [
    'jrunscript',
    commands({ '-e': 'unknown', '-f': 'file', '-l': 'value', '-cp': 'value' }, { singleDashLongs: true }),
  ],
  ['jjs', interpreter({ '-cp': 'value', '-classpath': 'value' }, { singleDashLongs: true })],
  ['jshell', always()],
  ['groovy', interpreter({ '-e': 'unknown' })],
  ['groovysh', always()],
  ['scala', interpreter({ '-e': 'unknown' })],
  ['elixir', interpreter({ '-e': 'unknown', '--eval': 'unknown', '-r': 'file', '-S': 'file' })],
  ['iex', always()],
  ['erl', always()],
  ['swipl', always()],
  ['irb', always()],
  ['pry', always()],
  ['byebug', always()],
  ['pdb', always()],
  ['msfconsole', always()],
  ['cpan', interpreter({})],
  ['deno', withOptions({}, { subcommands: { eval: always(), repl: always(), run: files, task: files } })],
  [
    'bun',
    withOptions(
      { '-e': 'unknown', '--eval': 'unknown', '-p': 'unknown', '--print': 'unknown' },
      { subcommands: { repl: always(), exec: withOptions({}, { shellOperand: 0 }) } },
    ),
  ],
  ['dotnet', withOptions({}, { subcommands: { fsi: interpreter({}) } })],
  [
    'bpftrace',
    interpreter({ '-e': 'unknown', '-c': 'shell', '--unsafe': 'unknown-flag', '-o': 'value', '-p': 'value' }),
  ],
  [
    'puppet',
    withOptions({}, { subcommands: { apply: withOptions({ '-e': 'unknown', '--execute': 'unknown' }) } }),
  ],
  [
    'knife',
    withOptions({}, { subcommands: { exec: withOptions({ '-E': 'unknown', '--exec': 'unknown' }) } }),
  ],
  [
    'rake',
    withOptions({
      '-e': 'unknown',
      '--execute': 'unknown',
      '-p': 'unknown',
      '--execute-print': 'unknown',
      '-E': 'unknown',
      '--execute-continue': 'unknown',
      '-f': 'value',
      '--rakefile': 'value',
      '-I': 'value',
      '-r': 'value',
      '-C': 'value',
    }),
  ],
  ['exiftool', withOptions({}, { unknownArguments: /^-(if\d*|api)$|\$\{[^}]*;/ })],
  ['gimp', withOptions({ '-b': 'unknown', '--batch': 'unknown', '--batch-interpreter': 'value' })],
  ['sqlmap', withOptions({ '--eval': 'unknown' })],
  ['pandoc', withOptions({ '-F': 'shell', '--filter': 'shell', '-L': 'file', '--lua-filter': 'file' })],
  ['bee', withOptions({}, { subcommands: { eval: always(), ev: always(), 'php-eval': always() } })],
  [
    'drush',
    withOptions(
      {},
      {
        subcommands: {
          eval: always(),
          ev: always(),
          'php:eval': always(),
          'php-eval': always(),
          php: always(),
          'php:cli': always(),
        },
      },
    ),
  ],
  ['wp', withOptions({}, { subcommands: { eval: always(), shell: always() } })],
  ['volatility', withOptions({}, { subcommands: { volshell: always() } })],
  // shells other than POSIX-like ones: their code is not shell code we can read
  ['pwsh', always()],
  ['powershell', always()],
  ['elvish', always()],
  ['nu', always()],
  ['xonsh', always()],
  ['es', always()],
  // command readers
  [
    'psql',
    commands(
      {
        ...VERSION,
        '-c': 'inline',
        '--command': 'inline',
        '-f': 'file',
        '--file': 'file',
        '-o': 'pipe',
        '--output': 'pipe',
        '-L': 'value',
        '--log-file': 'value',
        '-d': 'value',
        '--dbname': 'value',
        '-h': 'value',
        '--host': 'value',
        '-p': 'value',
        '--port': 'value',
        '-U': 'value',
        '--username': 'value',
        '-v': 'value',
        '--set': 'value',
        '--variable': 'value',
        '-P': 'value',
        '--pset': 'value',
        '-F': 'value',
        '--field-separator': 'value',
        '-R': 'value',
        '--record-separator': 'value',
        '-T': 'value',
        '--table-attr': 'value',
        '-l': 'none',
        '--list': 'none',
        '-V': 'none',
      },
      { escape: PSQL_ESCAPE },
    ),
  ],
  [
    'mysql',
    commands(
      {
        ...VERSION,
        '-e': 'inline',
        '--execute': 'inline',
        '--pager': 'shell-attached',
        '--default-auth': 'unknown',
        '--plugin-dir': 'unknown',
        '-h': 'value',
        '--host': 'value',
        '-u': 'value',
        '--user': 'value',
        '-P': 'value',
        '--port': 'value',
        '-D': 'value',
        '--database': 'value',
        '-S': 'value',
        '--socket': 'value',
        '-p': 'attached',
        '--tee': 'value',
        '--prompt': 'value',
        '--delimiter': 'value',
        '--default-character-set': 'value',
        '-V': 'none',
      },
      { escape: MYSQL_ESCAPE },
    ),
  ],
  [
    'sqlite3',
    commands(
      {
        '-cmd': 'inline',
        '-init': 'file',
        '-separator': 'value',
        '-newline': 'value',
        '-nullvalue': 'value',
        '-version': 'none',
        '-help': 'none',
      },
      { singleDashLongs: true, inlineOperand: 1, escape: SQLITE_ESCAPE },
    ),
  ],
  ['ed', always()],
  ['red', always()],
  ['ex', always()],
  [
    'dc',
    commands(
      { '-e': 'inline', '--expression': 'inline', '-f': 'file', '--file': 'file' },
      { scriptOperand: true, escape: /!(?![<>=])/ },
    ),
  ],
  [
    'lftp',
    commands(
      { '-c': 'inline', '-e': 'inline', '-f': 'file', '-u': 'value', '-p': 'value' },
      { escape: /[!|]/ },
    ),
  ],
  [
    'smbclient',
    commands(
      {
        '-c': 'inline',
        '--command': 'inline',
        '-L': 'no-stdin',
        '--list': 'no-stdin',
        '-U': 'value',
        '-W': 'value',
        '-I': 'value',
        '-p': 'value',
        '-n': 'value',
        '-A': 'value',
        '-s': 'value',
        '-d': 'value',
        '-D': 'value',
        '-O': 'value',
        '-R': 'value',
        '-m': 'value',
        '-t': 'value',
        '-T': 'value',
      },
      { escape: /!/ },
    ),
  ],
  [
    'debugfs',
    commands(
      { '-R': 'inline', '-f': 'file', '-b': 'value', '-s': 'value', '-d': 'value', '-z': 'value' },
      { escape: /!/ },
    ),
  ],
  ['ftp', always()],
  ['ncftp', always()],
  ['psftp', always()],
  ['tftp', always()],
  ['telnet', always()],
  ['bconsole', always()],
  ['ginsh', always()],
  ['tasksh', always()],
  ['tdbtool', always()],
  ['scanmem', always()],
  ['jtag', always()],
  ['gdb', always()],
  ['gdb-multiarch', always()],
  ['lldb', always()],
  ['cgdb', always()],
  ['hping3', commands({}, { scriptOperand: true })],
  [
    'asterisk',
    withOptions({
      '-r': 'unknown-flag',
      '-R': 'unknown-flag',
      '-c': 'unknown-flag',
      '-x': 'unknown',
      '-i': 'unknown-flag',
    }),
  ],
  ['nmap', withOptions({ '--interactive': 'unknown-flag' })],
  [
    'mail',
    commands(
      {
        '--exec': 'unknown',
        '-E': 'unknown',
        '-f': 'unknown-flag',
        '-s': 'value',
        '-c': 'value',
        '-b': 'value',
        '-a': 'value',
        '-r': 'value',
      },
      { scriptOperand: true },
    ),
  ],
  [
    'mailx',
    commands(
      {
        '-X': 'unknown',
        '-f': 'unknown-flag',
        '-s': 'value',
        '-c': 'value',
        '-b': 'value',
        '-a': 'value',
        '-r': 'value',
      },
      { scriptOperand: true },
    ),
  ],
  [
    'at',
    commands({
      '-f': 'file',
      '-l': 'none',
      '-d': 'none',
      '-r': 'none',
      '-c': 'none',
      '-q': 'value',
      '-t': 'value',
    }),
  ],
  ['batch', commands({ '-f': 'file', '-q': 'value' })],
  [
    'crontab',
    commands(
      { '-e': 'no-stdin', '-l': 'none', '-r': 'none', '-u': 'value', '-T': 'none' },
      { scriptOperand: true },
    ),
  ],
  [
    'm4',
    commands(
      {
        '-D': 'value',
        '--define': 'value',
        '-U': 'value',
        '--undefine': 'value',
        '-I': 'value',
        '--include': 'value',
        '-d': 'attached',
        '-l': 'value',
        '-o': 'value',
        '--debugfile': 'value',
        '-F': 'value',
        '-R': 'value',
        '-L': 'value',
      },
      { scriptOperand: true, unknownArguments: /syscmd/ },
    ),
  ],
  [
    'script',
    commands({
      '-c': 'shell',
      '--command': 'shell',
      '-E': 'value',
      '-I': 'value',
      '-O': 'value',
      '-B': 'value',
      '-T': 'value',
      '-m': 'value',
      '-o': 'value',
    }),
  ],
  [
    'screen',
    always({ '-ls': 'none', '-list': 'none', '-v': 'none', '--version': 'none' }, { singleDashLongs: true }),
  ],
  ['tmux', always({ '-V': 'none' }, { subcommands: { ls: files, 'list-sessions': files } })],
  ['tmate', always()],
  ['byobu', always()],
  ['zellij', always()],
  ['dtach', always()],
  ['abduco', always()],
  ['codex', always()],
  ['opencode', always()],
  ['claude', always()],
  ['pexec', always()],
  ['ksu', always()],
  ['newgrp', always()],
  ['gtester', always()],
  ['mosh-server', always()],
  ['ansible-console', always()],
  ['run-parts', always({ '--test': 'none', '--list': 'none', '--help': 'none', '--version': 'none' })],
  // options that run commands
  [
    'make',
    withOptions({
      '--eval': 'unknown',
      '-E': 'unknown',
      '-f': 'file',
      '--file': 'file',
      '--makefile': 'file',
      '-C': 'value',
      '--directory': 'value',
      '-I': 'value',
      '-j': 'attached',
      '-o': 'value',
      '-W': 'value',
    }),
  ],
  [
    'gmake',
    withOptions({
      '--eval': 'unknown',
      '-E': 'unknown',
      '-f': 'file',
      '--file': 'file',
      '--makefile': 'file',
      '-C': 'value',
      '--directory': 'value',
    }),
  ],
  ['cmake', handler],
  ['rpm', RPM],
  ['rpmdb', RPM],
  ['rpmquery', RPM],
  ['rpmverify', RPM],
  ['rpmbuild', RPM],
  ['rpmspec', RPM],
  ['rpmsign', RPM],
  [
    'apt-get',
    withOptions(
      { '-o': 'setting', '--option': 'setting', '-c': 'value', '--config-file': 'value', '-t': 'value' },
      { settings: APT_SETTINGS },
    ),
  ],
  [
    'apt',
    withOptions(
      { '-o': 'setting', '--option': 'setting', '-c': 'value', '--config-file': 'value', '-t': 'value' },
      { settings: APT_SETTINGS },
    ),
  ],
  ['aptitude', withOptions({ '-o': 'setting', '-c': 'value' }, { settings: APT_SETTINGS })],
  ['dpkg', withOptions({ '--pre-invoke': 'shell', '--post-invoke': 'shell', '--status-logger': 'shell' })],
  ['pip', withOptions({ '--editor': 'shell' })],
  ['gem', withOptions({ '-e': 'shell', '--editor': 'shell' })],
  ['perlbug', withOptions({ '-e': 'shell' })],
  [
    'go',
    withOptions(
      { '-exec': 'shell', '-toolexec': 'shell', '-o': 'value', '-C': 'value' },
      { singleDashLongs: true },
    ),
  ],
  ['gcc', withOptions({}, { unknownArguments: /^-(wrapper$|fplugin|specs=|-specs|B)/ })],
  ['ld.so', wrapper],
  ['ldconfig', files],
  ['nginx', withOptions({ '-g': 'unknown', '-c': 'value', '-p': 'value', '-e': 'value' })],
  [
    'openssl',
    withOptions(
      { '-engine': 'unknown', '-provider': 'unknown', '-provider-path': 'unknown' },
      { singleDashLongs: true },
    ),
  ],
  ['curl', withOptions({ '--engine': 'unknown' })],
  ['ssh-keygen', withOptions({ '-D': 'unknown' })],
  ['ssh-add', withOptions({ '-s': 'unknown', '-S': 'unknown', '-e': 'value' })],
  ['ffmpeg', withOptions({}, { unknownArguments: /\b(ladspa|lv2|frei0r|frei0r_src)\s*=/ })],
  ['ffplay', withOptions({}, { unknownArguments: /\b(ladspa|lv2|frei0r|frei0r_src)\s*=/ })],
  ['ffprobe', withOptions({}, { unknownArguments: /\b(ladspa|lv2|frei0r|frei0r_src)\s*=/ })],
  [
    'sysctl',
    withOptions({}, { unknownArguments: /(core_pattern|modprobe|hotplug|poweroff_cmd|usermodehelper)/ }),
  ],
  [
    'tcpdump',
    withOptions({
      '-z': 'shell',
      '-Z': 'value',
      '-i': 'value',
      '-w': 'value',
      '-r': 'value',
      '-c': 'value',
      '-C': 'value',
      '-G': 'value',
      '-W': 'value',
      '-s': 'value',
      '-F': 'value',
      '-E': 'value',
      '-B': 'value',
      '-y': 'value',
      '-T': 'value',
      '-V': 'value',
    }),
  ],
  [
    'aria2c',
    withOptions({
      '--on-download-complete': 'shell',
      '--on-download-error': 'shell',
      '--on-download-start': 'shell',
      '--on-download-pause': 'shell',
      '--on-download-stop': 'shell',
      '--on-bt-download-complete': 'shell',
    }),
  ],
  [
    'certbot',
    withOptions({
      '--pre-hook': 'shell',
      '--post-hook': 'shell',
      '--deploy-hook': 'shell',
      '--renew-hook': 'shell',
      '--manual-auth-hook': 'shell',
      '--manual-cleanup-hook': 'shell',
    }),
  ],
  [
    'restic',
    withOptions(
      { '--password-command': 'shell', '-o': 'setting', '--option': 'setting' },
      { settings: (key) => (/command$/i.test(key) ? 'shell' : undefined) },
    ),
  ],
  ['borg', withOptions({ '--rsh': 'shell' })],
  ['cpio', withOptions({ '--rsh-command': 'shell' })],
  [
    'dhclient',
    withOptions(
      { '-sf': 'shell', '-cf': 'value', '-lf': 'value', '-pf': 'value' },
      { singleDashLongs: true },
    ),
  ],
  [
    'dnsmasq',
    withOptions({
      '--conf-script': 'shell',
      '--dhcp-script': 'shell',
      '-6': 'shell',
      '--dhcp-luascript': 'value',
    }),
  ],
  ['dmsetup', withOptions({ '--exec': 'shell' })],
  ['enscript', withOptions({ '-I': 'shell', '--filter': 'shell' })],
  [
    'fzf',
    withOptions({
      '--bind': 'unknown',
      '--preview': 'unknown',
      '--listen': 'unknown',
      '--listen-unsafe': 'unknown',
      '--with-shell': 'unknown',
    }),
  ],
  [
    'genie',
    withOptions({
      '-c': 'shell',
      '--command': 'shell',
      '-s': 'unknown-flag',
      '--shell': 'unknown-flag',
      '-l': 'unknown-flag',
      '--login': 'unknown-flag',
    }),
  ],
  [
    'hg',
    withOptions(
      { '--config': 'setting', '-e': 'shell', '--ssh': 'shell', '--remotecmd': 'shell' },
      {
        settings: (key) =>
          /^(alias|hooks|extensions|pager|merge-tools|extdiff)\.|^ui\.(editor|merge|ssh)$/i.test(key)
            ? 'unknown'
            : undefined,
      },
    ),
  ],
  [
    'latexmk',
    withOptions(
      {
        '-e': 'unknown',
        '-r': 'value',
        '-pdflatex': 'shell',
        '-latex': 'shell',
        '-lualatex': 'shell',
        '-xelatex': 'shell',
        '-dvipdf': 'shell',
        '-ps2pdf': 'shell',
        '-pdf_previewer': 'shell',
        '-shell-escape': 'unknown-flag',
      },
      { singleDashLongs: true },
    ),
  ],
  [
    'logrotate',
    withOptions({
      '-m': 'shell',
      '--mail': 'shell',
      '-s': 'value',
      '--state': 'value',
      '-l': 'value',
      '--log': 'value',
    }),
  ],
  [
    'agetty',
    withOptions({
      '-l': 'shell',
      '--login-program': 'shell',
      '-o': 'value',
      '--login-options': 'value',
      '-I': 'value',
      '-f': 'value',
      '-H': 'value',
      '-t': 'value',
    }),
  ],
  [
    'nc',
    withOptions({
      '-e': 'shell',
      '-c': 'shell',
      '--exec': 'shell',
      '--sh-exec': 'shell',
      '--lua-exec': 'unknown',
      '-p': 'value',
      '-s': 'value',
      '-w': 'value',
      '-i': 'value',
      '-q': 'value',
      '-x': 'value',
      '-X': 'value',
      '-I': 'value',
      '-O': 'value',
      '-T': 'value',
      '-V': 'value',
      '-P': 'value',
    }),
  ],
  ['socat', handler],
  ['socket', withOptions({ '-p': 'shell' })],
  ['split', withOptions({ '--filter': 'shell' })],
  ['scrot', withOptions({ '-e': 'shell', '--exec': 'shell' })],
  [
    'sshuttle',
    withOptions({
      '-e': 'shell',
      '--ssh-cmd': 'shell',
      '-r': 'value',
      '--remote': 'value',
      '--python': 'value',
    }),
  ],
  ['yt-dlp', withOptions({ '--exec': 'shell', '--exec-before-download': 'shell', '--netrc-cmd': 'shell' })],
  ['youtube-dl', withOptions({ '--exec': 'shell' })],
  ['zic', withOptions({ '-y': 'shell', '-d': 'value', '-l': 'value', '-p': 'value', '-L': 'value' })],
  ['plymouth', withOptions({ '--command': 'shell' })],
  ['wget', withOptions({ '--use-askpass': 'shell' })],
  ['forge', withOptions({ '--use': 'shell' })],
  ['pidstat', withOptions({ '-e': 'rest' })],
  [
    'openvpn',
    withOptions({
      '--up': 'shell',
      '--down': 'shell',
      '--ipchange': 'shell',
      '--route-up': 'shell',
      '--route-pre-down': 'shell',
      '--client-connect': 'shell',
      '--client-disconnect': 'shell',
      '--learn-address': 'shell',
      '--auth-user-pass-verify': 'shell',
      '--tls-verify': 'shell',
      '--plugin': 'unknown',
    }),
  ],
  [
    'start-stop-daemon',
    withOptions({ '-x': 'shell', '--exec': 'shell', '-a': 'shell', '--startas': 'shell' }),
  ],
  [
    'check_by_ssh',
    withOptions({ '-o': 'setting', '-C': 'shell', '--command': 'shell' }, { settings: SSH_SETTINGS }),
  ],
  ['check_ssl_cert', withOptions({ '--grep-bin': 'shell' }, { unknownArguments: /^--[a-z-]+-bin(=|$)/ })],
  ['busctl', withOptions({}, { unknownArguments: /unixexec:/ })],
  ['csvtool', withOptions({}, { subcommands: { call: withOptions({}, { shellOperand: 0 }) } })],
  ['task', withOptions({}, { subcommands: { execute: withOptions({}, { shellOperand: 0 }) } })],
  ['ansible', withOptions({ '-a': 'shell', '--args': 'shell' })],
  ['ansible-test', withOptions({}, { subcommands: { shell: always() } })],
  ['cdist', withOptions({}, { subcommands: { shell: always() } })],
  ['code', withOptions({}, { subcommands: { tunnel: always(), 'serve-web': always() } })],
  ['fail2ban-client', withOptions({}, { unknownArguments: /^action(ban|unban|start|stop|check)$/ })],
  ['service', withOptions({}, { unknownArguments: /\// })],
  ['xdg-user-dir', withOptions({}, { unknownArguments: /[;&|`$(){}<>]/ })],
  ['dvips', withOptions({}, { unknownArguments: /^-R0$/ })],
  ['java', withOptions({}, { unknownArguments: /^-(agentpath|agentlib|javaagent):/ })],
  ['ranger', withOptions({ '--cmd': 'unknown' })],
  ['nano', withOptions({ '-s': 'shell', '--speller': 'shell' })],
  [
    'emacs',
    withOptions(
      {
        '-eval': 'unknown',
        '-execute': 'unknown',
        '-f': 'unknown',
        '-funcall': 'unknown',
        '-l': 'value',
        '-load': 'value',
        '-L': 'value',
      },
      { singleDashLongs: true },
    ),
  ],
  ['groff', GROFF],
  ['nroff', GROFF],
  ['troff', GROFF],
  ['pic', GROFF],
  ['tex', TEX],
  ['etex', TEX],
  ['pdftex', TEX],
  ['xetex', TEX],
  ['luatex', TEX],
  ['luahbtex', TEX],
  ['latex', TEX],
  ['pdflatex', TEX],
  ['xelatex', TEX],
  ['lualatex', TEX],
  ['dvilualatex', TEX],
  ['context', TEX],
  // dedicated readers
  ['awk', AWK],
  ['gawk', AWK],
  ['mawk', AWK],
  ['nawk', AWK],
  ['original-awk', AWK],
  ['goawk', AWK],
  ['sed', handler],
  ['git', handler],
  ['tar', handler],
  ['bsdtar', handler],
  ['gtar', handler],
  ['ssh', SSH_FAMILY],
  ['scp', SSH_FAMILY],
  ['sftp', SSH_FAMILY],
  ['sshfs', SSH_FAMILY],
  ['autossh', SSH_FAMILY],
  ['mosh', SSH_FAMILY],
  [
    'rsync',
    withOptions({
      '-e': 'shell',
      '--rsh': 'shell',
      '--rsync-path': 'shell',
      '-f': 'value',
      '--filter': 'value',
      '-T': 'value',
      '--temp-dir': 'value',
      '-B': 'value',
      '--block-size': 'value',
      '-M': 'value',
      '--remote-option': 'value',
      '--exclude': 'value',
      '--include': 'value',
      '--exclude-from': 'value',
      '--include-from': 'value',
      '--files-from': 'value',
      '--log-file': 'value',
      '--password-file': 'value',
      '--partial-dir': 'value',
      '--backup-dir': 'value',
      '--suffix': 'value',
      '--chmod': 'value',
      '--chown': 'value',
      '--timeout': 'value',
      '--port': 'value',
      '--out-format': 'value',
      '--bwlimit': 'value',
      '--max-size': 'value',
      '--min-size': 'value',
      '--compare-dest': 'value',
      '--copy-dest': 'value',
      '--link-dest': 'value',
    }),
  ],
  ['vi', VI],
  ['vim', VI],
  ['nvim', VI],
  ['view', VI],
  ['vimdiff', VI],
  ['rvim', VI],
  ['rview', VI],
  ['gvim', VI],
  ['evim', VI],
  ['less', handler],
  [
    'man',
    withOptions({
      '-P': 'shell',
      '--pager': 'shell',
      '-H': 'shell-attached',
      '--html': 'shell-attached',
      '-C': 'value',
      '--config-file': 'value',
      '-M': 'value',
      '--manpath': 'value',
      '-S': 'value',
      '-s': 'value',
      '--sections': 'value',
      '-e': 'value',
      '--extension': 'value',
      '-L': 'value',
      '--locale': 'value',
      '-m': 'value',
      '--systems': 'value',
      '-p': 'value',
      '--preprocessor': 'value',
      '-r': 'value',
      '--prompt': 'value',
      '-R': 'value',
      '--recode': 'value',
      '-E': 'value',
      '--encoding': 'value',
    }),
  ],
  ['zip', handler],
  ['capsh', handler],
  ['find', handler],
  ['env', wrapper],
  ['xargs', wrapper],
  // wrappers (wrappers.ts)
  ...[
    'aa-exec',
    'aoss',
    'choom',
    'chrt',
    'chroot',
    'cpulimit',
    'distcc',
    'doas',
    'firejail',
    'flock',
    'grc',
    'ionice',
    'logsave',
    'ltrace',
    'msgfilter',
    'multitime',
    'nice',
    'nohup',
    'nsenter',
    'openvt',
    'pkexec',
    'rlwrap',
    'setarch',
    'setlock',
    'sg',
    'softlimit',
    'ssh-agent',
    'sshpass',
    'stdbuf',
    'strace',
    'su',
    'sudo',
    'systemd-run',
    'taskset',
    'time',
    'timeout',
    'torify',
    'torsocks',
    'unshare',
    'valgrind',
    'watch',
    'busybox',
    'perf',
    'npm',
    'yarn',
    'uv',
    'bundle',
    'cabal',
    'rustup',
    'xdotool',
    'ip',
    'poetry',
    'pipx',
  ].map((name) => [name, wrapper] as const),
  // shells
  ...['sh', 'bash', 'dash', 'zsh', 'ksh', 'ash', 'csh', 'tcsh', 'fish', 'rc', 'sash', 'yash', 'posh'].map(
    (name) => [name, shell] as const,
  ),
  // interactive only: escapes from keystrokes at a terminal (pagers, editors, full-screen tools)
  ...[
    'more',
    'pg',
    'most',
    'zless',
    'batcat',
    'bat',
    'joe',
    'ispell',
    'aspell',
    'iftop',
    'ncdu',
    'top',
    'htop',
    'zathura',
    'minicom',
    'loginctl',
    'systemctl',
    'journalctl',
    'timedatectl',
    'systemd-resolve',
    'dmesg',
    'aws',
    'gcloud',
    'rustc',
    'apport-cli',
    'crash',
    'eb',
    'mutt',
    'vigr',
    'vipw',
    'bashbug',
    'sudoedit',
    'tshark',
    'wireshark',
  ].map((name) => [name, interactive] as const),
  // run what files, configuration or packages say
  ...[
    'acr',
    'ansible-playbook',
    'arch-nspawn',
    'autoconf',
    'autoheader',
    'autoreconf',
    'cargo',
    'cobc',
    'composer',
    'cowsay',
    'cowthink',
    'dnf',
    'dstat',
    'easy_install',
    'easyrsa',
    'facter',
    'fastfetch',
    'kubectl',
    'needrestart',
    'neofetch',
    'opkg',
    'pkg',
    'procmail',
    'rsyslogd',
    'rtorrent',
    'run-mailcap',
    'runscript',
    'snap',
    'vagrant',
    'virsh',
    'wg-quick',
    'yum',
    'zypper',
    'pnpm',
    'pdm',
    'hatch',
    'conda',
  ].map((name) => [name, files] as const),
  // run commands inside containers
  ...['docker', 'podman', 'ctr', 'nerdctl', 'crictl', 'lxc', 'lxd', 'systemd-nspawn'].map(
    (name) => [name, container] as const,
  ),
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
