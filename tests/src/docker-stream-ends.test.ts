/**
 * The Docker relay at the ends of streams, against a real dockerd and raw clients on the gateway's unix socket
 * (small socket buffers, so what the gateway still holds is what matters): a streamed upload (PUT archive) the
 * client stops inside its body, a client that half-closes or leaves while dockerd has not answered (`wait`), and a
 * large answer to a client that reads only after the answer ended. Each compared with dockerd's own behaviour.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { runCli } from './harness/cli.js';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

let dockerd: TestDockerd;
let gw: TestGateway;
let gatewaySocket: string;
let stopped = false;

beforeAll(async () => {
  dockerd = await startDockerd();
  gatewaySocket = join(dockerd.dir, 'gw.sock');
  gw = await startTestGateway(`
listeners:
  - name: docker
    protocol: docker
    listen: unix:${gatewaySocket}
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
    sessionLinger: 200ms
  - name: docker-tcp
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
    sessionLinger: 200ms
`);
}, 60_000);

afterAll(async () => {
  if (!stopped) await gw?.stop();
  await dockerd?.stop();
  if (gw) await rm(gw.dir, { recursive: true, force: true });
});

interface Conn {
  readonly socket: Socket;
  received(): Buffer;
  readonly closed: Promise<void>;
}

/** A unix socket path, or the gateway's TCP listener (`tcp`). */
function open(path: string): Promise<Conn> {
  const socket =
    path === 'tcp'
      ? connect({
          host: '127.0.0.1',
          port: (gw.address('docker-tcp') as { port: number }).port,
          allowHalfOpen: true,
        })
      : connect({ path, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  // The server is done with the connection once it ended its side (the client here keeps its own open).
  const closed = new Promise<void>((resolve) => {
    socket.on('end', () => resolve());
    socket.on('close', () => resolve());
  });
  return new Promise((resolve) =>
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks), closed })),
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, sleep(ms).then(() => 'timeout' as const)]);

async function container(name: string, ...cmd: string[]): Promise<void> {
  const r = await dockerd.docker(['run', '-d', '--name', name, '--network', 'none', dockerd.image, ...cmd]);
  expect(r.code).toBe(0);
}

/** The events of `identity`'s sessions, once the store has them. */
async function eventsOf(identity: string): Promise<Record<string, unknown>[]> {
  await gw.store.flush();
  return gw.store
    .listSessions({ protocol: 'docker' })
    .filter((s) => s.identity === identity)
    .flatMap((s) => [...gw.store.events(s.id)] as Record<string, unknown>[]);
}

async function sessionEnded(identity: string, ms = 5000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100))
    if ((await eventsOf(identity)).some((e) => e.type === 'session.end')) return true;
  return false;
}

const head = (path: string, method: string, token: string | undefined, extra = ''): string =>
  `${method} ${path} HTTP/1.1\r\nHost: docker\r\n` +
  (token ? `Authorization: Bearer ${token}\r\n` : '') +
  `${extra}\r\n`;

describe('a streamed upload the client stops inside its body', () => {
  /** PUT archive announcing 1 MB, 100 kB sent, then `stop`; what came back. */
  async function truncatedUpload(path: string, token: string | undefined, stop: 'half-close' | 'leave') {
    const c = await open(path);
    c.socket.write(
      head(
        '/containers/upload/archive?path=/tmp',
        'PUT',
        token,
        'Content-Type: application/x-tar\r\nContent-Length: 1000000\r\n',
      ),
    );
    c.socket.write(Buffer.alloc(100_000, 0));
    await sleep(300);
    if (stop === 'half-close') c.socket.end();
    else c.socket.destroy();
    const closed = await within(c.closed, 8000);
    c.socket.destroy();
    return { closed, answer: c.received().toString('latin1') };
  }

  beforeAll(() => container('upload', 'sleep', '300'));

  it('half-closed: dockerd answers the truncated body, the client gets that answer and the record says so', async () => {
    const direct = await truncatedUpload(dockerd.socket, undefined, 'half-close');
    expect(direct.closed).toBeUndefined();
    expect(direct.answer).toMatch(/^HTTP\/1\.1 500 [^]*unexpected EOF/);
    const token = await gw.token('uploader', ['agents']);
    const through = await truncatedUpload(gatewaySocket, token, 'half-close');
    expect(through.closed).toBeUndefined();
    expect(through.answer).toMatch(/^HTTP\/1\.1 500 [^]*unexpected EOF/);
    expect(await sessionEnded('uploader')).toBe(true);
    const result = (await eventsOf('uploader')).find(
      (e) => e.type === 'result' && e.action === 'container.archive' && e.method === 'PUT',
    );
    expect(result).toMatchObject({ method: 'PUT', status: 500 });
  }, 30_000);

  it('left: dockerd stops waiting for the body, the session ends and the container is free again', async () => {
    const token = await gw.token('leaver', ['agents']);
    await truncatedUpload(gatewaySocket, token, 'leave');
    expect(await sessionEnded('leaver')).toBe(true);
    // dockerd holds the container while it extracts an upload: a copy out of it works only once that one ended.
    const out = await dockerd.docker(['cp', 'upload:/bin/busybox', join(dockerd.dir, 'copied')], {
      timeoutMs: 10_000,
    });
    expect(out.code).toBe(0);
  }, 30_000);
});

describe('a client that ends while dockerd has not answered', () => {
  /** POST wait on a running container, then `stop`; what came back, and how soon the connection closed. */
  async function abandonedWait(
    path: string,
    token: string | undefined,
    stop: 'half-close' | 'leave' | 'reset',
  ) {
    const c = await open(path);
    c.socket.write(head('/containers/waiting/wait', 'POST', token, 'Content-Length: 0\r\n'));
    await sleep(500);
    if (stop === 'half-close') c.socket.end();
    else if (stop === 'leave') c.socket.destroy();
    else c.socket.resetAndDestroy();
    const closed = await within(c.closed, 5000);
    c.socket.destroy();
    return { closed, answer: c.received().toString('latin1') };
  }

  beforeAll(() => container('waiting', 'sleep', '300'));

  it('half-closed: the FIN reaches dockerd, which ends the wait as for a direct client', async () => {
    const direct = await abandonedWait(dockerd.socket, undefined, 'half-close');
    const token = await gw.token('waiter', ['agents']);
    const through = await abandonedWait(gatewaySocket, token, 'half-close');
    expect(through.closed).toBe(direct.closed);
    expect(await sessionEnded('waiter')).toBe(true);
  }, 30_000);

  it('left: dockerd sees the client gone and the session ends', async () => {
    const token = await gw.token('gone', ['agents']);
    await abandonedWait(gatewaySocket, token, 'leave');
    expect(await sessionEnded('gone')).toBe(true);
  }, 30_000);

  it('reset (no FIN): the gateway drops its dockerd connection and the session ends', async () => {
    const token = await gw.token('reset', ['agents']);
    await abandonedWait('tcp', token, 'reset');
    expect(await sessionEnded('reset')).toBe(true);
  }, 30_000);
});

describe('a large answer to a client that reads only after it ended', () => {
  /**
   * The archive of a 700 kB file with `Connection: close`, read only after `lateMs`: the bytes that came. Less than
   * the relay's high-water mark, so the gateway takes all of it from dockerd and only has to flush it.
   */
  async function lateRead(path: string, token: string | undefined, lateMs: number): Promise<Buffer> {
    const c = await open(path);
    c.socket.pause();
    c.socket.write(head('/containers/late/archive?path=/tmp/payload', 'GET', token, 'Connection: close\r\n'));
    await sleep(lateMs);
    c.socket.resume();
    await within(c.closed, 10_000);
    c.socket.destroy();
    const all = c.received();
    return all.subarray(all.indexOf('\r\n\r\n') + 4);
  }

  beforeAll(async () => {
    await container(
      'late',
      'sh',
      '-c',
      'head -c 700000 /dev/urandom > /tmp/payload.part && mv /tmp/payload.part /tmp/payload; sleep 300',
    );
    for (let i = 0; i < 50; i++) {
      if ((await dockerd.docker(['exec', 'late', 'ls', '/tmp/payload'])).code === 0) return;
      await sleep(100);
    }
  });

  it('gets all of it, as from dockerd', async () => {
    const direct = await lateRead(dockerd.socket, undefined, 0);
    expect(direct.length).toBeGreaterThan(700_000);
    const token = await gw.token('late-reader', ['agents']);
    const through = await lateRead(gatewaySocket, token, 11_000);
    expect(through.length).toBe(direct.length);
    expect(through.equals(direct)).toBe(true);
  }, 40_000);
});

describe('what already held: the ends of a hijacked stream', () => {
  beforeAll(() => container('stdin', 'sleep', '300'));

  it('exec -i: all of a large stdin reaches the process before its end, and all its output comes back', async () => {
    const token = await gw.token('stdin-writer', ['agents']);
    const input = Buffer.alloc(8_000_000, 'x');
    const r = await dockerd.docker(
      ['exec', '-i', 'stdin', 'sh', '-c', 'wc -c; head -c 3000000 /dev/zero | wc -c'],
      {
        host: `unix://${gatewaySocket}`,
        token,
        input,
      },
    );
    expect(r.stdout.split(/\s+/).filter(Boolean)).toEqual(['8000000', '3000000']);
    expect(r.code).toBe(0);
  }, 60_000);
});

describe('the record of all of the above', () => {
  it('verifies after the gateway stopped', async () => {
    stopped = true;
    await gw.stop({ keepFiles: true });
    const verified = await runCli(['verify', '--config', gw.configFile, '--json']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, problems: [] });
  }, 60_000);
});
