/**
 * A container's environment can make its shell run code: bash imports `BASH_FUNC_name%%` values as functions and
 * sources `BASH_ENV`, an interactive busybox sh sources `ENV`. Each is first shown to work on a real dockerd (an
 * image with the host's bash and busybox), then shown to be judged by the gateway's `programs: [rm]` rule, in a
 * create's `Env`, an image's `ENV` and an exec's `Env`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gatewayRequest, startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

const SHELLS_IMAGE = 'agentgate-test/shells:1';
const SOURCED = '/etc/agentgate-sourced.sh';
const NO_RM = '{"message":"agentgate: denied by rule no-rm"}';
const NO_RM_UNKNOWN =
  '{"message":"agentgate: denied by rule no-rm (it runs a program that cannot be known before it runs, so it counts as matching every rule)"}';

let dockerd: TestDockerd;
let gw: TestGateway;
let token: string;
let port: number;

/** The host's bash with the libraries `ldd` names, busybox for sh/rm/sleep, and a file a shell can be made to source. */
async function importShellsImage(): Promise<void> {
  const root = join(dockerd.dir, 'shells-rootfs');
  const place = (hostPath: string, at = hostPath): void => {
    mkdirSync(dirname(join(root, at)), { recursive: true });
    copyFileSync(hostPath, join(root, at));
  };
  const bash = execFileSync('sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).trim();
  place(bash, '/bin/bash');
  for (const lib of execFileSync('ldd', [bash], { encoding: 'utf8' }).matchAll(/(\/\S+) \(0x/g)) {
    place(lib[1]!);
  }
  place('/usr/bin/busybox', '/bin/busybox');
  for (const applet of ['sh', 'rm', 'sleep', 'ls', 'true']) symlinkSync('busybox', join(root, 'bin', applet));
  mkdirSync(join(root, 'tmp'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, SOURCED), 'echo sourced-file-ran\n');
  const tar = join(dockerd.dir, 'shells.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  expect((await dockerd.docker(['import', tar, SHELLS_IMAGE])).code).toBe(0);
}

beforeAll(async () => {
  dockerd = await startDockerd();
  await importShellsImage();
  gw = await startTestGateway(`
listeners:
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
rules:
  - name: no-rm
    protocol: docker
    match: { programs: [rm] }
    action: deny
`);
  port = (gw.address('docker') as { port: number }).port;
  token = await gw.token('devin', ['agents']);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await dockerd?.stop();
});

/** Run straight on dockerd, bypassing the gateway: what the process really does with this environment. */
async function runDirect(env: string, entrypoint: string, args: string[]): Promise<string> {
  const ran = await dockerd.docker([
    'run',
    '--rm',
    '--network',
    'none',
    '-e',
    env,
    '--entrypoint',
    entrypoint,
    SHELLS_IMAGE,
    ...args,
  ]);
  return ran.stdout;
}

const create = (body: object) =>
  gatewayRequest(port, 'POST', '/v1.41/containers/create', { token, body: JSON.stringify(body) });

describe('a container’s environment makes its shell run code', () => {
  it('does so on dockerd itself: bash functions, BASH_ENV, and ENV for an interactive sh', async () => {
    expect(await runDirect('BASH_FUNC_ls%%=() { echo imported-function-ran; }', 'bash', ['-c', 'ls'])).toBe(
      'imported-function-ran\n',
    );
    expect(await runDirect(`BASH_ENV=${SOURCED}`, 'bash', ['-c', 'true'])).toBe('sourced-file-ran\n');
    expect(await runDirect(`ENV=${SOURCED}`, 'sh', ['-i', '-c', 'true'])).toContain('sourced-file-ran\n');
  }, 60_000);

  it('is judged at create: the body’s Env and the image’s', async () => {
    for (const [entrypoint, env, denial] of [
      [['bash', '-c', 'ls'], ['BASH_FUNC_ls%%=() { rm -rf /tmp; }'], NO_RM],
      [['bash', '-c', 'ls'], [`BASH_ENV=${SOURCED}`], NO_RM_UNKNOWN],
      [['sh', '-i', '-c', 'ls'], [`ENV=${SOURCED}`], NO_RM_UNKNOWN],
      [['ls'], ['LD_PRELOAD=/tmp/x.so'], NO_RM_UNKNOWN],
    ] as const) {
      const res = await create({ Image: SHELLS_IMAGE, Entrypoint: entrypoint, Env: env });
      expect([env, res.status, res.body.trim()]).toEqual([env, 403, denial]);
    }
    const base = await dockerd.docker(['create', '--network', 'none', SHELLS_IMAGE, 'true']);
    // An image's own functions are judged (they change what the named command runs); its loader and startup
    // variables are the image's, as its files are.
    const commit = (change: string, tag: string) =>
      dockerd.docker(['commit', '--change', change, base.stdout.trim(), tag]);
    expect(
      (await commit('ENV BASH_FUNC_ls%%="() { rm -rf /tmp; }"', 'agentgate-test/env-image:1')).code,
    ).toBe(0);
    expect((await commit('ENV LD_LIBRARY_PATH=/usr/local/lib', 'agentgate-test/env-image:2')).code).toBe(0);
    const fromImage = await create({ Image: 'agentgate-test/env-image:1', Entrypoint: ['bash', '-c', 'ls'] });
    expect([fromImage.status, fromImage.body.trim()]).toEqual([403, NO_RM]);
    const libraries = await create({
      Image: 'agentgate-test/env-image:2',
      Entrypoint: ['ls'],
      HostConfig: { NetworkMode: 'none' },
    });
    expect(libraries.status).toBe(201);
    const ok = await create({
      Image: SHELLS_IMAGE,
      Entrypoint: ['bash', '-c', 'ls'],
      Env: ['PATH=/bin', 'BASH_FUNC_ls%%=() { echo hi; }'],
      HostConfig: { NetworkMode: 'none' },
    });
    expect(ok.status).toBe(201);
    await dockerd.docker([
      'rm',
      '-f',
      base.stdout.trim(),
      (JSON.parse(ok.body) as { Id: string }).Id,
      (JSON.parse(libraries.body) as { Id: string }).Id,
    ]);
  }, 60_000);

  it('is judged at exec: the exec’s Env and the container’s', async () => {
    const plain = await dockerd.docker(['run', '-d', '--network', 'none', SHELLS_IMAGE, 'sleep', '60']);
    const tainted = await dockerd.docker([
      'run',
      '-d',
      '--network',
      'none',
      '-e',
      'BASH_FUNC_ls%%=() { rm -rf /tmp; }',
      SHELLS_IMAGE,
      'sleep',
      '60',
    ]);
    const exec = (id: string, body: object) =>
      gatewayRequest(port, 'POST', `/v1.41/containers/${id.trim()}/exec`, {
        token,
        body: JSON.stringify(body),
      });
    const fn = await exec(plain.stdout, {
      Cmd: ['bash', '-c', 'ls'],
      Env: ['BASH_FUNC_ls%%=() { rm -rf /tmp; }'],
    });
    expect([fn.status, fn.body.trim()]).toEqual([403, NO_RM]);
    const inherited = await exec(tainted.stdout, { Cmd: ['bash', '-c', 'ls'] });
    expect([inherited.status, inherited.body.trim()]).toEqual([403, NO_RM]);
    expect((await exec(plain.stdout, { Cmd: ['bash', '-c', 'ls'], Env: ['A=1'] })).status).toBe(201);
    await dockerd.docker(['rm', '-f', plain.stdout.trim(), tainted.stdout.trim()]);
  }, 60_000);
});
