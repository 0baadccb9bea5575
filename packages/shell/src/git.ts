/**
 * git: the ways a command line makes git run another command (git-config(1), git(1), and each subcommand's
 * manual): configuration given with `-c`/`--config-env` or written with `git config` (aliases starting with `!`,
 * pagers, editors, ssh commands, filters, hooks…), and subcommand options that take a command (`rebase --exec`,
 * `submodule foreach`, `bisect run`, `filter-branch --*-filter`, `--upload-pack`, …). A shell command found there
 * is analysed; a path to hooks or config files, a remote helper or the `ext::` transport counts as unknown.
 * Hooks and aliases already in the repository's or user's config run what those files say (README).
 */
import type { CommandSink, ProgramReader } from './execution.js';
import { scanArguments, type OptionMeaning } from './options.js';
import type { ResolvedWord } from './words.js';

/** What a configuration value is, by its key: a shell command, something unknown, an alias, or inert. */
type ConfigKind = 'shell' | 'unknown' | 'alias' | 'credential' | 'bang' | undefined;

const SHELL_LAST = new Set([
  'pager',
  'editor',
  'sshcommand',
  'askpass',
  'external',
  'command',
  'textconv',
  'driver',
  'clean',
  'smudge',
  'process',
  'program',
  'gitproxy',
  'packobjectshook',
  'sendmailcmd',
  'tocmd',
  'cccmd',
  'headercmd',
  'cmd',
  'httpd',
  'uploadpack',
  'receivepack',
  'alternaterefscommand',
  'fsmonitor',
]);
const UNKNOWN_LAST = new Set(['hookspath', 'path', 'templatedir', 'allow', 'vcs']);
const BOOLEAN = /^(true|false|yes|no|on|off|1|0|)$/i;

export function gitConfigKind(key: string): ConfigKind {
  const parts = key.toLowerCase().split('.');
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (first === 'alias' && parts.length >= 2) return 'alias';
  if (first === 'credential' && last === 'helper') return 'credential';
  if (first === 'sendemail' && last === 'smtpserver') return 'shell';
  if (first === 'pager' && parts.length === 2) return 'shell';
  // A URL rewrite only matters when it leads to the `ext::` transport, which runs a command.
  if (first === 'url' && (last === 'insteadof' || last === 'pushinsteadof')) {
    return key.toLowerCase().includes('ext::') ? 'unknown' : undefined;
  }
  if (first === 'submodule' && last === 'update') return 'bang';
  if (UNKNOWN_LAST.has(last)) return 'unknown';
  if (SHELL_LAST.has(last)) return 'shell';
  return undefined;
}

/** Judge one `key=value` setting; `value` undefined means it comes from elsewhere (an environment variable). */
function judgeConfig(key: string, value: ResolvedWord | undefined, sink: CommandSink): void {
  const kind = gitConfigKind(key);
  if (kind === undefined) return;
  if (value === undefined || value.dynamic) return sink.unknown();
  const text = value.value.trim();
  switch (kind) {
    case 'unknown':
      return sink.unknown();
    case 'shell':
      if (!BOOLEAN.test(text)) sink.shell({ ...value, value: text });
      return;
    case 'credential':
      if (text === '') return;
      if (text.startsWith('!')) return sink.shell({ ...value, value: text.slice(1) });
      if (text.startsWith('/')) return sink.shell({ ...value, value: text });
      return sink.shell({ ...value, value: `git-credential-${text}` });
    case 'bang':
      if (text.startsWith('!')) sink.shell({ ...value, value: text.slice(1) });
      return;
    case 'alias':
      // `!cmd` runs cmd through the shell; any other alias is git arguments, which may carry -c in turn.
      if (text.startsWith('!')) return sink.shell({ ...value, value: text.slice(1) });
      return sink.shell({ ...value, value: `git ${text}` });
  }
}

function judgeSettingWord(setting: ResolvedWord | undefined, sink: CommandSink): void {
  if (setting === undefined) return;
  if (setting.dynamic) return sink.unknown();
  const equals = setting.value.indexOf('=');
  const key = equals === -1 ? setting.value : setting.value.slice(0, equals);
  judgeConfig(key, { ...setting, value: equals === -1 ? 'true' : setting.value.slice(equals + 1) }, sink);
}

const GLOBAL_VALUE = new Set([
  '-C',
  '--git-dir',
  '--work-tree',
  '--namespace',
  '--super-prefix',
  '--list-cmds',
  '--attr-source',
]);

/** Per subcommand, the options that run something. */
const SUBCOMMANDS: Readonly<Record<string, Readonly<Record<string, OptionMeaning>>>> = {
  rebase: {
    '-x': 'shell',
    '--exec': 'shell',
    '--onto': 'value',
    '-s': 'value',
    '--strategy': 'value',
    '-X': 'value',
  },
  'filter-branch': {
    '--env-filter': 'shell',
    '--tree-filter': 'shell',
    '--index-filter': 'shell',
    '--parent-filter': 'shell',
    '--msg-filter': 'shell',
    '--commit-filter': 'shell',
    '--tag-name-filter': 'shell',
    '--setup': 'shell',
    '-d': 'value',
    '--subdirectory-filter': 'value',
  },
  difftool: { '-x': 'shell', '--extcmd': 'shell', '-t': 'value', '--tool': 'value' },
  clone: {
    '-u': 'shell',
    '--upload-pack': 'shell',
    '--template': 'unknown',
    '-c': 'setting',
    '--config': 'setting',
    '-o': 'value',
    '-b': 'value',
    '--depth': 'value',
    '--reference': 'value',
    '--separate-git-dir': 'value',
    '--origin': 'value',
    '--branch': 'value',
  },
  fetch: { '--upload-pack': 'shell' },
  pull: { '--upload-pack': 'shell' },
  'ls-remote': { '--upload-pack': 'shell', '--exec': 'shell' },
  push: { '--receive-pack': 'shell', '--exec': 'shell' },
  archive: {
    '--exec': 'shell',
    '--remote': 'value',
    '-o': 'value',
    '--output': 'value',
    '--prefix': 'value',
    '--format': 'value',
  },
  'send-email': {
    '--sendmail-cmd': 'shell',
    '--to-cmd': 'shell',
    '--cc-cmd': 'shell',
    '--header-cmd': 'shell',
    '--smtp-server': 'value',
  },
  grep: { '-O': 'shell-attached', '--open-files-in-pager': 'shell-attached', '-e': 'value', '-f': 'value' },
  instaweb: {
    '--httpd': 'shell',
    '-d': 'shell',
    '--browser': 'value',
    '-b': 'value',
    '--port': 'value',
    '-p': 'value',
  },
  daemon: { '--access-hook': 'shell' },
  init: { '--template': 'unknown', '--separate-git-dir': 'value' },
};

export const readGit: ProgramReader = (words, sink) => {
  if (words.some((w) => !w.dynamic && /^ext::/i.test(w.value))) return sink.unknown();
  let index = 1;
  for (; index < words.length; index++) {
    const word = words[index]!;
    if (word.dynamic) return sink.unknown();
    const text = word.value;
    if (!text.startsWith('-')) break;
    if (text === '-c') {
      judgeSettingWord(words[++index], sink);
    } else if (text === '--config-env' || text.startsWith('--config-env=')) {
      const setting = text.includes('=') ? text.slice(text.indexOf('=') + 1) : words[++index]?.value;
      if (setting !== undefined) judgeConfig(setting.split('=')[0] ?? '', undefined, sink);
    } else if (text.startsWith('--exec-path=')) {
      return sink.unknown(); // git subcommands from another directory
    } else if (GLOBAL_VALUE.has(text)) {
      index++;
    }
  }
  const subcommand = words[index];
  if (subcommand === undefined) return;
  const rest = words.slice(index);
  switch (subcommand.value) {
    case 'config':
      return readGitConfig(rest, sink);
    case 'bisect':
      if (rest[1]?.value === 'run' && rest.length > 2) sink.command(rest.slice(2));
      return;
    case 'submodule': {
      const foreach = rest.findIndex((w) => w.value === 'foreach');
      if (foreach === -1) return;
      let from = foreach + 1;
      while (rest[from]?.value.startsWith('-') && rest[from]?.value !== '--') from++;
      if (rest[from]?.value === '--') from++;
      const command = rest.slice(from);
      if (command.length > 0) sink.shellWords(command);
      return;
    }
  }
  const options = SUBCOMMANDS[subcommand.value];
  if (options === undefined) return;
  const scanned = scanArguments(rest, { options });
  for (const option of scanned.found) {
    if (option.meaning === 'shell' || option.meaning === 'shell-attached') {
      if (option.value !== undefined) sink.shell(option.value);
    } else if (option.meaning === 'unknown') sink.unknown();
    else if (option.meaning === 'setting') judgeSettingWord(option.value, sink);
  }
};

/** `git config [scope] [--add|--replace-all] KEY VALUE`, `git config set KEY VALUE`: writing a command to run. */
function readGitConfig(words: readonly ResolvedWord[], sink: CommandSink): void {
  const scanned = scanArguments(words, {
    options: {
      '-f': 'value',
      '--file': 'value',
      '--blob': 'value',
      '--type': 'value',
      '--default': 'value',
      '--comment': 'value',
      '--value': 'value',
      '-e': 'none',
      '--edit': 'none',
      '-l': 'none',
      '--list': 'none',
    },
  });
  if (scanned.unknowable) return sink.unknown();
  const reading = scanned.found.some((o) => o.meaning === 'none');
  let operands = scanned.operands;
  if (operands[0]?.value === 'set') operands = operands.slice(1);
  else if (
    ['get', 'unset', 'list', 'edit', 'rename-section', 'remove-section'].includes(operands[0]?.value ?? '')
  )
    return;
  const flags = words.map((w) => w.value);
  if (reading || flags.some((f) => /^--(get|unset|rename-section|remove-section)/.test(f))) return;
  const [key, value] = operands;
  if (key === undefined || value === undefined) return;
  if (key.dynamic) return sink.unknown();
  judgeConfig(key.value, value, sink);
}
