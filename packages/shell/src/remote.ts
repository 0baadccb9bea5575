/**
 * ssh and the programs built on it (scp, sftp, sshfs, autossh, mosh): `-o` settings that run a local command
 * (ProxyCommand, LocalCommand, KnownHostsCommand; ssh_config(5)) or load a library (PKCS11Provider,
 * SecurityKeyProvider), program options (`scp -S`, `sftp -D`), and the remote command. The remote command runs
 * through the remote user's shell, possibly on this very host (`ssh localhost rm x`), so it is analysed like a
 * local one; a remote login without a command (an interactive shell) and sftp reading its commands from stdin
 * (with its `!` escape) count as unknown.
 */
import type { CommandSink, ProgramReader } from './execution.js';
import { attachedWord, isStdin, scanArguments, type FoundOption, type OptionMeaning } from './options.js';
import type { ResolvedWord } from './words.js';

function letters(spec: string, meaning: OptionMeaning): Record<string, OptionMeaning> {
  return Object.fromEntries([...spec].map((letter) => [`-${letter}`, meaning]));
}

const SSH_OPTIONS: Readonly<Record<string, OptionMeaning>> = {
  ...letters('BbcDEeFiJLlmOpQRSWw', 'value'),
  '-o': 'setting',
  '-I': 'unknown',
  '-M': 'value', // autossh: the monitoring port
};
const SCP_OPTIONS: Readonly<Record<string, OptionMeaning>> = {
  ...letters('cFiJlPX', 'value'),
  '-o': 'setting',
  '-S': 'shell',
  '-D': 'shell',
};
const SFTP_OPTIONS: Readonly<Record<string, OptionMeaning>> = {
  ...letters('BcFiJlPRsX', 'value'),
  '-o': 'setting',
  '-S': 'shell',
  '-D': 'shell',
  '-b': 'file',
};

/** What an ssh_config keyword given on the command line does. */
export function sshSetting(key: string): 'shell' | 'unknown' | undefined {
  const k = key.toLowerCase();
  if (k === 'proxycommand' || k === 'localcommand' || k === 'knownhostscommand') return 'shell';
  if (k === 'pkcs11provider' || k === 'securitykeyprovider' || k === 'match' || k === 'include')
    return 'unknown';
  return undefined;
}

/** `-o Key=Value`, `-o 'Key Value'`. */
function judgeSshOption(value: ResolvedWord | undefined, sink: CommandSink): void {
  if (value === undefined) return;
  if (value.dynamic) return sink.unknown();
  const match = /^\s*([A-Za-z0-9]+)\s*(?:=|\s)\s*([\s\S]*)$/.exec(value.value);
  if (match === null) return;
  const kind = sshSetting(match[1]!);
  if (kind === 'unknown') return sink.unknown();
  const command = match[2]!.trim();
  if (kind === 'shell' && command !== '' && command.toLowerCase() !== 'none') {
    sink.shell(attachedWord(value, command));
  }
}

function judgeOptions(found: readonly FoundOption[], sink: CommandSink): void {
  for (const option of found) {
    if (option.meaning === 'setting') judgeSshOption(option.value, sink);
    else if (option.meaning === 'shell' && option.value !== undefined) sink.shell(option.value);
    else if (option.meaning === 'unknown') sink.unknown();
  }
}

/**
 * ssh reads its options before the destination and again right after it (ssh.c re-runs getopt once); what
 * follows is the remote command.
 */
function splitAtDestination(
  words: readonly ResolvedWord[],
  options: Readonly<Record<string, OptionMeaning>>,
): {
  found: FoundOption[];
  flags: string[];
  destination?: ResolvedWord;
  command: readonly ResolvedWord[];
  unknowable: boolean;
} {
  const before = scanArguments(words, { options, stopAtOperand: true });
  const [destination, ...afterDestination] = before.operands;
  if (destination === undefined) {
    return { found: [...before.found], flags: [...before.flags], command: [], unknowable: before.unknowable };
  }
  const after = scanArguments([words[0]!, ...afterDestination], { options, stopAtOperand: true });
  return {
    found: [...before.found, ...after.found],
    flags: [...before.flags, ...after.flags],
    destination,
    command: after.operands,
    unknowable: before.unknowable || after.unknowable,
  };
}

export const readSsh: ProgramReader = (words, sink) => {
  const { found, flags, destination, command, unknowable } = splitAtDestination(words, SSH_OPTIONS);
  if (unknowable) return sink.unknown();
  judgeOptions(found, sink);
  if (destination === undefined) return;
  // -N: no command; -W: stdio forwarding; -O: a control command; -s: a subsystem; -G/-V: print and exit.
  const used = new Set([...flags, ...found.map((o) => o.name)]);
  if (['-N', '-W', '-O', '-s', '-G', '-Q', '-V'].some((f) => used.has(f))) return;
  if (command.length > 0) sink.shellWords(command);
  else sink.unknown(); // an interactive login shell, possibly on this host
};

export const readScp: ProgramReader = (words, sink) => {
  const scanned = scanArguments(words, { options: SCP_OPTIONS });
  if (scanned.unknowable) return sink.unknown();
  judgeOptions(scanned.found, sink);
};

export const readSftp: ProgramReader = (words, sink) => {
  const scanned = scanArguments(words, { options: SFTP_OPTIONS });
  if (scanned.unknowable) return sink.unknown();
  judgeOptions(scanned.found, sink);
  const batch = scanned.found.find((o) => o.meaning === 'file');
  if (batch !== undefined) {
    if (batch.value === undefined || isStdin(batch.value.value)) sink.unknown();
    return;
  }
  // `sftp host:file [dir]` fetches and exits; otherwise sftp reads its commands (with `!`) from stdin.
  const destination = scanned.operands[0];
  if (destination === undefined) return;
  const fetches = /^[^/:]*:(?!\/?$).*[^/]$/.test(destination.value);
  if (!fetches) sink.unknown();
};

export const readSshfs: ProgramReader = (words, sink) => {
  const scanned = scanArguments(words, { options: { '-o': 'setting', '-p': 'value', '-F': 'value' } });
  if (scanned.unknowable) return sink.unknown();
  for (const option of scanned.found) {
    if (option.meaning !== 'setting' || option.value === undefined) continue;
    if (option.value.dynamic) return sink.unknown();
    // A comma-separated list (`\,` escapes a comma); options sshfs does not know go to ssh.
    for (const item of option.value.value.split(/(?<!\\),/)) {
      const [key = '', ...rest] = item.split('=');
      const value = rest.join('=').replace(/\\,/g, ',');
      if (key.toLowerCase() === 'ssh_command' && value.trim() !== '') {
        sink.shell(attachedWord(option.value, value));
      } else judgeSshOption(attachedWord(option.value, item), sink);
    }
  }
};

export const readMosh: ProgramReader = (words, sink) => {
  const scanned = scanArguments(words, {
    options: {
      '--ssh': 'shell',
      '--server': 'shell',
      '--client': 'shell',
      '-p': 'value',
      '--port': 'value',
      '--predict': 'value',
      '--family': 'value',
      '--bind-server': 'value',
      '--experimental-remote-ip': 'value',
    },
    stopAtOperand: true,
  });
  if (scanned.unknowable) return sink.unknown();
  judgeOptions(scanned.found, sink);
  const [destination, ...command] = scanned.operands;
  if (destination === undefined) return;
  const remote = command[0]?.value === '--' ? command.slice(1) : command;
  if (remote.length > 0) sink.shellWords(remote);
  else sink.unknown();
};
