/**
 * The Docker listener against clients that do not behave, with a real dockerd behind it: heads that never finish,
 * idle keep-alive connections, more unauthenticated connections than the caps allow, bad tokens (logged and
 * counted), HEAD replies without a body; and the docker CLI's connections of one command grouped into one session.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { gatewayRequest, rawExchange, runDocker, startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

let dockerd: TestDockerd;
let gw: TestGateway;
let token: string;

const portOf = (listener: string): number => (gw.address(listener) as { port: number }).port;

beforeAll(async () => {
  dockerd = await startDockerd();
  gw = await startTestGateway(`
listeners:
  - name: docker-timeouts
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
    headersTimeout: 1s
    keepAliveTimeout: 1s
  - name: docker-capped
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
    maxUnauthenticatedPerSource: 3
  - name: docker-grouped
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
    sessionLinger: 1s
  - name: docker-down
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${join(dockerd.dir, 'no-such-dockerd.sock')} }
`);
  token = await gw.token('devin', ['agents']);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await dockerd?.stop();
});

/** A TCP connection that collects what it receives and says when the gateway closed it. */
function openConnection(port: number): { socket: Socket; received: () => string; closed: Promise<number> } {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  const started = Date.now();
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

const connected = (socket: Socket): Promise<void> =>
  new Promise((resolve) => (socket.connecting ? socket.once('connect', () => resolve()) : resolve()));

describe('timeouts before and between requests', () => {
  it('answers a head that does not finish within headersTimeout with 408 and closes', async () => {
    const c = openConnection(portOf('docker-timeouts'));
    await connected(c.socket);
    c.socket.write('GET /containers/json HTTP/1.1\r\nHost: gw\r\n');
    const drip = setInterval(() => c.socket.write('X-Slow: yes\r\n'), 150);
    const elapsed = await c.closed;
    clearInterval(drip);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(c.received()).toContain('agentgate: request head not received in time');
    expect(elapsed).toBeGreaterThanOrEqual(900);
  }, 30_000);

  it('answers a connection that sends nothing with 408 at headersTimeout', async () => {
    const c = openConnection(portOf('docker-timeouts'));
    const elapsed = await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(elapsed).toBeGreaterThanOrEqual(900);
  }, 30_000);

  it('closes a keep-alive connection idle for keepAliveTimeout, silently, while other clients are served', async () => {
    const c = openConnection(portOf('docker-timeouts'));
    await connected(c.socket);
    c.socket.write('GET /_ping HTTP/1.1\r\nHost: gw\r\n\r\n');
    const version = await runDocker(['version', '--format', '{{.Server.Version}}'], {
      host: `tcp://127.0.0.1:${portOf('docker-timeouts')}`,
      token,
      scratch: dockerd.dir,
    });
    expect(version.code).toBe(0);
    await c.closed;
    const answers = c.received().match(/HTTP\/1\.1 \d+/g);
    expect(answers).toEqual(['HTTP/1.1 200']);
  }, 30_000);
});

describe('unauthenticated connections', () => {
  it('closes a source’s connections over maxUnauthenticatedPerSource; one that authenticates frees its slot', async () => {
    const port = portOf('docker-capped');
    const held = [openConnection(port), openConnection(port), openConnection(port)];
    // Each is served (a ping does not authenticate, so they still count).
    for (const c of held) c.socket.write('GET /_ping HTTP/1.1\r\nHost: gw\r\n\r\n');
    for (const c of held) await waitFor(() => c.received().includes('\r\n\r\nOK'));
    const refused = openConnection(port);
    await refused.closed;
    expect(refused.received()).toBe('');
    // One of them authenticates: its slot is free again.
    held[0]!.socket.write(
      `GET /containers/json HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    await waitFor(() => (held[0]!.received().match(/HTTP\/1\.1 200/g) ?? []).length === 2);
    const admitted = openConnection(port);
    admitted.socket.write('GET /_ping HTTP/1.1\r\nHost: gw\r\n\r\n');
    await waitFor(() => admitted.received().includes('\r\n\r\nOK'));
    for (const c of [...held, admitted]) c.socket.destroy();
  }, 30_000);
});

describe('authentication failures', () => {
  it('are answered 401 and counted by reason in agentgate_auth_failures_total', async () => {
    const port = portOf('docker-grouped');
    const before = await failureCounts('docker-grouped');
    expect((await gatewayRequest(port, 'GET', '/containers/json')).status).toBe(401);
    const bad = await gatewayRequest(port, 'GET', '/containers/json', { token: 'not-a-token' });
    expect(bad.status).toBe(401);
    expect(bad.body).toContain('agentgate: authentication failed');
    const after = await failureCounts('docker-grouped');
    expect((after['no-credential'] ?? 0) - (before['no-credential'] ?? 0)).toBe(1);
    expect((after['bad-token'] ?? 0) - (before['bad-token'] ?? 0)).toBe(1);
  });
});

describe('HEAD replies', () => {
  it('carry the headers of an error but no body (HEAD /_ping with dockerd down)', async () => {
    const head = await rawExchange(portOf('docker-down'), 'HEAD /_ping HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n/);
    expect(head).toMatch(/\r\nContent-Length: [1-9]\d*\r\n/);
    expect(head.endsWith('\r\n\r\n')).toBe(true);
    const get = await rawExchange(portOf('docker-down'), 'GET /_ping HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect(get).toContain('\r\n\r\n{"message":"agentgate: upstream unavailable"}');
  });
});

describe('sessions', () => {
  it('records one docker run as one session, and a command after the linger as another', async () => {
    const grouper = await gw.token('grouper', ['agents']);
    const cli = (args: string[]) =>
      runDocker(args, {
        host: `tcp://127.0.0.1:${portOf('docker-grouped')}`,
        token: grouper,
        scratch: dockerd.dir,
      });
    const run = await cli(['run', '--rm', '--network', 'none', dockerd.image, 'echo', 'grouped']);
    expect(run.stdout).toBe('grouped\n');
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect((await cli(['ps', '-q'])).code).toBe(0);
    await gw.store.flush();
    const sessions = gw.store.listSessions({ identity: 'grouper', listener: 'docker-grouped' });
    expect(sessions).toHaveLength(2);
    const actions = [...gw.store.events(sessions[0]!.id)]
      .filter((e) => e.type === 'result')
      .map((e) => e['action']);
    expect(actions).toEqual(
      expect.arrayContaining(['container.create', 'container.attach', 'container.start', 'container.wait']),
    );
    expect(sessions[0]!.endedAt).not.toBeNull();
  }, 60_000);
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `agentgate_auth_failures_total` by reason for one Docker listener, from /metrics. */
async function failureCounts(listener: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  const re = new RegExp(
    `^agentgate_auth_failures_total\\{listener="${listener}",protocol="docker",reason="([a-z-]+)"\\} (\\d+)$`,
    'gm',
  );
  for (const m of text.matchAll(re)) counts[m[1]!] = Number(m[2]);
  return counts;
}
