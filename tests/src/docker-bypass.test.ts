/**
 * Every way around the Docker rules we know of, tried over raw HTTP against a real dockerd behind the gateway:
 * encoded paths, version prefixes, JSON key case and duplicates, legacy top-level HostConfig fields, Mounts vs
 * Binds, local bind volumes, smuggling (CL+TE, duplicate CL, bad chunks), pipelining, body limits, a unix socket
 * listener with a fixed identity.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { gatewayRequest, rawExchange, startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

let dockerd: TestDockerd;
let gw: TestGateway;
let token: string;
let port: number;
let unixPath: string;

beforeAll(async () => {
  dockerd = await startDockerd();
  unixPath = join(dockerd.dir, 'gw.sock');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dockerd.dir, 'tls-key.pem'),
      '-out',
      join(dockerd.dir, 'tls-cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  gw = await startTestGateway(`
identity:
  tokens: [{ name: ci-bot, sha256: "${'0'.repeat(64)}", groups: [agents] }]
listeners:
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    maxBodyBytes: 65536
    upstream: { socket: ${dockerd.socket} }
  - name: docker-tls
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    tls: { cert: ${join(dockerd.dir, 'tls-cert.pem')}, key: ${join(dockerd.dir, 'tls-key.pem')} }
    upstream: { socket: ${dockerd.socket} }
  - name: docker-unix
    protocol: docker
    listen: unix:${unixPath}
    identity: ci-runner
    allow: [identity:ci-runner]
    upstream: { socket: ${dockerd.socket} }
  - name: docker-unix-bot
    protocol: docker
    listen: unix:${unixPath}.bot
    identity: ci-bot
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
rules:
  - name: no-srv
    protocol: docker
    match: { hostMounts: [/srv] }
    action: deny
  - name: no-rm
    protocol: docker
    match: { programs: [rm] }
    action: deny
  - name: no-privileged
    protocol: docker
    match: { privileged: true }
    action: deny
  - name: no-host-mounts
    protocol: docker
    match: { hostMounts: [/] }
    action: deny
  - name: no-host-ns
    protocol: docker
    match: { hostNamespaces: true }
    action: deny
  - name: no-sys-admin
    protocol: docker
    match: { capabilities: [SYS_ADMIN] }
    action: deny
  - name: no-plugins
    protocol: docker
    match: { actions: [plugin.*] }
    action: deny
`);
  port = (gw.address('docker') as { port: number }).port;
  token = await gw.token('devin', ['agents']);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await dockerd?.stop();
});

const create = (path: string, body: string) => gatewayRequest(port, 'POST', path, { token, body });
const image = () => dockerd.image;

describe('bypass forms are decided as dockerd reads them', () => {
  it.each([
    ['key case', () => `{"Image":"${image()}","hostconfig":{"privileged":true}}`, 'no-privileged'],
    [
      'duplicate keys (last wins)',
      () => `{"Image":"${image()}","HostConfig":{"Privileged":false,"Privileged":true}}`,
      'no-privileged',
    ],
    [
      'mixed-case duplicate',
      () => `{"Image":"${image()}","HostConfig":{"Privileged":false,"PRIVILEGED":true}}`,
      'no-privileged',
    ],
    ['legacy top-level field', () => `{"Image":"${image()}","Privileged":true}`, 'no-privileged'],
    [
      'unicode-folded key',
      () => `{"Image":"${image()}","HostConfig":{"Bind\u017f":["/:/host"]}}`,
      'no-host-mounts',
    ],
    ['Binds', () => `{"Image":"${image()}","HostConfig":{"Binds":["/etc:/x:ro"]}}`, 'no-host-mounts'],
    [
      'Mounts bind',
      () => `{"Image":"${image()}","HostConfig":{"Mounts":[{"Type":"bind","Source":"/root","Target":"/x"}]}}`,
      'no-host-mounts',
    ],
    [
      'Mounts local bind volume',
      () =>
        `{"Image":"${image()}","HostConfig":{"Mounts":[{"Type":"volume","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}]}}`,
      'no-host-mounts',
    ],
    [
      'Devices',
      () =>
        `{"Image":"${image()}","HostConfig":{"Devices":[{"PathOnHost":"/dev/mem","PathInContainer":"/dev/mem"}]}}`,
      'no-host-mounts',
    ],
    ['PidMode host', () => `{"Image":"${image()}","HostConfig":{"PidMode":"host"}}`, 'no-host-ns'],
    ['NetworkMode host', () => `{"Image":"${image()}","HostConfig":{"NetworkMode":"host"}}`, 'no-host-ns'],
    ['CapAdd', () => `{"Image":"${image()}","HostConfig":{"CapAdd":["CAP_SYS_ADMIN"]}}`, 'no-sys-admin'],
  ])('%s', async (_name, body, rule) => {
    const res = await create('/v1.41/containers/create', body());
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ message: `agentgate: denied by rule ${rule}` });
  });

  it.each([
    ['Binds', (src: string) => `{"Image":"${image()}","HostConfig":{"Binds":["${src}:/x"]}}`],
    [
      'Mounts',
      (src: string) =>
        `{"Image":"${image()}","HostConfig":{"Mounts":[{"Type":"bind","Source":"${src}","Target":"/x"}]}}`,
    ],
  ])('judges %s host paths as dockerd cleans them before mounting', async (_name, body) => {
    for (const src of ['//srv', '/./srv', '/tmp/../srv', '/srv/./']) {
      const res = await create('/v1.41/containers/create', body(src));
      expect([src, res.status, res.body.trim()]).toEqual([
        src,
        403,
        '{"message":"agentgate: denied by rule no-srv"}',
      ]);
    }
  });

  it('judges the commands a container runs as dockerd completes them from its image', async () => {
    // An image whose ENTRYPOINT is a shell and whose health check removes files, made directly on dockerd.
    const base = await dockerd.docker(['create', '--network', 'none', image(), 'true']);
    const made = await dockerd.docker([
      'commit',
      '--change',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      '--change',
      'HEALTHCHECK CMD rm -rf /tmp/x',
      base.stdout.trim(),
      'agentgate-test/shell-entry:1',
    ]);
    expect(made.code).toBe(0);
    const denied = (body: object) => create('/v1.41/containers/create', JSON.stringify(body));
    for (const body of [
      // The image's ENTRYPOINT makes this Cmd a shell script.
      { Image: 'agentgate-test/shell-entry:1', Cmd: ['rm -rf /tmp'], Healthcheck: { Test: ['NONE'] } },
      // The image's health check runs rm in the container.
      { Image: 'agentgate-test/shell-entry:1', Cmd: ['true'] },
      // A health check of the body's own.
      { Image: image(), Cmd: ['true'], Healthcheck: { Test: ['CMD', 'rm', '-rf', '/tmp'] } },
      { Image: image(), Cmd: ['true'], Healthcheck: { Test: ['CMD-SHELL', 'rm -rf /tmp'] } },
    ]) {
      const res = await denied(body);
      expect([body, res.status, res.body.trim()]).toEqual([
        body,
        403,
        '{"message":"agentgate: denied by rule no-rm"}',
      ]);
    }
    const ok = await denied({
      Image: 'agentgate-test/shell-entry:1',
      Cmd: ['ls /'],
      Healthcheck: { Test: ['NONE'] },
    });
    expect(ok.status).toBe(201);
    await dockerd.docker(['rm', '-f', base.stdout.trim(), (JSON.parse(ok.body) as { Id: string }).Id]);
  });

  it('judges the network mode a classic build runs its RUN steps in', async () => {
    const context = join(dockerd.dir, 'build-context');
    mkdirSync(context, { recursive: true });
    writeFileSync(join(context, 'Dockerfile'), `FROM ${image()}\nRUN true\n`);
    const tar = execFileSync('tar', ['-C', context, '-cf', '-', 'Dockerfile']);
    const headers = { 'content-type': 'application/x-tar' };
    const host = await gatewayRequest(
      port,
      'POST',
      '/v1.41/build?networkmode=host&t=agentgate-test/hostnet',
      {
        token,
        body: tar,
        headers,
      },
    );
    expect([host.status, host.body.trim()]).toEqual([
      403,
      '{"message":"agentgate: denied by rule no-host-ns"}',
    ]);
    const none = await gatewayRequest(port, 'POST', '/v1.41/build?networkmode=none&t=agentgate-test/nonet', {
      token,
      body: tar,
      headers,
    });
    expect(none.status).toBe(200);
  });

  it('decodes the path once and ignores any version prefix', async () => {
    const body = `{"Image":"${image()}","HostConfig":{"Privileged":true}}`;
    for (const path of [
      '/containers/create',
      '/v1.24/containers/create',
      '/v1/containers/create',
      '/containers/%63reate',
      '/v1.41/%63ontainers/create',
    ]) {
      expect((await create(path, body)).status).toBe(403);
    }
  });

  it('refuses non-canonical paths with 400', async () => {
    for (const path of [
      '//containers/create',
      '/containers/../containers/create',
      '/containers%2Fcreate',
      '/v1.41/containers/x%2e%2e/json',
      '/containers/./create',
    ]) {
      expect((await gatewayRequest(port, 'POST', path, { token, body: '{}' })).status).toBe(400);
    }
  });

  it('judges the HostConfig of a legacy start (API < 1.24)', async () => {
    const created = await create(
      '/v1.41/containers/create',
      `{"Image":"${image()}","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}`,
    );
    expect(created.status).toBe(201);
    const id = (JSON.parse(created.body) as { Id: string }).Id;
    const start = await gatewayRequest(port, 'POST', `/v1.23/containers/${id}/start`, {
      token,
      body: '{"Privileged":true}',
    });
    expect(start.status).toBe(403);
    expect((await gatewayRequest(port, 'DELETE', `/containers/${id}?force=1`, { token })).status).toBe(204);
  });

  it('denies a volume created as a host bind, and unknown routes', async () => {
    const vol = await create(
      '/volumes/create',
      '{"Name":"sneaky","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/etc"}}',
    );
    expect(vol.status).toBe(403);
    // The local driver hands its options to mount(2): an overlay of host directories mounts them as surely.
    const overlay = await create(
      '/volumes/create',
      '{"Name":"sneaky2","Driver":"local","DriverOpts":{"type":"overlay","device":"overlay","o":"lowerdir=/srv,upperdir=/tmp/u,workdir=/tmp/w"}}',
    );
    expect([overlay.status, overlay.body.trim()]).toEqual([
      403,
      '{"message":"agentgate: denied by rule no-srv"}',
    ]);
    const unknown = await gatewayRequest(port, 'GET', '/v1.41/nonexistent/route', { token });
    expect(unknown.status).toBe(403);
    expect(JSON.parse(unknown.body).message).toMatch(/^agentgate: /);
    expect((await gatewayRequest(port, 'GET', '/plugins', { token })).status).toBe(403);
  });

  it('refuses form-encoded bodies (Go would read them as query values)', async () => {
    const res = await gatewayRequest(
      port,
      'POST',
      `/images/create?fromImage=${encodeURIComponent(image())}`,
      {
        token,
        body: 'fromImage=evil',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
    );
    expect(res.status).toBe(400);
  });
});

describe('HTTP framing', () => {
  const auth = () => `Authorization: Bearer ${token}\r\n`;
  it('refuses Content-Length with Transfer-Encoding, duplicate lengths and bad chunks', async () => {
    const cases = [
      `POST /containers/create HTTP/1.1\r\nHost: x\r\n${auth()}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `POST /containers/create HTTP/1.1\r\nHost: x\r\n${auth()}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}`,
      `POST /containers/create HTTP/1.1\r\nHost: x\r\n${auth()}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `GET /containers/json HTTP/1.1\nHost: x\r\n${auth()}\r\n`,
    ];
    for (const c of cases) {
      const out = await rawExchange(port, c);
      expect(out).toMatch(/^HTTP\/1\.1 400 /);
      expect(out.match(/HTTP\/1\.1/g)).toHaveLength(1);
    }
  });

  it('re-checks the token whenever it changes on a keep-alive connection', async () => {
    // The connection caches the last verified Authorization header; a different one is verified and admitted anew.
    const outsider = await gw.token('outsider', ['others']);
    const version = (authorization: string, close = false): string =>
      `GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: ${authorization}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
    const bad = await rawExchange(
      port,
      version(`Bearer ${token}`) + version(`Bearer ${token}`) + version('Bearer not-a-token', true),
    );
    expect([...bad.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['200', '200', '401']);
    const other = await rawExchange(port, version(`Bearer ${token}`) + version(`Bearer ${outsider}`, true));
    expect([...other.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])).toEqual(['200', '403']);
  });

  it('answers pipelined requests one at a time, in order, and decides a chunked body', async () => {
    const body = `{"Image":"${image()}","HostConfig":{"Privileged":true}}`;
    const chunked = `${(10).toString(16)}\r\n${body.slice(0, 10)}\r\n${(body.length - 10).toString(16)}\r\n${body.slice(10)}\r\n0\r\n\r\n`;
    const out = await rawExchange(
      port,
      `GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n` +
        `POST /containers/create HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}` +
        `GET /version HTTP/1.1\r\nHost: x\r\n${auth()}Connection: close\r\n\r\n`,
    );
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '403', '200']);
    expect(out).toContain('"ApiVersion"');
  });

  it('refuses bodies over maxBodyBytes with 413', async () => {
    const big = JSON.stringify({ Image: image(), Labels: { pad: 'x'.repeat(70_000) } });
    expect((await create('/containers/create', big)).status).toBe(413);
  });
});

describe('unix socket listener with a fixed identity', () => {
  const get = (method: string, path: string, body?: string, socketPath = unixPath) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { socketPath, method, path, headers: body ? { 'content-type': 'application/json' } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it('serves without a token and still decides', async () => {
    expect((await get('GET', '/containers/json')).status).toBe(200);
    expect(
      (await get('POST', '/containers/create', `{"Image":"${image()}","HostConfig":{"Privileged":true}}`))
        .status,
    ).toBe(403);
    // listSessions reads committed records only: wait for the group commit.
    await gw.store.flush();
    const sessions = gw.store.listSessions({ identity: 'ci-runner' });
    expect(sessions.length).toBeGreaterThan(0);
  });

  it('acts with the groups of the configured identity it names (allow: [group:agents])', async () => {
    expect((await get('GET', '/containers/json', undefined, `${unixPath}.bot`)).status).toBe(200);
    await gw.store.flush();
    expect(gw.store.listSessions({ identity: 'ci-bot' }).length).toBeGreaterThan(0);
  });
});

describe('TLS and BuildKit', () => {
  it('serves TLS on a TCP listener with tls (docker --tlsverify and https)', async () => {
    const { port: tlsPort } = gw.address('docker-tls') as { port: number };
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: tlsPort,
          path: '/v1.41/containers/json',
          rejectUnauthorized: false,
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    const r = await dockerd.docker(['--tlsverify', '--tlscacert', join(dockerd.dir, 'tls-cert.pem'), 'ps'], {
      host: `tcp://127.0.0.1:${tlsPort}`,
      token,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CONTAINER ID');
  });

  it('denies BuildKit builds and sessions with a clear message', async () => {
    const build = await gatewayRequest(port, 'POST', '/v1.41/build?version=2&t=x', { token, body: '' });
    expect(build.status).toBe(403);
    expect(JSON.parse(build.body).message).toMatch(/DOCKER_BUILDKIT=0/);
    const session = await gatewayRequest(port, 'POST', '/session', {
      token,
      headers: { upgrade: 'h2c', connection: 'Upgrade' },
    });
    expect(session.status).toBe(403);
  });
});
