import { posix } from 'node:path';
import { analyzeShellCommand, mayExpandHistory, type ShellAnalysis } from '@agentgate/shell';
import type { ShellSimpleCommand, SshChannelKind, SshCommand, SshListenerConfig } from '@agentgate/core';

export function analyzeShell(text: string): ShellAnalysis {
  try {
    return analyzeShellCommand(text);
  } catch (err) {
    return { commands: [], error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * An exec request or an interactive line as the gate sees it. Unparseable text is `unanalysable` (the gate denies
 * it). A program unknowable before it runs matches every `programs` rule, or is refused, per listener setting.
 */
export function shellCommand(
  listener: SshListenerConfig,
  kind: 'exec' | 'shell-line',
  text: string,
  detail: Record<string, unknown>,
): SshCommand {
  const parsed = analyzeShell(text);
  // A shell line may be rewritten from the history before bash parses it: what runs then cannot be known.
  const analysis: ShellAnalysis =
    kind === 'shell-line' && parsed.error === undefined && mayExpandHistory(text)
      ? { commands: [...parsed.commands, { program: null, argv: [text], text }] }
      : parsed;
  const hasUnknown = analysis.commands.some((c) => c.program === null);
  let unanalysable: string | undefined =
    analysis.error === undefined ? undefined : `cannot parse shell command: ${analysis.error}`;
  if (unanalysable === undefined && hasUnknown && listener.unknownPrograms === 'deny') {
    unanalysable = 'the program a command runs cannot be known before it runs';
  }
  return {
    protocol: 'ssh',
    kind,
    text,
    simpleCommands: analysis.commands,
    ...(unanalysable !== undefined ? { unanalysable } : {}),
    ...(hasUnknown ? { unknownMatchesAll: true } : {}),
    detail,
  };
}

/**
 * An interactive line: the screen reading decides parseability; every other reading that parses adds its simple
 * commands, so a rule matching any plausible reading applies.
 */
export function shellLineCommand(
  listener: SshListenerConfig,
  line: string,
  alternates: readonly string[],
  detail: Record<string, unknown>,
): SshCommand {
  const primary = shellCommand(listener, 'shell-line', line, detail);
  const seen = new Set(primary.simpleCommands.map((c) => c.text));
  const extra: ShellSimpleCommand[] = [];
  for (const alt of alternates) {
    const a = analyzeShell(alt);
    if (a.error !== undefined) continue;
    for (const c of a.commands) {
      if (seen.has(c.text)) continue;
      seen.add(c.text);
      extra.push(c);
    }
  }
  if (extra.length === 0) return primary;
  const simpleCommands = [...primary.simpleCommands, ...extra];
  const hasUnknown = simpleCommands.some((c) => c.program === null);
  return {
    ...primary,
    simpleCommands,
    ...(hasUnknown ? { unknownMatchesAll: true } : {}),
    detail: { ...detail, alternateReadings: alternates },
  };
}

export function channelCommand(
  channel: Exclude<SshChannelKind, 'session'>,
  text: string,
  detail: Record<string, unknown>,
): SshCommand {
  return { protocol: 'ssh', kind: 'channel', channel, text, simpleCommands: [], detail };
}

export function fileCommand(
  kind: 'file-write' | 'file-read',
  path: string,
  via: string,
  detail: Record<string, unknown> = {},
): SshCommand {
  return {
    protocol: 'ssh',
    kind,
    path,
    text: `${via} ${kind === 'file-write' ? 'write' : 'read'} ${path}`,
    simpleCommands: [],
    detail: { via, ...detail },
  };
}

/**
 * A subsystem request runs the program sshd configured for it (`Subsystem sftp …`): it counts as a simple command
 * named after the subsystem, so `programs: [sftp]` rules deny it, or permit it in allow-list mode.
 */
export function subsystemCommand(name: string, detail: Record<string, unknown>): SshCommand {
  return {
    protocol: 'ssh',
    kind: 'subsystem',
    text: `subsystem ${name}`,
    simpleCommands: [{ program: name, argv: [name], text: name }],
    detail,
  };
}

/**
 * Legacy scp (`scp -O`, and OpenSSH < 9) runs `scp -t PATH` (sink: the client uploads) or `scp -f PATH` (source).
 * Returns the direction and target, or undefined for any other command.
 */
export function detectScp(command: string): { direction: 'upload' | 'download'; path: string } | undefined {
  const analysis = analyzeShell(command);
  if (analysis.error !== undefined || analysis.commands.length !== 1) return undefined;
  const argv = analysis.commands[0]!.argv;
  if (analysis.commands[0]!.program !== 'scp') return undefined;
  let direction: 'upload' | 'download' | undefined;
  let path: string | undefined;
  for (const arg of argv.slice(1)) {
    if (arg === '--') continue;
    if (arg.startsWith('-')) {
      if (arg.includes('t')) direction = 'upload';
      if (arg.includes('f')) direction = 'download';
      continue;
    }
    path = arg;
  }
  if (direction === undefined || path === undefined) return undefined;
  // The sink opens the target through the kernel, which reads `//etc`, `/./etc` and `/tmp/../etc` as `/etc`:
  // compare what it writes, as sftp paths are (sftp-inspector.ts).
  return { direction, path: path.startsWith('/') ? posix.normalize(path) : path };
}
