/**
 * Host namespaces one by one, on a real dockerd started with `--default-cgroupns-mode host` (it then reports
 * `CgroupnsMode: host` for every container, as a stock dockerd does on cgroup v1 hosts): `hostNamespaces: true`
 * means the namespaces that break isolation, so ordinary containers can still be exec'd into; a rule naming
 * `cgroup` refuses them. Both for a container being created and for one inspected before an exec.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

let dockerd: TestDockerd;
let gw: TestGateway;
let token: string;

beforeAll(async () => {
  dockerd = await startDockerd({ defaultCgroupnsMode: 'host' });
  for (const args of [
    ['--name', 'plain'],
    ['--name', 'hostpid', '--pid', 'host'],
  ]) {
    const r = await dockerd.docker([
      'run',
      '-d',
      ...args,
      '--network',
      'none',
      dockerd.image,
      'sleep',
      '300',
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  gw = await startTestGateway(`
listeners:
  - name: isolation
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
  - name: cgroup
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
rules:
  - { name: no-host-namespaces, listeners: [isolation], match: { hostNamespaces: true }, action: deny }
  - { name: no-host-cgroupns, listeners: [cgroup], match: { hostNamespaces: [cgroup] }, action: deny }
`);
  token = await gw.token('devin', ['agents']);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await dockerd?.stop();
});

const through = (listener: string, args: string[]) => {
  const { port } = gw.address(listener) as { port: number };
  return dockerd.docker(args, { host: `tcp://127.0.0.1:${port}`, token });
};

describe('a daemon that reports the host cgroup namespace for every container', () => {
  it('does report it (the precondition of this suite)', async () => {
    const inspect = await dockerd.docker(['inspect', '--format', '{{.HostConfig.CgroupnsMode}}', 'plain']);
    expect(inspect.stdout.trim()).toBe('host');
  });

  it('hostNamespaces: true lets an exec into an ordinary container run', async () => {
    expect(await through('isolation', ['exec', 'plain', 'echo', 'inside'])).toMatchObject({
      code: 0,
      stdout: 'inside\n',
    });
    await gw.store.flush();
    const commands = gw.store
      .listSessions({ protocol: 'docker' })
      .filter((s) => s.listener === 'isolation')
      .flatMap((s) => [...gw.store.events(s.id)])
      .filter((e) => e.type === 'command' && e['action'] === 'container.exec');
    expect(commands.at(-1)?.['hostNamespaces']).toEqual(['cgroup']);
  });

  it('hostNamespaces: true refuses an exec into a container sharing the host pid namespace', async () => {
    const r = await through('isolation', ['exec', 'hostpid', 'echo', 'inside']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('agentgate: denied by rule no-host-namespaces');
  });

  it('hostNamespaces: true judges a container being created by the namespaces it asks for', async () => {
    const plain = await through('isolation', [
      'run',
      '--rm',
      '--network',
      'none',
      dockerd.image,
      'echo',
      'ok',
    ]);
    expect(plain).toMatchObject({ code: 0, stdout: 'ok\n' });
    const hostNetwork = await through('isolation', [
      'run',
      '--rm',
      '--network',
      'host',
      dockerd.image,
      'true',
    ]);
    expect(hostNetwork.stderr).toContain('agentgate: denied by rule no-host-namespaces');
    const hostCgroup = await through('isolation', [
      'run',
      '--rm',
      '--network',
      'none',
      '--cgroupns',
      'host',
      dockerd.image,
      'echo',
      'ok',
    ]);
    expect(hostCgroup).toMatchObject({ code: 0, stdout: 'ok\n' });
  });

  it('a rule naming cgroup refuses the exec, and a container asking for the host cgroup namespace', async () => {
    const exec = await through('cgroup', ['exec', 'plain', 'echo', 'inside']);
    expect(exec.code).not.toBe(0);
    expect(exec.stderr).toContain('agentgate: denied by rule no-host-cgroupns');
    const create = await through('cgroup', [
      'run',
      '--rm',
      '--network',
      'none',
      '--cgroupns',
      'host',
      dockerd.image,
      'true',
    ]);
    expect(create.stderr).toContain('agentgate: denied by rule no-host-cgroupns');
    const privateCgroup = await through('cgroup', [
      'run',
      '--rm',
      '--network',
      'none',
      '--cgroupns',
      'private',
      dockerd.image,
      'echo',
      'ok',
    ]);
    expect(privateCgroup).toMatchObject({ code: 0, stdout: 'ok\n' });
  });
});
