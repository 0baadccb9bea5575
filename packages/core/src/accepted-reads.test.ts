import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { adoptWithSlabReads, type AdoptedSocket } from './accepted-reads.js';
import { SLAB_BYTES } from './slab-reads.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const tick = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A listener whose connections are adopted as they are accepted, and a client connected to it. */
async function accept(): Promise<{
  server: net.Server;
  accepted: net.Socket;
  adopted: AdoptedSocket;
  client: net.Socket;
}> {
  let got: (s: { accepted: net.Socket; adopted: AdoptedSocket | undefined }) => void = () => {};
  const acceptedP = new Promise<{ accepted: net.Socket; adopted: AdoptedSocket | undefined }>(
    (resolve) => (got = resolve),
  );
  const server = net.createServer((accepted) => got({ accepted, adopted: adoptWithSlabReads(accepted) }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect({ host: '127.0.0.1', port });
  const { accepted, adopted } = await acceptedP;
  cleanups.push(() => {
    client.destroy();
    adopted?.socket.destroy();
    accepted.destroy();
    server.close();
  });
  expect(adopted).toBeDefined();
  return { server, accepted, adopted: adopted!, client };
}

/** Everything handed to the sink, and a promise for the first `bytes` of it. */
function collect(adopted: AdoptedSocket, bytes: number): { kept: Buffer[]; done: Promise<void> } {
  const kept: Buffer[] = [];
  let got = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  adopted.reads.attach((chunk) => {
    kept.push(chunk);
    got += chunk.length;
    if (got >= bytes) finish();
    return true;
  });
  return { kept, done };
}

describe('adoptWithSlabReads', () => {
  it('reads an accepted connection into slabs and writes to it', async () => {
    const { accepted, adopted, client } = await accept();
    const { kept, done } = collect(adopted, 5);
    client.write('hello');
    await done;
    expect(Buffer.concat(kept).toString()).toBe('hello');
    expect(kept[0]!.buffer.byteLength).toBe(SLAB_BYTES);
    const answer = new Promise<string>((resolve) =>
      client.once('data', (d: Buffer) => resolve(d.toString())),
    );
    adopted.socket.write('world');
    expect(await answer).toBe('world');
    expect(accepted.readableLength).toBe(0);
    expect(adopted.socket.remotePort).toBe(client.localPort);
  });

  it('leaves a TLS socket and a socket that has read already as they are', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect({ host: '127.0.0.1', port });
    const accepted = await acceptedP;
    cleanups.push(() => {
      client.destroy();
      accepted.destroy();
      server.close();
    });
    expect(adoptWithSlabReads(new tls.TLSSocket(new net.Socket()))).toBeUndefined();
    const first = new Promise<Buffer>((resolve) => accepted.once('data', resolve));
    client.write('x');
    await first;
    expect(adoptWithSlabReads(accepted)).toBeUndefined();
    const next = new Promise<Buffer>((resolve) => accepted.once('data', resolve));
    client.write('y');
    expect((await next).toString()).toBe('y');
  });

  it('ends with the peer: end, then close of both sockets, and the listener closes', async () => {
    const { server, accepted, adopted, client } = await accept();
    collect(adopted, 1);
    const ended = new Promise<void>((resolve) => adopted.socket.once('end', resolve));
    const closed = new Promise<void>((resolve) => accepted.once('close', () => resolve()));
    client.end();
    await ended;
    await closed;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("the listener's forced close of its socket ends the connection", async () => {
    const { accepted, adopted, client } = await accept();
    collect(adopted, 1);
    const peerClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => undefined);
    accepted.destroy();
    await peerClosed;
    expect(adopted.socket.destroyed).toBe(true);
  });

  it('a reset connection errors on the adopted socket and destroys both', async () => {
    const { accepted, adopted, client } = await accept();
    collect(adopted, 1);
    const error = new Promise<Error>((resolve) => adopted.socket.once('error', resolve));
    const closed = new Promise<void>((resolve) => accepted.once('close', () => resolve()));
    client.resetAndDestroy();
    expect((await error).message).toMatch(/ECONNRESET/);
    await closed;
  });

  it('stops reading while paused (the peer keeps its bytes) and reads on when resumed', async () => {
    const { adopted, client } = await accept();
    const total = 32 * 1024 * 1024;
    const { kept, done } = collect(adopted, total);
    adopted.socket.pause();
    client.write(Buffer.alloc(total, 7));
    await tick(200);
    expect(kept.reduce((n, b) => n + b.length, 0)).toBeLessThan(total);
    expect(client.writableLength).toBeGreaterThan(0);
    adopted.socket.resume();
    await done;
    expect(Buffer.concat(kept).equals(Buffer.alloc(total, 7))).toBe(true);
  });

  it('goes on over TLS: the adopted socket wrapped by a server TLSSocket', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-adopt-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const secureContext = tls.createSecureContext({
      cert: readFileSync(path.join(dir, 'cert.pem')),
      key: readFileSync(path.join(dir, 'key.pem')),
    });
    const { adopted, client } = await accept();
    const plainFirst = collect(adopted, 1);
    client.write('S');
    await plainFirst.done;
    adopted.reads.detach();
    const secure = new tls.TLSSocket(adopted.socket, { isServer: true, secureContext });
    const got = new Promise<string>((resolve) => secure.once('data', (d: Buffer) => resolve(d.toString())));
    const clientTls = tls.connect({ socket: client, rejectUnauthorized: false });
    cleanups.push(() => clientTls.destroy());
    await new Promise<void>((resolve) => clientTls.once('secureConnect', () => resolve()));
    clientTls.write('over tls');
    expect(await got).toBe('over tls');
    const back = new Promise<string>((resolve) =>
      clientTls.once('data', (d: Buffer) => resolve(d.toString())),
    );
    secure.write('and back');
    expect(await back).toBe('and back');
  });
});
