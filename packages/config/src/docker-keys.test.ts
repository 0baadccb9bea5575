import { describe, expect, it } from '@jest/globals';
import type { DockerListenerConfig } from '@agentgate/core';
import { ConfigError, parseConfig } from './index.js';

const file = '/etc/agentgate/agentgate.yaml';
const base = 'store: { path: ./data/transcripts }\nsigningKey: ./data/signing-key.json\n';
const dockerListener = (extra = ''): string =>
  `listeners:\n  - { name: dk, protocol: docker, listen: "127.0.0.1:2375", allow: [group:a], upstream: { socket: /var/run/docker.sock }${extra} }\n`;

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parseConfig(base + text, file, {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

describe('Docker configuration', () => {
  it('refuses an action name no route has, with a did-you-mean; globs must name at least one action', () => {
    const issues = issuesOf(`rules:
  - { name: a, protocol: docker, match: { actions: [image.pul, container.*, IMAGE.PUSH] }, action: deny }
  - { name: b, match: { actions: [volumes.*] }, action: deny }
  - { name: c, match: { actions: [system.ping, unknown] }, action: deny }
`);
    expect(issues.map((i) => i.path)).toEqual(['rules[0].match.actions[0]', 'rules[1].match.actions[0]']);
    expect(issues[0]!.message).toContain('found unknown action "image.pul" (did you mean "image.pull"?)');
    expect(issues[1]!.message).toContain('found unknown action "volumes.*"');
  });

  it('reads the listener limits, with their defaults', () => {
    const defaults = parseConfig(base + dockerListener(), file, {}).listeners[0] as DockerListenerConfig;
    expect(defaults).toMatchObject({
      headersTimeoutMs: 60_000,
      keepAliveTimeoutMs: 30_000,
      sessionLingerMs: 2_000,
      unauthenticated: { maxConnections: 128, maxPerSource: 32 },
    });
    const set = parseConfig(
      base +
        dockerListener(
          ', headersTimeout: 5s, keepAliveTimeout: 0s, sessionLinger: 0s, maxUnauthenticated: 10, maxUnauthenticatedPerSource: 2',
        ),
      file,
      {},
    ).listeners[0] as DockerListenerConfig;
    expect(set).toMatchObject({
      headersTimeoutMs: 5_000,
      keepAliveTimeoutMs: 0,
      sessionLingerMs: 0,
      unauthenticated: { maxConnections: 10, maxPerSource: 2 },
    });
  });

  it('refuses limits out of range', () => {
    const issues = issuesOf(dockerListener(', headersTimeout: 48h, maxUnauthenticatedPerSource: 0'));
    expect(issues.map((i) => i.path)).toEqual([
      'listeners[0].headersTimeout',
      'listeners[0].maxUnauthenticatedPerSource',
    ]);
  });
});
