import { afterEach, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { ClientRelay } from './client-relay.js';
import { openUpstream, type UpstreamTarget } from './upstream.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** AuthenticationOk, one ParameterStatus, BackendKeyData and ReadyForQuery: a server that trusts the gateway. */
function loginAnswer(): Buffer {
  const key = Buffer.alloc(8);
  key.writeInt32BE(4242, 0);
  key.writeInt32BE(99, 4);
  return Buffer.concat([
    message('R', Buffer.alloc(4)),
    message('S', Buffer.from('server_version\0 17\0')),
    message('K', key),
    message('Z', Buffer.from('I')),
  ]);
}

/** A fake PostgreSQL server: `onStartup` is given the socket once the first message (startup or SSLRequest) is in. */
async function fakeServer(onStartup: (socket: net.Socket, first: Buffer) => void): Promise<number> {
  const server = net.createServer((socket) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length < 4 || got.length < got.readInt32BE(0)) return;
      socket.off('data', onData);
      onStartup(socket, got);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function target(port: number, tls = false): UpstreamTarget {
  return { host: '127.0.0.1', port, user: 'app', password: 'pw', tls };
}

/** A connected TCP pair: `near` is the gateway's client socket, `far` the client program's. */
async function clientPair(): Promise<{ near: net.Socket; far: net.Socket }> {
  let accepted: (s: net.Socket) => void = () => {};
  const nearP = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const server = net.createServer((s) => accepted(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const far = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const near = await nearP;
  cleanups.push(() => {
    near.destroy();
    far.destroy();
    server.close();
  });
  return { near, far };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the upstream read into slabs', () => {
  it('logs in, then relays every byte in order to a client that reads late, pausing the upstream meanwhile', async () => {
    const total = 32 * 1024 * 1024;
    const payload = Buffer.alloc(total);
    for (let i = 0; i < total; i += 4) payload.writeUInt32BE(i, i);
    let server: net.Socket | undefined;
    const port = await fakeServer((socket) => {
      server = socket;
      socket.write(loginAnswer());
    });
    const conn = await openUpstream(target(port), { database: 'app' }, AbortSignal.timeout(5000), {
      slabReads: true,
    });
    cleanups.push(() => conn.socket.destroy());
    expect(conn.reads).toBeDefined();
    expect(conn.processId).toBe(4242);
    expect(conn.parameterStatus).toHaveLength(1);

    const { near, far } = await clientPair();
    far.pause();
    const io = new ClientRelay(near, { data: () => {}, end: () => {}, error: () => {}, close: () => {} });
    let relayed = 0;
    io.attachUpstream(conn.socket, conn.reads, {
      data: (chunk) => {
        relayed += chunk.length;
        io.writeClient(chunk);
      },
      error: () => {},
      close: () => {},
    });
    io.startUpstream();
    server!.write(payload);
    await sleep(300);
    // The client reads nothing: the gateway stopped reading the upstream rather than buffering all of it.
    expect(conn.socket.isPaused()).toBe(true);
    expect(relayed).toBeLessThan(total);
    const received: Buffer[] = [];
    let got = 0;
    await new Promise<void>((resolve) => {
      far.on('data', (d: Buffer) => {
        received.push(d);
        got += d.length;
        if (got >= total) resolve();
      });
      far.resume();
    });
    // Views of slabs waited in the client socket while later reads went on: none was written over.
    expect(Buffer.concat(received).equals(payload)).toBe(true);
  });

  it('leaves a TLS upstream to its own reads (the SSLRequest answer is read as before)', async () => {
    const port = await fakeServer((socket) => socket.write('N'));
    await expect(
      openUpstream(target(port, true), { database: 'app' }, AbortSignal.timeout(5000), { slabReads: true }),
    ).rejects.toThrow('upstream refused TLS');
  });
});
