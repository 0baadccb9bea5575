/**
 * Flow control of the postgres relay against a real PostgreSQL: a client that pipelines far more than the
 * session's inbox high-water mark in one burst (the session pauses reading the client, the upstream socket's
 * buffer fills), then stops reading the answers for a while (the session pauses reading the upstream). Every
 * pause must be lifted again: all queries are answered, in order, and the session stays usable.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { startPgGateway, startPostgres, type PgGateway, type TestPostgres } from './harness/postgres.js';

let server: TestPostgres;
let gw: PgGateway;

beforeAll(async () => {
  server = await startPostgres();
  gw = await startPgGateway(server);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await server?.stop();
});

function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

function typed(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const cstring = (s: string): Buffer => Buffer.from(`${s}\0`);

/** Reads backend messages from a raw socket; `pause()`/`resume()` control whether the test drains the socket. */
class RawClient {
  private buf = Buffer.alloc(0);
  readonly types: string[] = [];
  private waiter: (() => void) | undefined;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < len + 1) break;
        this.types.push(String.fromCharCode(this.buf[0]!));
        this.buf = this.buf.subarray(len + 1);
      }
      this.waiter?.();
    });
  }
  count(type: string): number {
    return this.types.filter((t) => t === type).length;
  }
  async waitFor(type: string, n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.count(type) < n) {
      if (Date.now() > deadline)
        throw new Error(`stalled: ${this.count(type)} of ${n} '${type}' after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 100);
      });
    }
  }
}

async function connect(via: PgGateway = gw): Promise<RawClient> {
  const socket = net.connect({ host: via.host, port: via.port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const client = new RawClient(socket);
  socket.write(startupMessage({ user: 'devin', database: 'app' }));
  await client.waitFor('R', 1, 5000);
  socket.write(typed('p', cstring(via.token('devin', ['agents']))));
  await client.waitFor('Z', 1, 10_000);
  expect(client.count('E')).toBe(0);
  return client;
}

describe('postgres relay flow control', () => {
  it('answers a pipelined burst larger than every buffer, with the client reading late', async () => {
    const client = await connect();
    // ~1 KB per query in, ~8 KB per answer out: 700 queries are ~700 KB in (over the 256 KB inbox mark and the
    // socket buffers) and ~5.6 MB out.
    const padding = 'p'.repeat(1000);
    const query = typed('Q', cstring(`SELECT repeat('y', 8000) AS big, '${padding}' AS pad`));
    const count = 700;
    client.socket.pause(); // do not read answers yet: the gateway's writes to the client back up
    client.socket.write(Buffer.concat(Array.from({ length: count }, () => query)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    client.socket.resume();
    await client.waitFor('Z', 1 + count, 30_000);
    expect(client.count('E')).toBe(0);
    expect(client.count('C')).toBe(count);
    // Still usable afterwards, with single queries.
    for (let i = 0; i < 3; i++) {
      client.socket.write(typed('Q', cstring('SELECT 1')));
      await client.waitFor('Z', 2 + count + i, 5000);
    }
    client.socket.end(typed('X', Buffer.alloc(0)));
  }, 60_000);

  it('keeps answering when a Sync arrives in the same chunk as a Query and with every byte split apart', async () => {
    const client = await connect();
    const burst = Buffer.concat([
      typed('Q', cstring('SELECT 1')),
      typed('P', Buffer.concat([cstring(''), cstring('SELECT $1::int'), Buffer.from([0, 0])])),
      typed(
        'B',
        Buffer.concat([cstring(''), cstring(''), Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x37, 0, 0])]),
      ),
      typed('E', Buffer.concat([cstring(''), Buffer.alloc(4)])),
      typed('S', Buffer.alloc(0)),
      typed('Q', cstring('SELECT 2')),
    ]);
    client.socket.write(burst);
    await client.waitFor('Z', 4, 5000);
    // The same bytes one at a time: every frame boundary falls inside a chunk.
    for (const byte of burst) {
      client.socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await client.waitFor('Z', 7, 5000);
    expect(client.count('E')).toBe(0);
    client.socket.end(typed('X', Buffer.alloc(0)));
  }, 30_000);

  it('sends what one client read forwards upstream in one write, and answers a Flush without a Sync', async () => {
    // A real TCP hop between the gateway and PostgreSQL that keeps what the gateway writes, chunk by chunk, per
    // connection (the session's, and the catalog's lookups).
    const connections: Buffer[][] = [];
    const tap = net.createServer({ noDelay: true }, (gatewaySide) => {
      const chunks: Buffer[] = [];
      connections.push(chunks);
      const upstream = net.connect({ host: server.host, port: server.port, noDelay: true });
      gatewaySide.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        upstream.write(chunk);
      });
      upstream.pipe(gatewaySide);
      gatewaySide.on('error', () => upstream.destroy());
      upstream.on('error', () => gatewaySide.destroy());
      gatewaySide.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => tap.listen(0, '127.0.0.1', resolve));
    const tapped = await startPgGateway({ host: '127.0.0.1', port: (tap.address() as net.AddressInfo).port });
    try {
      const client = await connect(tapped);
      const parse = typed(
        'P',
        Buffer.concat([cstring('s'), cstring('SELECT $1::int AS i'), Buffer.from([0, 0])]),
      );
      const bind = (value: string): Buffer =>
        typed(
          'B',
          Buffer.concat([
            cstring(''),
            cstring('s'),
            Buffer.from([0, 0, 0, 1]),
            Buffer.from([0, 0, 0, value.length]),
            Buffer.from(value),
            Buffer.from([0, 0]),
          ]),
        );
      const describePortal = typed('D', Buffer.concat([Buffer.from('P'), cstring('')]));
      const execute = typed('E', Buffer.concat([cstring(''), Buffer.alloc(4)]));
      const sync = typed('S', Buffer.alloc(0));
      // Parse and Describe with a Flush, no Sync: the server answers what was flushed, so the gateway must not
      // keep these messages back waiting for more.
      client.socket.write(
        Buffer.concat([
          parse,
          typed('D', Buffer.concat([Buffer.from('S'), cstring('s')])),
          typed('H', Buffer.alloc(0)),
        ]),
      );
      await client.waitFor('T', 1, 5000);
      expect(client.count('1')).toBe(1);
      client.socket.write(sync);
      await client.waitFor('Z', 2, 5000);
      // One statement as libpq sends it (Bind, Describe, Execute, Sync in one packet), then three pipelined: each
      // read's messages reach the server in one write, after their Executes were decided.
      // The session's connection: the one the Parse went up on.
      const session = connections.find((chunks) => chunks.some((c) => c.includes(parse)))!;
      for (const statements of [1, 3]) {
        const before = session.length;
        const zBefore = client.count('Z');
        client.socket.write(
          Buffer.concat(
            Array.from({ length: statements }, (_, i) => [
              bind(String(i + 7)),
              describePortal,
              execute,
              sync,
            ]).flat(),
          ),
        );
        await client.waitFor('Z', zBefore + statements, 5000);
        expect(session.length - before).toBe(1);
        expect(session[before]!.length).toBe(
          (bind('7').length + describePortal.length + execute.length + sync.length) * statements,
        );
      }
      expect(client.count('E')).toBe(0);
      expect(tapped.events.filter((e) => e.type === 'command')).toHaveLength(4);
      client.socket.end(typed('X', Buffer.alloc(0)));
    } finally {
      await tapped.stop();
      await new Promise((resolve) => tap.close(resolve));
    }
  }, 30_000);
});
