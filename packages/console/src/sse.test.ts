import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openEventStream, type EventStream } from './sse.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

/** A real HTTP server with one event stream, and what a client read from it until it ended. */
async function streamWith(alive: () => boolean): Promise<{ stream: EventStream; received: Promise<string> }> {
  let opened!: (s: EventStream) => void;
  const stream = new Promise<EventStream>((resolve) => (opened = resolve));
  server = createServer((req, res) =>
    opened(openEventStream(req, res, { https: false, alive, onClose() {} })),
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const received = new Promise<string>((resolve) =>
    get(`http://127.0.0.1:${port}/`, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve(text));
    }),
  );
  return { stream: await stream, received };
}

describe('openEventStream', () => {
  it('sends events while its browser session may read them', async () => {
    const { stream, received } = await streamWith(() => true);
    stream.send('approval', { id: 'a' });
    stream.close();
    expect(await received).toContain('event: approval\ndata: {"id":"a"}');
  });

  it('asks before each event: a session signed out or without its role gets nothing more, and the stream ends', async () => {
    let alive = true;
    const { stream, received } = await streamWith(() => alive);
    stream.send('event', { n: 1 });
    alive = false;
    stream.send('event', { n: 2 });
    expect(stream.closed).toBe(true);
    const text = await received;
    expect(text).toContain('{"n":1}');
    expect(text).not.toContain('{"n":2}');
  });
});
