import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLAB_BYTES, SlabReads } from '@agentgate/core';
import { SocketReader } from './socket-reader.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A unix socket whose peer writes what the test tells it to; the client side is read through slab reads. */
async function pair(): Promise<{ peer: net.Socket; socket: net.Socket; reader: SocketReader }> {
  const dir = mkdtempSync(join(tmpdir(), 'slab-'));
  const path = join(dir, 's.sock');
  let accepted: (s: net.Socket) => void = () => {};
  const peerP = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const server = net.createServer((s) => accepted(s));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const reads = new SlabReads();
  const socket = net.connect({ path, allowHalfOpen: true, onread: reads.options });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const peer = await peerP;
  cleanups.push(() => {
    socket.destroy();
    peer.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { peer, socket, reader: new SocketReader(socket, reads) };
}

async function readExactly(reader: SocketReader, bytes: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let got = 0;
  while (got < bytes) {
    const chunk = await reader.read();
    if (chunk === null) throw new Error('ended early');
    chunks.push(chunk);
    got += chunk.length;
  }
  return chunks;
}

describe('SlabReads', () => {
  it('hands on views that later reads never write over, across slabs', async () => {
    const { peer, reader } = await pair();
    const sent: Buffer[] = [];
    const kept: Buffer[] = [];
    // Small answers fill a slab; then more than a slab's worth forces new ones.
    for (let i = 0; i < 80; i++) {
      const message = Buffer.alloc(1500, i);
      sent.push(message);
      peer.write(message);
      kept.push(...(await readExactly(reader, message.length)));
    }
    const big = Buffer.alloc(3 * SLAB_BYTES, 7);
    sent.push(big);
    peer.write(big);
    kept.push(...(await readExactly(reader, big.length)));
    expect(Buffer.concat(kept).equals(Buffer.concat(sent))).toBe(true);
  });

  it('gives a detached reader’s later bytes to the socket’s own stream, and ends it', async () => {
    const { peer, socket, reader } = await pair();
    peer.write('head');
    expect((await reader.read())?.toString()).toBe('head');
    const { pending } = reader.detach();
    expect(pending).toEqual([]);
    const got: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => got.push(chunk));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    socket.resume();
    peer.end('after the hijack');
    await ended;
    expect(Buffer.concat(got).toString()).toBe('after the hijack');
  });

  it('stops reading while nobody waits, and the reader sees the end', async () => {
    const { peer, reader } = await pair();
    peer.write('one');
    expect((await reader.read())?.toString()).toBe('one');
    peer.end('two');
    // Nobody is waiting: the bytes wait in the socket or the queue until asked for.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await reader.read())?.toString()).toBe('two');
    expect(await reader.read()).toBeNull();
  });
});
