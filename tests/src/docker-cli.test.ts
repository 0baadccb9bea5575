/**
 * The Docker listener against a real dockerd, driven by the real docker CLI and dockerode: run, exec (with and
 * without -i, with -t), logs, inspect (Env masked), cp, rm, denials, bad tokens, approvals and the transcript.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Docker from 'dockerode';
import http from 'node:http';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gatewayRequest, startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

let dockerd: TestDockerd;
let gw: TestGateway;
let token: string;
let host: string;
let port: number;

const cli = (args: string[], opts: { input?: string; token?: string } = {}) =>
  dockerd.docker(args, {
    host,
    token: opts.token ?? token,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });

beforeAll(async () => {
  dockerd = await startDockerd();
  gw = await startTestGateway(`
listeners:
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
masking:
  - name: pii
    detectors: [email]
    replacement: "[email]"
approvals:
  timeout: 30s
  approvers: [group:dba]
rules:
  - name: no-privileged
    protocol: docker
    match: { privileged: true }
    action: deny
  - name: no-host-etc
    protocol: docker
    match: { hostMounts: [/etc] }
    action: deny
  - name: no-rm
    protocol: docker
    match: { programs: [rm] }
    action: deny
  - name: tags-need-review
    protocol: docker
    match: { actions: [image.tag] }
    action: approve
`);
  const addr = gw.address('docker') as { host: string; port: number };
  port = addr.port;
  host = `tcp://127.0.0.1:${port}`;
  token = await gw.token('devin', ['agents']);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await dockerd?.stop();
});

describe('docker CLI through agentgate', () => {
  it('answers _ping without a token, with the upstream API-Version header', async () => {
    const res = await gatewayRequest(port, 'HEAD', '/_ping');
    expect(res.status).toBe(200);
    expect(res.headers['api-version']).toBeDefined();
  });

  it('runs a container and prints its output', async () => {
    const r = await cli(['run', '--rm', '--network', 'none', dockerd.image, 'echo', 'hello from busybox']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello from busybox\n');
    expect(r.code).toBe(0);
  });

  it('execs with and without -i and -t, shows logs, inspect with masked Env, cp and rm', async () => {
    const run = await cli([
      'run',
      '-d',
      '--name',
      'worker',
      '--network',
      'none',
      '-e',
      'DB_PASSWORD=hunter2',
      '-e',
      'NOTE=plain',
      '-e',
      'CONTACT=alice@example.com',
      dockerd.image,
      'sh',
      '-c',
      'echo started; sleep 300',
    ]);
    expect(run.code).toBe(0);
    const plain = await cli(['exec', 'worker', 'echo', 'no stdin']);
    expect(plain).toMatchObject({ code: 0, stdout: 'no stdin\n' });
    const withStdin = await cli(['exec', '-i', 'worker', 'cat'], { input: 'piped through stdin\n' });
    expect(withStdin).toMatchObject({ code: 0, stdout: 'piped through stdin\n' });
    const tty = await cli(['exec', '-t', 'worker', 'echo', 'tty']);
    expect(tty.stdout).toBe('tty\r\n');
    const logs = await cli(['logs', 'worker']);
    expect(logs.stdout).toBe('started\n');
    const inspect = await cli(['inspect', 'worker']);
    expect(inspect.code).toBe(0);
    const env = (JSON.parse(inspect.stdout) as { Config: { Env: string[] } }[])[0]!.Config.Env;
    expect(env).toContain('DB_PASSWORD=****');
    expect(env).toContain('NOTE=plain');
    expect(env.find((e) => e.startsWith('CONTACT='))).not.toContain('alice@example.com');
    expect(inspect.stdout).not.toContain('hunter2');
    const file = join(dockerd.dir, 'payload.txt');
    await writeFile(file, 'copied in and out\n');
    expect((await cli(['cp', file, 'worker:/tmp/payload.txt'])).code).toBe(0);
    const back = join(dockerd.dir, 'back.txt');
    expect((await cli(['cp', 'worker:/tmp/payload.txt', back])).code).toBe(0);
    expect(await readFile(back, 'utf8')).toBe('copied in and out\n');
    expect((await cli(['rm', '-f', 'worker'])).code).toBe(0);
  }, 60_000);

  it('denies privileged containers, host mounts and exec programs with the rule name', async () => {
    const priv = await cli(['run', '--rm', '--network', 'none', '--privileged', dockerd.image, 'true']);
    expect(priv.code).not.toBe(0);
    expect(priv.stderr).toContain('agentgate: denied by rule no-privileged');
    const mount = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      '/etc:/host-etc',
      dockerd.image,
      'true',
    ]);
    expect(mount.stderr).toContain('agentgate: denied by rule no-host-etc');
    const mount2 = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      '--mount',
      'type=bind,source=/etc,target=/x',
      dockerd.image,
      'true',
    ]);
    expect(mount2.stderr).toContain('agentgate: denied by rule no-host-etc');
    await cli(['run', '-d', '--name', 'target', '--network', 'none', dockerd.image, 'sleep', '300']);
    const rm = await cli(['exec', 'target', 'sh', '-c', 'cd /tmp && rm -rf x']);
    expect(rm.stderr).toContain('agentgate: denied by rule no-rm');
    await cli(['rm', '-f', 'target']);
  }, 60_000);

  it('treats exec into a privileged container as privileged', async () => {
    // Created straight on dockerd, around the gateway (this sandbox cannot start privileged containers, but the
    // gateway decides from the container's HostConfig before dockerd would look at its state).
    const direct = await dockerd.docker([
      'create',
      '--name',
      'privbox',
      '--privileged',
      '--network',
      'none',
      dockerd.image,
      'sleep',
      '300',
    ]);
    expect(direct.code).toBe(0);
    const r = await cli(['exec', 'privbox', 'echo', 'hi']);
    expect(r.stderr).toContain('agentgate: denied by rule no-privileged');
    // Joining its namespaces is as good as being it.
    const join = await cli(['create', '--network', 'container:privbox', dockerd.image, 'true']);
    expect(join.stderr).toContain('agentgate: denied by rule no-privileged');
    const pid = await cli([
      'create',
      '--network',
      'none',
      '--pid',
      'container:privbox',
      dockerd.image,
      'true',
    ]);
    expect(pid.stderr).toContain('agentgate: denied by rule no-privileged');
    await dockerd.docker(['rm', '-f', 'privbox']);
  }, 30_000);

  it('refuses a bad token (401) and an identity not allowed (403)', async () => {
    const bad = await cli(['ps'], { token: 'not-a-token' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('agentgate:');
    expect((await gatewayRequest(port, 'GET', '/containers/json', { token: 'nope' })).status).toBe(401);
    expect((await gatewayRequest(port, 'GET', '/containers/json')).status).toBe(401);
    const outsider = await gw.token('mallory', ['others']);
    expect((await gatewayRequest(port, 'GET', '/containers/json', { token: outsider })).status).toBe(403);
  });

  it('holds a request for approval until an approver approves it', async () => {
    const tagging = cli(['tag', dockerd.image, 'agentgate-test/busybox:approved']);
    const approver = await gw.token('dana', ['dba']);
    let pending: { id: string }[] = [];
    for (let i = 0; i < 100 && pending.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const res = await fetch(`${gw.adminUrl}/api/approvals`, {
        headers: { authorization: `Bearer ${approver}` },
      });
      pending = (await res.json()) as { id: string }[];
    }
    expect(pending).toHaveLength(1);
    const ok = await fetch(`${gw.adminUrl}/api/approvals/${pending[0]!.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(ok.status).toBeLessThan(300);
    const r = await tagging;
    expect(r.code).toBe(0);
    const images = await dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stdout).toContain('agentgate-test/busybox:approved');
  }, 30_000);

  it('withdraws a held request when the client goes away', async () => {
    const approver = await gw.token('dana', ['dba']);
    const pendingCount = async (): Promise<number> => {
      const res = await fetch(`${gw.adminUrl}/api/approvals`, {
        headers: { authorization: `Bearer ${approver}` },
      });
      return ((await res.json()) as unknown[]).length;
    };
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: `/v1.41/images/${dockerd.image}/tag?repo=agentgate-test/busybox&tag=withdrawn`,
      headers: { authorization: `Bearer ${token}`, 'content-length': '0' },
    });
    req.on('error', () => {});
    req.end();
    for (let i = 0; i < 100 && (await pendingCount()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await pendingCount()).toBe(1);
    req.destroy();
    for (let i = 0; i < 100 && (await pendingCount()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await pendingCount()).toBe(0);
  }, 30_000);

  it('attaches stdin with docker run -i and follows logs until the container exits', async () => {
    const r = await cli(['run', '-i', '--rm', '--network', 'none', dockerd.image, 'cat'], {
      input: 'line one\nline two\n',
    });
    expect(r).toMatchObject({ code: 0, stdout: 'line one\nline two\n' });
    await cli([
      'run',
      '-d',
      '--name',
      'ticker',
      '--network',
      'none',
      dockerd.image,
      'sh',
      '-c',
      'for i in 1 2 3; do echo tick $i; sleep 0.3; done',
    ]);
    const follow = await cli(['logs', '-f', 'ticker']);
    expect(follow.stdout).toBe('tick 1\ntick 2\ntick 3\n');
    await cli(['rm', '-f', 'ticker']);
  }, 30_000);

  it('builds with the classic builder through the gateway', async () => {
    const ctx = join(dockerd.dir, 'build-ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM ${dockerd.image}\nENV API_TOKEN=s3cr3t-build\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n`,
    );
    await writeFile(join(ctx, 'hello.txt'), 'built through agentgate\n');
    const r = await cli(['build', '--network', 'none', '-t', 'agentgate-test/built:1', ctx]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('built through agentgate');
    const out = await cli([
      'run',
      '--rm',
      '--network',
      'none',
      'agentgate-test/built:1',
      'cat',
      '/hello.txt',
    ]);
    expect(out.stdout).toBe('built through agentgate\n');
    const inspect = await cli(['image', 'inspect', 'agentgate-test/built:1']);
    expect(inspect.stdout).toContain('API_TOKEN=****');
    expect(inspect.stdout).not.toContain('s3cr3t-build');
  }, 60_000);

  it('works with dockerode', async () => {
    const client = new Docker({
      host: '127.0.0.1',
      port,
      protocol: 'http',
      headers: { Authorization: `Bearer ${token}` },
    } as Docker.DockerOptions);
    const container = await client.createContainer({
      Image: dockerd.image,
      Cmd: ['sh', '-c', 'echo out; echo err >&2'],
      HostConfig: { NetworkMode: 'none' },
    });
    await container.start();
    await container.wait();
    const logs = await container.logs({ stdout: true, stderr: true });
    expect(logs.toString('latin1')).toContain('out');
    expect(logs.toString('latin1')).toContain('err');
    const list = await client.listContainers({ all: true });
    expect(list.some((c) => c.Id === container.id)).toBe(true);
    await container.remove();
    await expect(
      client.createContainer({ Image: dockerd.image, HostConfig: { Privileged: true, NetworkMode: 'none' } }),
    ).rejects.toMatchObject({ statusCode: 403 });
  }, 30_000);

  it('ends an exec stream when the token it was authorized with expires', async () => {
    const run = await cli([
      'run',
      '-d',
      '--name',
      'expiry',
      '--network',
      'none',
      dockerd.image,
      'sleep',
      '300',
    ]);
    expect(run.code).toBe(0);
    const shortLived = await gw.token('devin', ['agents'], 8);
    const started = Date.now();
    const r = await cli(['exec', 'expiry', 'sh', '-c', 'echo started; sleep 30; echo finished'], {
      token: shortLived,
    });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.stdout).toBe('started\n');
    expect(r.code).not.toBe(0);
    // The same token is no longer good for new requests either.
    expect((await cli(['ps'], { token: shortLived })).code).not.toBe(0);
    expect((await cli(['rm', '-f', 'expiry'])).code).toBe(0);
    await gw.store.flush();
    const expired = gw.store
      .listSessions({ protocol: 'docker' })
      .flatMap((s) => [...gw.store.events(s.id)])
      .filter((e) => e.type === 'error' && e['event'] === 'identity.expired');
    expect(expired.length).toBeGreaterThan(0);
  }, 30_000);

  it('records commands, decisions, results and exec output in the transcript', async () => {
    await cli(['run', '--rm', '--network', 'none', dockerd.image, 'echo', 'recorded-output']);
    await gw.store.flush();
    const sessions = gw.store.listSessions({ protocol: 'docker' });
    expect(sessions.length).toBeGreaterThan(0);
    let sawOutput = false;
    let sawDenied = false;
    let sawResult = false;
    for (const s of sessions) {
      for (const e of gw.store.events(s.id)) {
        if (
          e.type === 'io' &&
          typeof e.data === 'string' &&
          Buffer.from(e.data, 'base64').toString().includes('recorded-output')
        )
          sawOutput = true;
        if (e.type === 'command' && JSON.stringify(e['decision']).includes('no-privileged')) sawDenied = true;
        if (e.type === 'result' && e.action === 'container.create' && typeof e.status === 'number')
          sawResult = true;
        expect(JSON.stringify(e)).not.toContain('hunter2');
        expect(JSON.stringify(e)).not.toContain('alice@example.com');
      }
    }
    expect(sawResult).toBe(true);
    expect(sawDenied).toBe(true);
    expect(sawOutput).toBe(true);
  }, 30_000);

  it('masks with the rules of the last reload on a keep-alive connection opened before it', async () => {
    const run = await cli([
      'run',
      '-d',
      '--name',
      'reloadee',
      '--network',
      'none',
      '-e',
      'CONTACT=bob@example.com',
      dockerd.image,
      'sleep',
      '300',
    ]);
    expect(run.code).toBe(0);
    // One socket for every request: a dockerode-style client keeps its connection across the reloads.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const contact = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path: '/containers/reloadee/json',
            agent,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            sockets.add(res.socket);
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => {
              const env = (JSON.parse(body) as { Config: { Env: string[] } }).Config.Env;
              resolve(env.find((e) => e.startsWith('CONTACT='))!);
            });
          },
        );
        req.on('error', reject);
        req.end();
      });
    const original = gw.gateway.config;
    try {
      expect(await contact()).toBe('CONTACT=[email]');
      await gw.gateway.reload({ ...original, masking: [] });
      expect(await contact()).toBe('CONTACT=bob@example.com');
      await gw.gateway.reload(original);
      expect(await contact()).toBe('CONTACT=[email]');
      expect(sockets.size).toBe(1);
    } finally {
      await gw.gateway.reload(original);
      agent.destroy();
      await cli(['rm', '-f', 'reloadee']);
    }
  }, 30_000);
});
