import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { batchWritesOnResume, batchWritesPerRead } from './write-batching.js';

/** A connected TCP pair on loopback: [local end, the server's end]. */
function socketPair(server: Server): Promise<[Socket, Socket]> {
  return new Promise((resolve, reject) => {
    server.once('connection', (remote: Socket) => resolve([local, remote]));
    const address = server.address();
    if (address === null || typeof address === 'string') return reject(new Error('no port'));
    const local = connect(address.port, '127.0.0.1');
    local.once('error', reject);
  });
}

function readExactly(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        s.removeListener('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
  });
}

/** Counts how the writer hands chunks to the kernel: one `_writev` per batch, one `_write` per lone chunk. */
function countTransportWrites(s: Socket): { write: number; writev: number; chunksInWritev: number } {
  const counts = { write: 0, writev: 0, chunksInWritev: 0 };
  const internals = s as unknown as {
    _write: (...a: unknown[]) => void;
    _writev: (chunks: unknown[], cb: unknown) => void;
  };
  const write = internals._write.bind(s);
  const writev = internals._writev.bind(s);
  internals._write = (...a: unknown[]) => {
    counts.write++;
    write(...a);
  };
  internals._writev = (chunks: unknown[], cb: unknown) => {
    counts.writev++;
    counts.chunksInWritev += chunks.length;
    writev(chunks, cb);
  };
  return counts;
}

/** One loopback server for every socket pair; the pairs are destroyed at the end. */
let server: Server;
const open: Socket[] = [];
beforeAll(async () => {
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const s of open) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('batchWritesPerRead', () => {
  it('sends the packets written during one read with one writev, intact and in order', async () => {
    const [readerPeer, reader] = await socketPair(server);
    const [writer, writerPeer] = await socketPair(server);
    open.push(readerPeer, reader, writer, writerPeer);
    const packets = [Buffer.alloc(32 * 1024, 1), Buffer.alloc(32 * 1024, 2), Buffer.from('window-adjust')];
    // Stands in for ssh2's own 'data' listener: it is attached first, as ssh2's is.
    reader.on('data', () => {
      for (const p of packets) writer.write(p);
    });
    const detach = batchWritesPerRead(reader, [writer]);
    const counts = countTransportWrites(writer);
    const total = packets.reduce((n, p) => n + p.length, 0);
    const received = readExactly(writerPeer, total);
    readerPeer.write('x');
    expect(await received).toEqual(Buffer.concat(packets));
    expect(counts).toEqual({ write: 0, writev: 1, chunksInWritev: 3 });
    expect(writer.writableCorked).toBe(0);

    detach();
    const counts2 = countTransportWrites(writer);
    const again = readExactly(writerPeer, total);
    readerPeer.write('y');
    expect(await again).toEqual(Buffer.concat(packets));
    // Without batching the first write goes straight out; the rest queue behind it.
    expect(counts2.write).toBeGreaterThanOrEqual(1);
    expect(writer.writableCorked).toBe(0);
  });

  it('leaves a destroyed writer alone and never stays corked', async () => {
    const [readerPeer, reader] = await socketPair(server);
    const [writer, writerPeer] = await socketPair(server);
    open.push(readerPeer, reader, writer, writerPeer);
    const alive = await socketPair(server);
    open.push(...alive);
    batchWritesPerRead(reader, [writer, alive[0]]);
    writer.destroy();
    const seen = new Promise<void>((resolve) => reader.once('data', () => resolve()));
    readerPeer.write('z');
    await seen;
    // The uncork listener ran after the one above: both writers are back to uncorked.
    await new Promise((r) => setImmediate(r));
    expect(alive[0].writableCorked).toBe(0);
    expect(writer.writableCorked).toBe(0);
  });
});

describe('batchWritesOnResume', () => {
  /** A paused channel with `packets` buffered, relayed chunk by chunk into `writer` once it resumes. */
  async function relayAfterResume(
    writer: Socket,
    writerPeer: Socket,
    packets: readonly Buffer[],
    batched: boolean,
  ): Promise<ReturnType<typeof countTransportWrites>> {
    const channel = new PassThrough();
    channel.on('data', (chunk: Buffer) => writer.write(chunk));
    channel.pause();
    for (const p of packets) channel.write(p);
    if (batched) batchWritesOnResume(channel, [writer]);
    const counts = countTransportWrites(writer);
    const total = packets.reduce((n, p) => n + p.length, 0);
    const received = readExactly(writerPeer, total);
    channel.resume();
    expect(await received).toEqual(Buffer.concat(packets));
    expect(writer.writableCorked).toBe(0);
    return counts;
  }

  it('hands the packets a resumed channel had buffered to the kernel in one writev, intact and in order', async () => {
    const [writer, writerPeer] = await socketPair(server);
    open.push(writer, writerPeer);
    const packets = Array.from({ length: 8 }, (_, i) => Buffer.alloc(32 * 1024, i + 1));
    expect(await relayAfterResume(writer, writerPeer, packets, true)).toEqual({
      write: 0,
      writev: 1,
      chunksInWritev: 8,
    });
    // Without it the first packet goes straight out on its own.
    const [plain, plainPeer] = await socketPair(server);
    open.push(plain, plainPeer);
    expect((await relayAfterResume(plain, plainPeer, packets, false)).write).toBeGreaterThanOrEqual(1);
  });

  it('leaves a destroyed writer alone, and stops once detached', async () => {
    const [writer, writerPeer] = await socketPair(server);
    open.push(writer, writerPeer);
    const [gone] = await socketPair(server);
    gone.destroy();
    const channel = new PassThrough();
    channel.on('data', (chunk: Buffer) => writer.write(chunk));
    channel.pause();
    const detach = batchWritesOnResume(channel, [gone, writer]);
    channel.resume();
    await new Promise((r) => setImmediate(r));
    expect(writer.writableCorked).toBe(0);
    expect(gone.writableCorked).toBe(0);
    detach();
    expect(channel.listenerCount('resume')).toBe(0);
  });
});
