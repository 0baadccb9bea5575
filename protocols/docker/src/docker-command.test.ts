import { describe, expect, it } from '@jest/globals';
import type { DockerListenerConfig } from '@agentgate/core';
import { factsOfInspectedContainer, type ContainerFacts, type UpstreamLookup } from './body-facts.js';
import { parseGoJson } from './go-json.js';
import { buildDockerCommand } from './docker-command.js';
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
const privilegedBox: ContainerFacts = {
  privileged: true,
  hostMounts: ['/'],
  hostNamespaces: ['pid', 'network'],
  capabilities: ['SYS_ADMIN'],
  image: 'docker.io/library/busybox:latest',
};
const lookup: UpstreamLookup = {
  container: async (name) =>
    name === 'priv'
      ? privilegedBox
      : name === 'plain'
        ? { privileged: false, hostMounts: [], hostNamespaces: [], capabilities: [] }
        : name === 'cgroupv1'
          ? { privileged: false, hostMounts: [], hostNamespaces: ['cgroup'], capabilities: [] }
          : undefined,
  volumeHostPaths: async (name) => (name === 'bindvol' ? ['/etc'] : []),
  imageDefaults: async (ref) =>
    ref === 'shell-entry'
      ? { entrypoint: ['/bin/sh', '-c'], healthcheck: ['CMD-SHELL', 'rm -rf /tmp/x'] }
      : ref === 'with-cmd'
        ? { cmd: ['rm', '-rf', '/data'] }
        : undefined,
};

async function cmd(method: string, target: string, body?: unknown) {
  const request = canonicalizeTarget(method, target);
  const raw =
    body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return buildDockerCommand({ request, route: classifyRoute(request), body: raw, listener, lookup });
}

describe('container create facts', () => {
  it('reads HostConfig fields', async () => {
    const c = await cmd('POST', '/v1.41/containers/create', {
      Image: 'busybox',
      Cmd: ['sh', '-c', 'echo hi'],
      HostConfig: {
        Binds: ['/var/run/docker.sock:/s', 'named:/n', 'bindvol:/b'],
        CapAdd: ['cap_sys_admin'],
        PidMode: 'host',
        Devices: [{ PathOnHost: '/dev/sda' }],
        SecurityOpt: ['seccomp=unconfined'],
      },
    });
    expect(c).toMatchObject({
      action: 'container.create',
      privileged: false,
      hostNamespaces: ['pid'],
      images: ['docker.io/library/busybox:latest'],
    });
    expect(c.hostMounts).toEqual(expect.arrayContaining(['/var/run/docker.sock', '/etc', '/dev/sda']));
    expect(c.capabilities).toEqual(expect.arrayContaining(['SYS_ADMIN', 'SECCOMP_UNCONFINED']));
    expect(c.exec?.length).toBeGreaterThan(0);
  });
  it.each([
    ['key case', '{"Image":"busybox","hostconfig":{"PRIVILEGED":true}}'],
    ['last duplicate wins', '{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}'],
    ['legacy top-level field', '{"Image":"busybox","Privileged":true}'],
    ['merged duplicate HostConfig', '{"HostConfig":{"Privileged":true},"HostConfig":{"Memory":1}}'],
    ['CapAdd ALL', '{"HostConfig":{"CapAdd":["all"]}}'],
    ['joining a privileged container', '{"HostConfig":{"NetworkMode":"container:priv"}}'],
    ['systempaths', '{"HostConfig":{"SecurityOpt":["systempaths=unconfined"]}}'],
  ])('sees privileged through %s', async (_n, body) => {
    expect((await cmd('POST', '/containers/create', body)).privileged).toBe(true);
  });
  it('reads Mounts (bind and local bind volumes) and VolumesFrom', async () => {
    const c = await cmd('POST', '/containers/create', {
      HostConfig: {
        Mounts: [
          { Type: 'bind', Source: '/root', Target: '/r' },
          {
            Type: 'volume',
            Source: 'v',
            Target: '/v',
            VolumeOptions: {
              DriverConfig: { Name: 'local', Options: { type: 'none', o: 'bind', device: '/home' } },
            },
          },
        ],
        VolumesFrom: ['priv:ro'],
      },
    });
    expect(c.hostMounts).toEqual(expect.arrayContaining(['/root', '/home', '/']));
  });
  it('reads host paths as dockerd mounts them, cleaned (//etc, /./etc and /tmp/../etc are /etc)', async () => {
    const c = await cmd('POST', '/containers/create', {
      HostConfig: {
        Binds: ['//etc:/a', '/tmp/../root:/b'],
        Mounts: [{ Type: 'bind', Source: '/./home', Target: '/c' }],
        Devices: [{ PathOnHost: '/dev/./mem' }],
      },
    });
    expect([...c.hostMounts].sort()).toEqual(['/dev/mem', '/etc', '/home', '/root']);
    const v = await cmd('POST', '/volumes/create', {
      Driver: 'local',
      DriverOpts: { type: 'none', o: 'bind', device: '/var/../etc' },
    });
    expect(v.hostMounts).toEqual(['/etc']);
  });
  it.each([
    ['a bind', { type: 'none', o: 'bind', device: '/etc' }, ['/etc']],
    ['a host block device', { type: 'ext4', device: '/dev/vda', o: 'ro' }, ['/dev/vda']],
    [
      'overlay directories',
      { type: 'overlay', device: 'overlay', o: 'lowerdir=/etc:/root,upperdir=/tmp/u,workdir=/tmp/w' },
      ['/etc', '/root', '/tmp/u', '/tmp/w'],
    ],
    ['tmpfs', { type: 'tmpfs', device: 'tmpfs', o: 'size=100m' }, []],
    ['an NFS share', { type: 'nfs', device: ':/export', o: 'addr=10.0.0.1' }, []],
  ])('sees the host paths a local volume mounts: %s', async (_n, DriverOpts, paths) => {
    const v = await cmd('POST', '/volumes/create', { Driver: 'local', DriverOpts });
    expect([...v.hostMounts].sort()).toEqual(paths);
  });
  it.each([
    ['the image ENTRYPOINT runs Cmd as a script', { Image: 'shell-entry', Cmd: ['rm -rf /data'] }, 'rm'],
    ['a create without Cmd runs the image CMD', { Image: 'with-cmd' }, 'rm'],
    ['a null Entrypoint is the image one', { Image: 'shell-entry', Entrypoint: null, Cmd: ['rm x'] }, 'rm'],
    ['the image health check', { Image: 'shell-entry', Entrypoint: [], Cmd: ['true'] }, 'rm'],
    [
      'a CMD health check',
      { Image: 'busybox', Cmd: ['true'], Healthcheck: { Test: ['CMD', 'rm', '/x'] } },
      'rm',
    ],
    [
      'a CMD-SHELL health check run by the container Shell',
      { Image: 'busybox', Cmd: ['true'], Shell: ['rm', '-rf'], Healthcheck: { Test: ['CMD-SHELL', '/x'] } },
      'rm',
    ],
  ])('sees the programs a container runs: %s', async (_n, body, program) => {
    const c = await cmd('POST', '/containers/create', body);
    expect(c.exec?.map((e) => e.program)).toContain(program);
  });
  it('an emptied Entrypoint ("", [] or [""]) leaves the image ENTRYPOINT out; NONE runs no health check', async () => {
    for (const Entrypoint of ['', [], ['']]) {
      const c = await cmd('POST', '/containers/create', {
        Image: 'shell-entry',
        Entrypoint,
        Cmd: ['ls', '/'],
        Healthcheck: { Test: ['NONE'] },
      });
      expect(c.exec?.map((e) => e.program)).toEqual(['ls']);
    }
  });
  it('judges the network mode of a classic build (its RUN steps run in it)', async () => {
    expect((await cmd('POST', '/v1.41/build?networkmode=host&t=x')).hostNamespaces).toEqual(['network']);
    expect((await cmd('POST', '/v1.41/build?networkmode=container:priv')).privileged).toBe(true);
    expect((await cmd('POST', '/v1.41/build?networkmode=none')).hostNamespaces).toEqual([]);
  });
  it('reads an inspected container (exec into it) as it reads a create body', () => {
    const hostConfig = {
      CapAdd: ['sys_admin'],
      Devices: [{ PathOnHost: '/dev/kmsg' }],
      DeviceCgroupRules: ['c 1:3 rwm'],
      PidMode: 'host',
      SecurityOpt: [' label=disable', 'seccomp=unconfined'],
    };
    const facts = factsOfInspectedContainer(
      parseGoJson(
        JSON.stringify({
          HostConfig: hostConfig,
          Mounts: [{ Type: 'bind', Source: '/etc' }],
          Config: { Image: 'busybox' },
        }),
      ),
    );
    expect(facts).toMatchObject({
      privileged: true,
      hostNamespaces: ['pid'],
      image: 'docker.io/library/busybox:latest',
    });
    expect(facts.capabilities).toEqual(
      expect.arrayContaining(['SYS_ADMIN', 'LABEL_DISABLE', 'SECCOMP_UNCONFINED']),
    );
    expect(facts.hostMounts).toEqual(expect.arrayContaining(['/dev/kmsg', '/etc']));
  });

  it('reports each host namespace by name, in a fixed order, whatever the field order or case', async () => {
    const c = await cmd('POST', '/containers/create', {
      HostConfig: {
        CgroupnsMode: 'host',
        UTSMode: 'HOST',
        UsernsMode: 'host',
        IpcMode: 'host',
        NetworkMode: 'host',
        PidMode: 'host',
      },
    });
    expect(c.hostNamespaces).toEqual(['pid', 'network', 'ipc', 'uts', 'userns', 'cgroup']);
    const isolated = await cmd('POST', '/containers/create', {
      HostConfig: { CgroupnsMode: 'private', IpcMode: 'shareable', NetworkMode: 'none', PidMode: '' },
    });
    expect(isolated.hostNamespaces).toEqual([]);
    // A legacy top-level field and the HostConfig one are united.
    expect(
      (await cmd('POST', '/containers/create', { NetworkMode: 'host', HostConfig: { CgroupnsMode: 'host' } }))
        .hostNamespaces,
    ).toEqual(['network', 'cgroup']);
  });

  it('reads the cgroup namespace dockerd reports for every container on cgroup v1 as `cgroup` alone', () => {
    const facts = factsOfInspectedContainer(
      parseGoJson(JSON.stringify({ HostConfig: { CgroupnsMode: 'host', NetworkMode: 'none' } })),
    );
    expect(facts.hostNamespaces).toEqual(['cgroup']);
  });

  it('judges a legacy start body like a create', async () => {
    expect((await cmd('POST', '/v1.23/containers/x/start', { Privileged: true })).privileged).toBe(true);
    expect((await cmd('POST', '/containers/x/start')).privileged).toBe(false);
  });
  it('marks bad JSON and unknown routes unanalysable', async () => {
    expect((await cmd('POST', '/containers/create', '{"Image":')).unanalysable).toMatch(/JSON/);
    expect(
      (await cmd('POST', '/containers/create', '{"Image":"a"}{"Privileged":true}')).unanalysable,
    ).toMatch(/JSON/);
    expect((await cmd('GET', '/whatever')).unanalysable).toMatch(/unknown API route/);
  });
});

describe('exec facts', () => {
  it('parses Cmd and inherits the target container', async () => {
    const c = await cmd('POST', '/containers/priv/exec', { Cmd: ['cat', '/etc/passwd'] });
    expect(c).toMatchObject({
      action: 'container.exec',
      privileged: true,
      hostNamespaces: ['pid', 'network'],
    });
    expect(c.exec?.[0]).toMatchObject({ program: 'cat' });
    const p = await cmd('POST', '/containers/plain/exec', { Cmd: ['ls'], privileged: true });
    expect(p.privileged).toBe(true);
    expect((await cmd('POST', '/containers/plain/exec', { Cmd: 'ls' })).unanalysable).toBeDefined();
    expect((await cmd('POST', '/containers/cgroupv1/exec', { Cmd: ['ls'] })).hostNamespaces).toEqual([
      'cgroup',
    ]);
    // Joining another container's namespaces brings what that container shares with the host.
    expect(
      (await cmd('POST', '/containers/create', { HostConfig: { NetworkMode: 'container:priv' } }))
        .hostNamespaces,
    ).toEqual(['pid', 'network']);
  });
  it('unwraps sh -c and handles programs unknown before run time per unknownPrograms', async () => {
    const c = await cmd('POST', '/containers/plain/exec', { Cmd: ['sh', '-c', 'cd /tmp && rm -rf x'] });
    expect(c.exec?.map((e) => e.program)).toContain('rm');
    const dynamic = await cmd('POST', '/containers/plain/exec', { Cmd: ['sh', '-c', '$PROG -rf x'] });
    expect(dynamic.unknownMatchesAll).toBe(true);
    expect(dynamic.unanalysable).toBeUndefined();
    const strict = await buildDockerCommand({
      request: canonicalizeTarget('POST', '/containers/plain/exec'),
      route: classifyRoute(canonicalizeTarget('POST', '/containers/plain/exec')),
      body: Buffer.from(JSON.stringify({ Cmd: ['sh', '-c', '$PROG -rf x'] })),
      listener: { ...listener, unknownPrograms: 'deny' },
      lookup,
    });
    expect(strict.unanalysable).toMatch(/cannot be known/);
  });
  it('reads volume create bind options and pulls', async () => {
    expect(
      (
        await cmd('POST', '/volumes/create', {
          Name: 'x',
          DriverOpts: { type: 'none', o: 'bind', device: '/etc' },
        })
      ).hostMounts,
    ).toEqual(['/etc']);
    expect((await cmd('POST', '/images/create?fromImage=busybox&tag=1.36')).images).toEqual([
      'docker.io/library/busybox:1.36',
    ]);
  });
});
