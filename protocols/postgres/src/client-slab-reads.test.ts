import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { SLAB_BYTES } from '@agentgate/core';
import { ClientRelay, type ClientEvents } from './client-relay.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A listener's accepted socket (`near`, handed to the relay in the 'connection' callback) and the client (`far`). */
async function relayed(events: Partial<ClientEvents>): Promise<{ io: ClientRelay; far: net.Socket }> {
  const all: ClientEvents = { data: () => {}, end: () => {}, error: () => {}, close: () => {}, ...events };
  let made: (io: ClientRelay) => void = () => {};
  const ioP = new Promise<ClientRelay>((resolve) => (made = resolve));
  const server = net.createServer((near) => {
    made(new ClientRelay(near, all));
    cleanups.push(() => near.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const far = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  far.on('error', () => undefined);
  const io = await ioP;
  cleanups.push(() => {
    far.destroy();
    server.close();
  });
  return { io, far };
}

describe('the client read into slabs', () => {
  it("reads a plain client's bytes into slabs, and its end", async () => {
    const chunks: Buffer[] = [];
    let ended: () => void = () => {};
    const end = new Promise<void>((resolve) => (ended = resolve));
    const { far } = await relayed({ data: (chunk) => chunks.push(chunk), end: () => ended() });
    far.end('Q query');
    await end;
    expect(Buffer.concat(chunks).toString()).toBe('Q query');
    expect(chunks[0]!.buffer.byteLength).toBe(SLAB_BYTES);
  });

  it('stops reading the client while held and reads on at the release', async () => {
    let got = 0;
    const total = 16 * 1024 * 1024;
    let all: () => void = () => {};
    const done = new Promise<void>((resolve) => (all = resolve));
    const { io, far } = await relayed({
      data: (chunk) => {
        got += chunk.length;
        if (got >= total) all();
      },
    });
    io.hold('inbox', true);
    far.write(Buffer.alloc(total));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(got).toBeLessThan(total);
    io.hold('inbox', false);
    await done;
    expect(got).toBe(total);
  });

  it('goes on over TLS after an SSLRequest', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-client-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // prettier-ignore
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const secureContext = tls.createSecureContext({
      cert: readFileSync(path.join(dir, 'cert.pem')),
      key: readFileSync(path.join(dir, 'key.pem')),
    });
    let onData: (chunk: Buffer) => void = () => {};
    const { io, far } = await relayed({ data: (chunk) => onData(chunk) });
    await new Promise<void>((resolve) => {
      onData = () => resolve();
      far.write('SSLRequest');
    });
    const secret = new Promise<string>((resolve) => (onData = (chunk) => resolve(chunk.toString())));
    const accepted = new Promise<Buffer>((resolve) => far.once('data', resolve));
    io.upgradeToTls(secureContext);
    expect((await accepted).toString()).toBe('S');
    const farTls = tls.connect({ socket: far, rejectUnauthorized: false });
    cleanups.push(() => farTls.destroy());
    await new Promise<void>((resolve) => farTls.once('secureConnect', () => resolve()));
    farTls.write('startup over tls');
    expect(await secret).toBe('startup over tls');
  });
});
