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

  it('hands back the parsed head for repeated head bytes, and parses anything else afresh', async () => {
    const { input, messages } = reader();
    const first = messages.readHead(parseRequestHead);
    input.write('GET /containers/json HTTP/1.1\r\nHost: x\r\n\r\n');
    const a = await first;
    // The same bytes again, with the next message's start behind them in the same chunk.
    const second = messages.readHead(parseRequestHead);
    input.write(
      'GET /containers/json HTTP/1.1\r\nHost: x\r\n\r\nGET /containers/json HTTP/1.1\r\nHost: y\r\n\r\n',
    );
    const b = await second;
    expect(a.kind === 'head' && b.kind === 'head' && b.head === a.head).toBe(true);
    const c = await messages.readHead(parseRequestHead);
    expect(c.kind === 'head' && c.head !== (a.kind === 'head' && a.head)).toBe(true);
    expect(c.kind === 'head' && c.head.headers).toEqual([['Host', 'y']]);
    expect(c.kind === 'head' && c.raw.toString('latin1')).toBe(
      'GET /containers/json HTTP/1.1\r\nHost: y\r\n\r\n',
    );
    // A longer head that starts like the last one is parsed, not taken for it.
    const d = messages.readHead(parseRequestHead);
    input.write('GET /containers/json HTTP/1.1\r\nHost: y\r\nX-A: 1\r\n\r\n');
    const dh = await d;
    expect(dh.kind === 'head' && dh.head.headers).toEqual([
      ['Host', 'y'],
      ['X-A', '1'],
    ]);
    // A response parser does not take a request head's memo.
    const e = messages.readHead(parseResponseHead);
    input.write('GET /containers/json HTTP/1.1\r\nHost: y\r\nX-A: 1\r\n\r\n');
    await expect(e).rejects.toThrow('malformed status line');
  });

  it('pumps a body that is already here without waiting, and leaves what follows it', async () => {
    const { input, messages } = reader();
    const head = messages.readHead(parseResponseHead);
    input.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n');
    expect((await head).kind).toBe('head');
    const raw: string[] = [];
    const pumped = messages.pumpBody(
      { kind: 'length', length: 5 },
      (_d, r) => {
        raw.push(r.toString());
        return undefined;
      },
      'closed inside',
    );
    expect(pumped).toBeUndefined();
    expect(raw).toEqual(['hello']);
    const next = await messages.readHead(parseResponseHead);
    expect(next.kind === 'head' && next.head.status).toBe(204);
    // A body still to come is waited for.
    const later = messages.pumpBody({ kind: 'length', length: 3 }, () => undefined, 'closed inside');
    expect(later).toBeInstanceOf(Promise);
    input.write('abc');
    await later;
  });
});
