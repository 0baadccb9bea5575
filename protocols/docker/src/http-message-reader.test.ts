import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { parseRequestHead, parseResponseHead } from './http-codec.js';
import { HttpMessageReader } from './http-message-reader.js';
import { SocketReader } from './socket-reader.js';

function reader(): { input: PassThrough; messages: HttpMessageReader } {
  const input = new PassThrough();
  return { input, messages: new HttpMessageReader(new SocketReader(input)) };
}

describe('HttpMessageReader', () => {
  it('reads a head split across chunks and leaves the body and the next message for later', async () => {
    const { input, messages } = reader();
    const read = messages.readHead(parseRequestHead);
    input.write('POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Le');
    input.write('ngth: 2\r\n\r\n{}GET /_ping HTTP/1.1\r\n\r\n');
    const head = await read;
    expect(head.kind).toBe('head');
    if (head.kind !== 'head') return;
    expect(head.head.target).toBe('/containers/create');
    const body = await messages.readBody({ kind: 'length', length: 2 }, 10, 'too large', 'closed inside');
    expect(body.toString()).toBe('{}');
    const next = await messages.readHead(parseRequestHead);
    expect(next.kind === 'head' && next.head.target).toBe('/_ping');
  });

  it('tells a clean end from one inside a head', async () => {
    const clean = reader();
    clean.input.end();
    expect(await clean.messages.readHead(parseRequestHead)).toEqual({ kind: 'end', partial: false });
    const cut = reader();
    cut.input.end('GET / HTTP/1.1\r\nHo');
    expect(await cut.messages.readHead(parseRequestHead)).toEqual({ kind: 'end', partial: true });
  });

  it('gives up on an idle connection at the keep-alive deadline', async () => {
    const { messages } = reader();
    const started = Date.now();
    expect(await messages.readHead(parseRequestHead, { idleUntil: started + 50, headMs: 10_000 })).toEqual({
      kind: 'timeout',
      partial: false,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('gives a head that trickles in until its deadline, counted from its first byte', async () => {
    const { input, messages } = reader();
    const read = messages.readHead(parseRequestHead, { idleUntil: Date.now() + 10_000, headMs: 80 });
    input.write('GET / HTTP/1.1\r\n');
    const drip = setInterval(() => input.write('X-A: b\r\n'), 10);
    try {
      expect(await read).toEqual({ kind: 'timeout', partial: true });
    } finally {
      clearInterval(drip);
    }
  });

  it('counts a new connection’s head from the connection’s start', async () => {
    const { messages } = reader();
    expect(await messages.readHead(parseRequestHead, { headMs: 40, startedAt: Date.now() - 30 })).toEqual({
      kind: 'timeout',
      partial: false,
    });
  });

  it('pumps a chunked body as decoded data and raw bytes, and refuses an oversized one', async () => {
    const { input, messages } = reader();
    input.write('5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n');
    const data: string[] = [];
    const raw: string[] = [];
    await messages.pumpBody(
      { kind: 'chunked' },
      (d, r) => {
        data.push(...d.map((b) => b.toString()));
        raw.push(r.toString());
        return undefined;
      },
      'closed inside',
    );
    expect(data.join('')).toBe('hello');
    expect(raw.join('')).toBe('5\r\nhello\r\n0\r\n\r\n');
    const next = await messages.readHead(parseResponseHead);
    expect(next.kind === 'head' && next.head.status).toBe(200);
    const big = reader();
    big.input.write('aaaaaaaaaa');
    await expect(
      big.messages.readBody({ kind: 'length', length: 10 }, 4, 'agentgate: too large', 'closed inside'),
    ).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', message: 'agentgate: too large' });
    const cut = reader();
    cut.input.end('abc');
    await expect(
      cut.messages.readBody({ kind: 'length', length: 10 }, 100, 'too large', 'agentgate: closed inside'),
    ).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION', message: 'agentgate: closed inside' });
  });
});
