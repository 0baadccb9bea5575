import { describe, expect, it } from '@jest/globals';
import type { DockerCommand } from '@agentgate/core';
import { commandView } from './pages/commands.js';

const exec = (hostNamespaces: unknown): DockerCommand =>
  ({
    protocol: 'docker',
    action: 'container.exec',
    text: 'container.exec POST /containers/x/exec',
    privileged: false,
    hostMounts: [],
    hostNamespaces,
    capabilities: [],
    images: [],
  }) as DockerCommand;

describe('the Docker command view', () => {
  it('names each host namespace, and shows none when the container shares none', () => {
    const shared = commandView(exec(['pid', 'cgroup']), 'x').value;
    expect(shared).toContain('<li class="risk">host pid namespace</li>');
    expect(shared).toContain('<li class="risk">host cgroup namespace</li>');
    expect(commandView(exec([]), 'x').value).not.toContain('namespace');
  });

  it('reads records written when the fact was a boolean', () => {
    expect(commandView(exec(true), 'x').value).toContain('<li class="risk">host namespaces</li>');
    expect(commandView(exec(false), 'x').value).not.toContain('namespace');
  });
});
