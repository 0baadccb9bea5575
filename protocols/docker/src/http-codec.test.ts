import { describe, expect, it } from '@jest/globals';
import {
  BodyDecoder,
  type Header,
  headerTokens,
  headerValue,
  headerValues,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  type BodyFraming,
  wantsConnectionClose,
} from './http-codec.js';

function headFromSplits(raw: string): { method: string; target: string; consumed: number }[] {
  const bytes = Buffer.from(raw, 'latin1');
  const out: { method: string; target: string; consumed: number }[] = [];
  // Feed the head as a client might: the first `split` bytes, then everything.
  for (let split = 0; split <= bytes.length; split++) {
    const first = parseRequestHead(bytes.subarray(0, split));
    if (first && split < bytes.length) {
      out.push({ method: first.head.method, target: first.head.target, consumed: first.consumed });
      continue;
    }
    const all = parseRequestHead(bytes)!;
    out.push({ method: all.head.method, target: all.head.target, consumed: all.consumed });
  }
  return out;
}

function decodeAtEverySplit(framing: BodyFraming, raw: string): { data: string; consumed: number }[] {
  const bytes = Buffer.from(raw, 'latin1');
  const results: { data: string; consumed: number }[] = [];
  for (let split = 0; split <= bytes.length; split++) {
    const d = new BodyDecoder(framing);
    let data = '';
    let consumed = 0;
    for (const part of [bytes.subarray(0, split), bytes.subarray(split)]) {
      if (d.done) break;
      const step = d.push(part);
      consumed += step.consumed;
      data += Buffer.concat(step.data).toString('latin1');
    }
    expect(d.done).toBe(true);
    results.push({ data, consumed });
  }
  return results;
}

describe('request head parser', () => {
  const raw =
    'POST /v1.41/containers/create?name=x HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}GET /_ping HTTP/1.1\r\n\r\n';
  it('parses the same head at every split offset and stops at its end', () => {
    const headLen = raw.indexOf('\r\n\r\n') + 4;
    for (const r of headFromSplits(raw)) {
      expect(r).toEqual({ method: 'POST', target: '/v1.41/containers/create?name=x', consumed: headLen });
    }
  });
  it('returns null until the blank line arrives', () => {
    expect(parseRequestHead(Buffer.from('GET /_ping HTTP/1.1\r\nHost: x\r\n'))).toBeNull();
  });
  it.each([
    ['bare LF line end', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['bare LF inside the head', 'GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n'],
    ['space before colon', 'GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n'],
    ['absolute-form target', 'GET http://x/_ping HTTP/1.1\r\n\r\n'],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\n\r\n'],
    ['HTTP/2 version', 'GET / HTTP/2.0\r\n\r\n'],
    ['control char in value', 'GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n'],
  ])('refuses %s', (_name, text) => {
    expect(() => parseRequestHead(Buffer.from(text, 'latin1'))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_VIOLATION' }),
    );
  });
  it('refuses heads over the limit', () => {
    const big = 'GET / HTTP/1.1\r\nX: ' + 'a'.repeat(70000);
    expect(() => parseRequestHead(Buffer.from(big))).toThrow(
      expect.objectContaining({ code: 'LIMIT_EXCEEDED' }),
    );
  });
});

describe('request framing (no smuggling)', () => {
  const frame = (headers: string): BodyFraming =>
    requestFraming(parseRequestHead(Buffer.from(`POST / HTTP/1.1\r\n${headers}\r\n`))!.head);
  it('reads Content-Length and chunked', () => {
    expect(frame('Content-Length: 10\r\n')).toEqual({ kind: 'length', length: 10 });
    expect(frame('Transfer-Encoding: chunked\r\n')).toEqual({ kind: 'chunked' });
    expect(frame('')).toEqual({ kind: 'none' });
  });
  it.each([
    ['CL with TE', 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n'],
    ['duplicate CL', 'Content-Length: 3\r\nContent-Length: 3\r\n'],
    ['CL list', 'Content-Length: 3, 3\r\n'],
    ['signed CL', 'Content-Length: +3\r\n'],
    ['TE gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ['TE identity', 'Transfer-Encoding: identity\r\n'],
    ['TE twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'],
  ])('refuses %s', (_n, h) => {
    expect(() => frame(h)).toThrow(expect.objectContaining({ code: 'PROTOCOL_VIOLATION' }));
  });
});

describe('body decoder', () => {
  it('decodes a length body at every split and leaves the next message', () => {
    for (const r of decodeAtEverySplit({ kind: 'length', length: 5 }, 'helloGET'))
      expect(r).toEqual({ data: 'hello', consumed: 5 });
  });
  it('decodes chunked bodies with extensions and trailers at every split', () => {
    const raw = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: y\r\n\r\nNEXT';
    for (const r of decodeAtEverySplit({ kind: 'chunked' }, raw))
      expect(r).toEqual({ data: 'hello world', consumed: raw.length - 4 });
  });
  it.each([
    ['negative size', '-5\r\nhello\r\n0\r\n\r\n'],
    ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
    ['space after size', '5 \r\nhello\r\n0\r\n\r\n'],
    ['missing CRLF after data', '5\r\nhelloX\r\n0\r\n\r\n'],
    ['bare LF size line', '5\nhello\r\n0\r\n\r\n'],
    ['bare LF after data', '5\r\nhello\n0\r\n\r\n'],
    ['too long size', '1234567890abc\r\n'],
  ])('refuses %s', (_n, raw) => {
    const d = new BodyDecoder({ kind: 'chunked' });
    expect(() => d.push(Buffer.from(raw, 'latin1'))).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_VIOLATION' }),
    );
  });
  it('reads a close-delimited response until end()', () => {
    const d = new BodyDecoder({ kind: 'close' });
    expect(d.push(Buffer.from('abc')).data.map(String)).toEqual(['abc']);
    d.end();
    expect(d.done).toBe(true);
  });
  it('refuses a truncated length body on end()', () => {
    const d = new BodyDecoder({ kind: 'length', length: 4 });
    d.push(Buffer.from('ab'));
    expect(() => d.end()).toThrow();
  });
});

describe('response head', () => {
  it('parses the hijack reply and its framing', () => {
    const raw =
      'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00';
    const p = parseResponseHead(Buffer.from(raw, 'latin1'))!;
    expect(p.head.status).toBe(101);
    expect(p.consumed).toBe(raw.length - 2);
  });
  it('frames responses per RFC 9112 §6.3', () => {
    const h = (s: string) => parseResponseHead(Buffer.from(s))!.head;
    expect(responseFraming('HEAD', h('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n'))).toEqual({
      kind: 'none',
    });
    expect(responseFraming('GET', h('HTTP/1.1 204 No Content\r\n\r\n'))).toEqual({ kind: 'none' });
    expect(responseFraming('GET', h('HTTP/1.1 200 OK\r\n\r\n'))).toEqual({ kind: 'close' });
    expect(responseFraming('GET', h('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'))).toEqual({
      kind: 'chunked',
    });
  });
});

describe('header lookups', () => {
  const headers: Header[] = [
    ['Host', 'x'],
    ['CONNECTION', 'keep-alive, Upgrade'],
    ['connection', ' Close '],
    ['Content-Length', '5'],
    ['X-Content-Length', '9'],
  ];
  it('match names case-insensitively and only whole names', () => {
    expect(headerValue(headers, 'content-length')).toBe('5');
    expect(headerValues(headers, 'Connection')).toEqual(['keep-alive, Upgrade', ' Close ']);
    expect(headerValue(headers, 'length')).toBeUndefined();
    expect(headerTokens(headers, 'connection')).toEqual(['keep-alive', 'upgrade', 'close']);
  });
  it('see `close` in any Connection field', () => {
    expect(wantsConnectionClose(headers)).toBe(true);
    expect(wantsConnectionClose([['Connection', 'keep-alive']])).toBe(false);
    expect(wantsConnectionClose([['Connection', 'closed']])).toBe(false);
    expect(wantsConnectionClose([['X-Connection', 'close']])).toBe(false);
  });
  it('keep refusing Content-Length with Transfer-Encoding in any letter case', () => {
    const head = parseRequestHead(
      Buffer.from('POST / HTTP/1.1\r\ncontent-LENGTH: 3\r\nTRANSFER-encoding: chunked\r\n\r\n', 'latin1'),
    )!.head;
    expect(() => requestFraming(head)).toThrow();
  });
});
