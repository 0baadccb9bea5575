import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { type ClientInfo, silentLogger } from '@agentgate/core';
import { type ClientSocket, clientSocket } from './client-socket.js';
import { SocketReader } from './socket-reader.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const tick = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const TCP: ClientInfo = { address: '127.0.0.1', local: true, tls: false };
const UNIX: ClientInfo = { address: 'unix', local: true, tls: false };

/**
 * A listener made as the gateway makes the Docker one (half-open allowed), its accepted connection turned into the
 * connection's socket by `clientSocket`, and the peer connected to it, over TCP or a unix socket.
 */
async function accept(
  transport: 'tcp' | 'unix',
  secureContext?: tls.SecureContext,
): Promise<{ server: net.Server; accepted: net.Socket; served: ClientSocket; peer: net.Socket }> {
  let got: (s: net.Socket) => void = () => {};
  const acceptedP = new Promise<net.Socket>((resolve) => (got = resolve));
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => got(s));
  let peer: net.Socket;
  if (transport === 'unix') {
    const dir = mkdtempSync(join(tmpdir(), 'docker-client-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'docker.sock');
    await new Promise<void>((resolve) => server.listen(path, resolve));
    peer = net.connect({ path, allowHalfOpen: true });
  } else {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    peer = net.connect({
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      allowHalfOpen: true,
    });
  }
  const accepted = await acceptedP;
  const served = clientSocket(accepted, transport === 'unix' ? UNIX : TCP, secureContext, silentLogger);
  cleanups.push(() => {
    peer.destroy();
    served.socket.destroy();
    accepted.destroy();
    server.close();
  });
  return { server, accepted, served, peer };
}

/** The connection's reader as the Docker connection makes it (session.ts). */
function readerOf(served: ClientSocket): SocketReader {
  const { socket, reads } = served;
  return new SocketReader(socket, reads, reads ? socket.readableHighWaterMark : 0);
}

function received(socket: net.Socket): { text: () => string; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  return { text: () => Buffer.concat(chunks).toString(), ended };
}

describe.each(['tcp', 'unix'] as const)('a plain Docker client connection (%s)', (transport) => {
  it('is read into slabs, and the listener’s socket stays its handle on the connection', async () => {
    const { server, accepted, served } = await accept(transport);
    expect(served.reads).toBeDefined();
    expect(served.secure).toBeUndefined();
    expect(served.socket).not.toBe(accepted);
    // The listener counts the accepted socket: destroying the served one must let it close.
    served.socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(accepted.destroyed).toBe(true);
  });

  it('reads pipelined requests in order, and answers after the client half-closed (docker exec without -i)', async () => {
    const { served, peer } = await accept(transport);
    const reader = readerOf(served);
    const back = received(peer);
    peer.write('GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n');
    peer.end('GET /c HTTP/1.1\r\n\r\n');
    const got: Buffer[] = [];
    for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) got.push(chunk);
    expect(Buffer.concat(got).toString()).toBe(
      'GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n',
    );
    served.socket.end('the answers');
    await back.ended;
    expect(back.text()).toBe('the answers');
  });

  it('sees the client’s FIN while a request is decided, with bytes already read ahead and nobody waiting', async () => {
    const { served, peer } = await accept(transport);
    const reader = readerOf(served);
    peer.write('GET /a HTTP/1.1\r\n\r\n');
    expect((await reader.read())?.toString()).toBe('GET /a HTTP/1.1\r\n\r\n');
    // Deciding: nobody reads. A pipelined request, then the FIN (session.ts withdraws a held request on 'end').
    const ended = new Promise<void>((resolve) => served.socket.once('end', () => resolve()));
    peer.write('GET /b HTTP/1.1\r\n\r\n');
    await tick();
    peer.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no end while deciding')), 2000);
    });
    await Promise.race([ended, late]).finally(() => clearTimeout(timer));
    expect((await reader.read())?.toString()).toBe('GET /b HTTP/1.1\r\n\r\n');
    expect(await reader.read()).toBeNull();
  });

  it('stops reading a client nobody reads past its high-water mark, and reads the rest in order later', async () => {
    const { served, peer } = await accept(transport);
    const reader = readerOf(served);
    peer.write('POST /build HTTP/1.1\r\n\r\n');
    expect((await reader.read())?.toString()).toBe('POST /build HTTP/1.1\r\n\r\n');
    // Sending to dockerd, which has not drained: nobody reads the client.
    const sent = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < sent.length; i += 4) sent.writeUInt32BE(i, i);
    peer.write(sent);
    await tick(100);
    // A read lands in at most one slab's tail (64 KiB) past the read-ahead.
    expect(reader.buffered).toBeGreaterThan(0);
    expect(reader.buffered).toBeLessThanOrEqual(served.socket.readableHighWaterMark + 64 * 1024);
    const got: Buffer[] = [];
    let n = 0;
    while (n < sent.length) {
      const chunk = await reader.read();
      if (chunk === null) throw new Error('ended early');
      got.push(chunk);
      n += chunk.length;
    }
    expect(Buffer.concat(got).equals(sent)).toBe(true);
  });

  it('hands a hijacked stream to the socket’s own stream: held bytes first, then the rest, then the client’s end', async () => {
    const { served, peer } = await accept(transport);
    const reader = readerOf(served);
    peer.write('POST /exec/x/start HTTP/1.1\r\n\r\n');
    expect((await reader.read())?.toString()).toBe('POST /exec/x/start HTTP/1.1\r\n\r\n');
    peer.write('stdin one;');
    await tick();
    const { pending, ended } = reader.detach();
    expect(ended).toBe(false);
    const stream = received(served.socket as net.Socket);
    served.socket.resume();
    peer.end('stdin two');
    await stream.ended;
    expect(Buffer.concat(pending).toString() + stream.text()).toBe('stdin one;stdin two');
    // Half-closed by the client, the output still reaches it.
    const back = received(peer);
    served.socket.end('output');
    await back.ended;
    expect(back.text()).toBe('output');
  });

  it('a client that closes: the reader sees the end, and ending our side closes both sockets', async () => {
    const { accepted, served, peer } = await accept(transport);
    const reader = readerOf(served);
    const closed = new Promise<void>((resolve) => served.socket.once('close', () => resolve()));
    peer.end('GET /a HTTP/1.1\r\n\r\n');
    expect((await reader.read())?.toString()).toBe('GET /a HTTP/1.1\r\n\r\n');
    expect(await reader.read()).toBeNull();
    served.socket.end();
    await closed;
    await tick();
    expect(accepted.destroyed).toBe(true);
  });
});

describe('a reset Docker client connection', () => {
  it('a reset TCP client errors and closes the served socket and the listener’s', async () => {
    const { accepted, served, peer } = await accept('tcp');
    const reader = readerOf(served);
    const closed = new Promise<void>((resolve) => served.socket.once('close', () => resolve()));
    peer.write('GET /a HTTP/1.1\r\n\r\n');
    await reader.read();
    peer.resetAndDestroy();
    await reader.read().catch(() => null);
    await closed;
    await tick();
    expect(accepted.destroyed).toBe(true);
  });
});

describe('a Docker listener that terminates TLS', () => {
  it('wraps the accepted socket in TLS and leaves its reads to the TLS layer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'docker-client-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1'].concat([
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]),
      { stdio: 'ignore' },
    );
    const secureContext = tls.createSecureContext({
      cert: readFileSync(join(dir, 'cert.pem')),
      key: readFileSync(join(dir, 'key.pem')),
    });
    const { accepted, served, peer } = await accept('tcp', secureContext);
    expect(served.reads).toBeUndefined();
    expect(served.secure).toBe(served.socket);
    expect(served.info.tls).toBe(true);
    const reader = readerOf(served);
    const clientTls = tls.connect({ socket: peer, rejectUnauthorized: false });
    cleanups.push(() => clientTls.destroy());
    await new Promise<void>((resolve) => clientTls.once('secureConnect', () => resolve()));
    clientTls.write('GET /_ping HTTP/1.1\r\n\r\n');
    expect((await reader.read())?.toString()).toBe('GET /_ping HTTP/1.1\r\n\r\n');
    expect(accepted.destroyed).toBe(false);
  });
});
