import { describe, expect, it } from '@jest/globals';
import type { DockerListenerConfig } from '@agentgate/core';
import { factsOfInspectedContainer, type UpstreamLookup } from './body-facts.js';
import { mergedEnv } from './container-commands.js';
import { buildDockerCommand } from './docker-command.js';
import { parseGoJson } from './go-json.js';
import { canonicalizeTarget, classifyRoute } from './routes.js';

const listener: DockerListenerConfig = {
  name: 'docker',
  protocol: 'docker',
  listen: '127.0.0.1:0',
  allow: [],
  upstream: { socket: '/x' },
  socketMode: 0o660,
  maxBodyBytes: 1 << 20,
  unknownPrograms: 'match-all',
  headersTimeoutMs: 60_000,
  keepAliveTimeoutMs: 60_000,
  sessionLingerMs: 2_000,
};
const FUNCTION = 'BASH_FUNC_ls%%=() { rm -rf /x; }';
const lookup: UpstreamLookup = {
  container: async (name) =>
    name === 'tainted'
      ? {
          privileged: false,
          hostMounts: [],
          hostNamespaces: [],
          capabilities: [],
          env: ['PATH=/bin', FUNCTION],
        }
      : name === 'plain'
        ? { privileged: false, hostMounts: [], hostNamespaces: [], capabilities: [], env: ['PATH=/bin'] }
        : undefined,
  volumeHostPaths: async () => [],
  imageDefaults: async (ref) =>
    ref === 'func-env'
      ? { entrypoint: ['bash', '-c'], cmd: ['ls'], env: ['PATH=/bin', FUNCTION] }
      : ref === 'bash'
        ? { cmd: ['bash'], env: ['PATH=/usr/bin:/bin'] }
        : ref === 'cuda'
          ? { cmd: ['bash'], env: ['LD_LIBRARY_PATH=/usr/local/cuda/lib64', 'BASH_ENV=/etc/profile'] }
          : undefined,
};

async function cmd(target: string, body: unknown, unknownPrograms: 'match-all' | 'deny' = 'match-all') {
  const request = canonicalizeTarget('POST', target);
  return buildDockerCommand({
    request,
    route: classifyRoute(request),
    body: Buffer.from(JSON.stringify(body)),
    listener: { ...listener, unknownPrograms },
    lookup,
  });
}

const programsOf = (c: { exec?: readonly { program: string | null }[] }) => c.exec?.map((e) => e.program);

describe('a created container’s Env', () => {
  it('analyses a function bash imports from it (the body’s or the image’s)', async () => {
    const body = await cmd('/containers/create', {
      Image: 'bash',
      Entrypoint: ['bash', '-c', 'ls'],
      Env: [FUNCTION],
    });
    expect(programsOf(body)).toEqual(['bash', 'ls', 'rm']);
    expect(programsOf(await cmd('/containers/create', { Image: 'func-env' }))).toContain('rm');
    // The body's value of the same name replaces the image's: dockerd never passes the image's on.
    const replaced = await cmd('/containers/create', {
      Image: 'func-env',
      Env: ['BASH_FUNC_ls%%=() { echo hi; }'],
    });
    expect(programsOf(replaced)).toEqual(['bash', 'ls', 'echo']);
  });

  it('counts a file or library sourced or loaded at start as an unknown program', async () => {
    for (const entry of ['BASH_ENV=/etc/x', 'ENV=/etc/x', 'LD_PRELOAD=/x.so', 'BASHOPTS=extdebug']) {
      const c = await cmd('/containers/create', { Image: 'bash', Cmd: ['bash', '-c', 'ls'], Env: [entry] });
      expect([entry, programsOf(c), c.unknownMatchesAll]).toEqual([entry, ['bash', 'ls', null], true]);
    }
    const prompt = await cmd('/containers/create', {
      Image: 'bash',
      Cmd: ['bash', '-c', 'ls'],
      Env: ['PS4=$(rm -rf /x)', 'SHELLOPTS=xtrace'],
    });
    expect(programsOf(prompt)).toEqual(['bash', 'ls', 'rm']);
  });

  it("leaves the image's own loader and startup variables to the image, as its files are", async () => {
    const c = await cmd('/containers/create', { Image: 'cuda', Cmd: ['ls'] });
    expect(programsOf(c)).toEqual(['ls']);
    expect(c.unknownMatchesAll).toBeUndefined();
    // The request's own are judged whatever the image sets.
    const own = await cmd('/containers/create', { Image: 'cuda', Cmd: ['ls'], Env: ['LD_PRELOAD=/x.so'] });
    expect(programsOf(own)).toEqual(['ls', null]);
  });

  it('leaves ordinary variables out of the facts, values and secrets alike', async () => {
    const c = await cmd('/containers/create', {
      Image: 'bash',
      Cmd: ['ls'],
      Env: ['PATH=/bin', 'DB_PASSWORD=hunter2', 'SHELLOPTS=xtrace'],
    });
    expect(c.exec).toEqual([{ program: 'ls', argv: ['ls'], text: 'ls' }]);
    expect(c.unknownMatchesAll).toBeUndefined();
    expect(JSON.stringify(c)).not.toContain('hunter2');
  });

  it('reads a value it cannot parse as unknown code', async () => {
    const c = await cmd('/containers/create', { Image: 'bash', Cmd: ['ls'], Env: ['PROMPT_COMMAND=('] });
    expect(programsOf(c)).toEqual(['ls', null]);
    expect(c.unanalysable).toBeUndefined();
  });
});

describe('an exec’s Env', () => {
  it('analyses its own Env and the container’s it starts with', async () => {
    expect(
      programsOf(await cmd('/containers/plain/exec', { Cmd: ['bash', '-c', 'ls'], Env: [FUNCTION] })),
    ).toEqual(['bash', 'ls', 'rm']);
    expect(programsOf(await cmd('/containers/tainted/exec', { Cmd: ['bash', '-c', 'ls'] }))).toContain('rm');
    const unset = await cmd('/containers/tainted/exec', { Cmd: ['ls'], Env: ['BASH_FUNC_ls%%'] });
    expect(programsOf(unset)).toEqual(['ls']);
  });

  it('refuses a loaded library when unknown programs are denied, and an Env it cannot parse', async () => {
    const body = { Cmd: ['ls'], Env: ['LD_PRELOAD=/tmp/x.so'] };
    expect((await cmd('/containers/plain/exec', body)).unknownMatchesAll).toBe(true);
    expect((await cmd('/containers/plain/exec', body, 'deny')).unanalysable).toMatch(/cannot be known/);
    const broken = await cmd('/containers/plain/exec', { Cmd: ['ls'], Env: ['PROMPT_COMMAND=('] });
    expect(broken.unanalysable).toMatch(/^exec Env cannot be parsed/);
  });
});

describe('environment merging', () => {
  it('puts the base entries the own ones do not name under them, as dockerd does', () => {
    expect(mergedEnv(['A=1', 'B'], ['A=0', 'B=2', 'C=3'])).toEqual(['A=1', 'B', 'C=3']);
    expect(mergedEnv([], ['C=3'])).toEqual(['C=3']);
  });

  it('reads an inspected container’s Config.Env', () => {
    const facts = factsOfInspectedContainer(parseGoJson(`{"Config":{"Image":"x","Env":["${'A=1'}"]}}`));
    expect(facts.env).toEqual(['A=1']);
  });
});
