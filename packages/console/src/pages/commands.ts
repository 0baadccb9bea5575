/** A decoded command in full: SQL with the held part marked, a shell line, a Docker action with its risky facts. */
import type { Command, DockerCommand, ShellSimpleCommand, SshCommand } from '@agentgate/core';
import { html, join, type SafeHtml } from '../html.js';

export function commandView(
  command: Command,
  text: string,
  held: readonly (readonly [number, number])[] = [],
): SafeHtml {
  switch (command.protocol) {
    case 'postgres':
      return html`<pre class="code sql">${markRanges(text, held)}</pre>`;
    case 'ssh':
      return sshView(command, text);
    case 'docker':
      return dockerView(command, text);
    default:
      return html`<pre class="code">${text}</pre>`;
  }
}

/** `text` with the given [start, end) ranges inside <mark class="held">. */
export function markRanges(text: string, ranges: readonly (readonly [number, number])[]): SafeHtml {
  if (ranges.length === 0) return html`${text}`;
  const parts: SafeHtml[] = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start > at) parts.push(html`${text.slice(at, start)}`);
    parts.push(html`<mark class="held" title="held by the rule">${text.slice(start, end)}</mark>`);
    at = end;
  }
  if (at < text.length) parts.push(html`${text.slice(at)}`);
  return join(parts);
}

const sshKinds: Record<SshCommand['kind'], string> = {
  exec: 'command',
  'shell-line': 'shell line',
  channel: 'channel',
  'file-write': 'file upload',
  'file-read': 'file download',
  subsystem: 'subsystem',
};

function sshView(command: SshCommand, text: string): SafeHtml {
  return html`<div class="facts">
      <span class="badge">${sshKinds[command.kind]}</span>
      ${command.path === undefined ? '' : html`<span>path <code>${command.path}</code></span>`}
      ${command.channel === undefined ? '' : html`<span>channel <code>${command.channel}</code></span>`}
      ${programs(command.simpleCommands)}
    </div>
    <pre class="code shell">${text}</pre>`;
}

function programs(simple: readonly ShellSimpleCommand[]): SafeHtml | string {
  const names = [...new Set(simple.map((s) => s.program ?? '(unknown program)'))];
  if (names.length === 0) return '';
  return html`<span>runs ${join(
    names.map((n) => html`<code>${n}</code>`),
    ', ',
  )}</span>`;
}

/** The namespaces shared with the host; records written before they were listed by name hold a boolean. */
function hostNamespaces(command: DockerCommand): readonly string[] | 'unnamed' {
  const recorded = command.hostNamespaces as readonly string[] | boolean | undefined;
  if (Array.isArray(recorded)) return recorded;
  return recorded === true ? 'unnamed' : [];
}

function dockerView(command: DockerCommand, text: string): SafeHtml {
  const risky: SafeHtml[] = [];
  if (command.privileged) risky.push(html`<li class="risk">privileged</li>`);
  for (const mount of command.hostMounts)
    risky.push(html`<li class="risk">host mount <code>${mount}</code></li>`);
  const namespaces = hostNamespaces(command);
  if (namespaces === 'unnamed') risky.push(html`<li class="risk">host namespaces</li>`);
  else for (const n of namespaces) risky.push(html`<li class="risk">host ${n} namespace</li>`);
  for (const cap of command.capabilities)
    risky.push(html`<li class="risk">capability <code>${cap}</code></li>`);
  return html`<div class="facts">
      <span class="badge">${command.action}</span>
      ${
        command.images.length === 0
          ? ''
          : html`<span>image ${join(
              command.images.map((i) => html`<code>${i}</code>`),
              ', ',
            )}</span>`
      }
    </div>
    ${risky.length === 0 ? '' : html`<ul class="risks">${risky}</ul>`}
    ${
      command.exec === undefined || command.exec.length === 0
        ? ''
        : html`<div class="facts"><span>exec</span>${programs(command.exec)}</div>
          <pre class="code shell">${command.exec.map((s) => s.text).join(' ; ')}</pre>`
    }
    <pre class="code">${text}</pre>`;
}
