/**
 * HTTP/1.1 message framing with no I/O (RFC 9112). Strict on purpose: the gateway decides on what it parsed, so
 * anything a lenient upstream could read differently (request smuggling, RFC 9112 §11.2) is refused:
 * bare LF line ends, obs-fold (§5.2), whitespace before the colon (§5.1), Content-Length together with
 * Transfer-Encoding or repeated (§6.3), transfer codings other than `chunked`, malformed chunk sizes (§7.1).
 */
import { AgentgateError } from '@agentgate/core';

export type Header = readonly [name: string, value: string];

export interface RequestHead {
  readonly method: string;
  /** The request-target as sent (origin-form, still percent-encoded). */
  readonly target: string;
  readonly version: '1.0' | '1.1';
  readonly headers: readonly Header[];
}

export interface ResponseHead {
  readonly version: '1.0' | '1.1';
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly Header[];
}

export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Response only: the body runs until the connection closes (RFC 9112 §6.3 rule 8). */
  | { readonly kind: 'close' };

export const MAX_HEAD_BYTES = 64 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Origin-form target: path and query of visible ASCII only (RFC 9112 §3.2.1), no fragment.
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;

function violation(message: string, detail?: Record<string, unknown>): AgentgateError {
  return new AgentgateError('PROTOCOL_VIOLATION', `agentgate: ${message}`, detail ? { detail } : {});
}

/** Index just past the blank line ending a head, or -1 while incomplete. */
function headEnd(buf: Buffer, maxBytes: number): number {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end === -1) {
    if (buf.length > maxBytes)
      throw new AgentgateError('LIMIT_EXCEEDED', 'agentgate: request head too large');
    // A bare LF is refused as soon as it is seen: some parsers end lines there, others do not.
    const lf = buf.indexOf(10);
    if (lf !== -1 && (lf === 0 || buf[lf - 1] !== 13)) throw violation('bare LF in message head');
    return -1;
  }
  if (end + 4 > maxBytes) throw new AgentgateError('LIMIT_EXCEEDED', 'agentgate: request head too large');
  return end + 4;
}

// Control characters other than HTAB, CR and LF never belong in a head (RFC 9110 §5.5, RFC 9112 §2.2).
const FORBIDDEN_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** The head's lines; refuses bare CR or LF (every line must end in CRLF). */
function headLines(text: string): string[] {
  if (FORBIDDEN_CONTROL.test(text)) throw violation('control character in message head');
  const lines = text.split('\r\n');
  for (const line of lines) {
    if (line.includes('\n')) throw violation('bare LF in message head');
    if (line.includes('\r')) throw violation('bare CR in message head');
  }
  return lines;
}

function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

function parseFields(lines: readonly string[], from = 0): Header[] {
  const headers: Header[] = [];
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const c0 = line.charCodeAt(0);
    if (c0 === 32 || c0 === 9) throw violation('obsolete line folding in header');
    const colon = line.indexOf(':');
    if (colon <= 0) throw violation('malformed header line');
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw violation('invalid header name');
    // Line text is already free of CR, LF and other controls (headLines).
    headers.push([name, trimOws(line.slice(colon + 1))]);
  }
  return headers;
}

/**
 * Parse one request head from the start of `buf`. Returns null while more bytes are needed, else the head and the
 * number of bytes it used. Leading empty lines are tolerated as RFC 9112 §2.2 allows.
 */
export function parseRequestHead(
  buf: Buffer,
  maxBytes = MAX_HEAD_BYTES,
): { head: RequestHead; consumed: number } | null {
  let start = 0;
  while (buf.length >= start + 2 && buf[start] === 13 && buf[start + 1] === 10) start += 2;
  if (buf.length > start && buf[start] === 10) throw violation('bare LF in message head');
  const body = start === 0 ? buf : buf.subarray(start);
  const end = headEnd(body, maxBytes);
  if (end === -1) return null;
  const lines = headLines(body.toString('latin1', 0, end - 4));
  const requestLine = lines[0] ?? '';
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.([01])$/.exec(requestLine);
  if (!m) throw violation('malformed request line');
  const target = m[2]!;
  if (!ORIGIN_FORM.test(target) || target.includes('#'))
    throw violation('request target must be origin-form');
  return {
    head: {
      method: m[1]!,
      target,
      version: m[3] === '0' ? '1.0' : '1.1',
      headers: parseFields(lines, 1),
    },
    consumed: start + end,
  };
}

export function parseResponseHead(
  buf: Buffer,
  maxBytes = MAX_HEAD_BYTES,
): { head: ResponseHead; consumed: number } | null {
  const end = headEnd(buf, maxBytes);
  if (end === -1) return null;
  const lines = headLines(buf.toString('latin1', 0, end - 4));
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (!m) throw violation('malformed status line');
  return {
    head: {
      version: m[1] === '0' ? '1.0' : '1.1',
      status: Number(m[2]),
      reason: m[3] ?? '',
      headers: parseFields(lines, 1),
    },
    consumed: end,
  };
}

// Header lookups run several times per request on the latency path: compare lengths before lower-casing, and
// allocate only for matches.
function sameName(n: string, lower: string): boolean {
  return n.length === lower.length && (n === lower || n.toLowerCase() === lower);
}

export function headerValues(headers: readonly Header[], name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [n, v] of headers) if (sameName(n, lower)) out.push(v);
  return out;
}

export function headerValue(headers: readonly Header[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of headers) if (sameName(n, lower)) return v;
  return undefined;
}

/** Comma-separated tokens of all headers of a name, lower-cased (`Connection: keep-alive, Upgrade`). */
export function headerTokens(headers: readonly Header[], name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [n, v] of headers) {
    if (!sameName(n, lower)) continue;
    for (const part of v.split(',')) {
      const t = part.trim().toLowerCase();
      if (t !== '') out.push(t);
    }
  }
  return out;
}

/** Whether a `Connection` header asks to close (RFC 9112 §9.6). */
export function wantsConnectionClose(headers: readonly Header[]): boolean {
  for (const [n, v] of headers) {
    if (!sameName(n, 'connection')) continue;
    for (const part of v.split(',')) if (part.trim().toLowerCase() === 'close') return true;
  }
  return false;
}

function framingFromHeaders(headers: readonly Header[]): BodyFraming | undefined {
  // One pass over the fields for both framing headers.
  const te: string[] = [];
  const cl: string[] = [];
  for (const [n, v] of headers) {
    if (sameName(n, 'transfer-encoding')) te.push(v);
    else if (sameName(n, 'content-length')) cl.push(v);
  }
  if (te.length > 0 && cl.length > 0) throw violation('Content-Length together with Transfer-Encoding');
  if (te.length > 0) {
    const codings = headerTokens(headers, 'transfer-encoding');
    if (codings.length !== 1 || codings[0] !== 'chunked') throw violation('unsupported Transfer-Encoding');
    return { kind: 'chunked' };
  }
  if (cl.length > 1) throw violation('repeated Content-Length');
  if (cl.length === 1) {
    const v = cl[0]!;
    if (!/^\d{1,15}$/.test(v)) throw violation('invalid Content-Length');
    const length = Number(v);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return undefined;
}

/** RFC 9112 §6.3 for requests: no Content-Length and no Transfer-Encoding means no body. */
export function requestFraming(head: RequestHead): BodyFraming {
  const f = framingFromHeaders(head.headers);
  if (f && f.kind === 'chunked' && head.version === '1.0') throw violation('chunked request on HTTP/1.0');
  return f ?? { kind: 'none' };
}

/** RFC 9112 §6.3 for responses (the 101 switch is handled by the caller). */
export function responseFraming(requestMethod: string, head: ResponseHead): BodyFraming {
  if (
    requestMethod === 'HEAD' ||
    (head.status >= 100 && head.status < 200) ||
    head.status === 204 ||
    head.status === 304
  ) {
    return { kind: 'none' };
  }
  return framingFromHeaders(head.headers) ?? { kind: 'close' };
}

export interface DecodeStep {
  /** Bytes of the input that belong to this message body (the caller may forward them raw). */
  readonly consumed: number;
  /** Decoded body data found in those bytes. */
  readonly data: Buffer[];
  readonly done: boolean;
}

type ChunkState =
  | { readonly kind: 'size'; readonly line: string }
  | { readonly kind: 'data'; readonly remaining: number }
  | { readonly kind: 'data-crlf'; readonly seen: number }
  | { readonly kind: 'trailer'; readonly line: string; readonly lines: number }
  | { readonly kind: 'done' };

const MAX_CHUNK_LINE = 4096;

/**
 * Incremental body decoder for one message. `push` may be given any split of the bytes; it stops at the end of
 * the body so the rest of the input belongs to the next message (pipelining).
 */
export class BodyDecoder {
  private remaining: number;
  private chunk: ChunkState = { kind: 'size', line: '' };
  private finished: boolean;

  constructor(readonly framing: BodyFraming) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.finished = framing.kind === 'none';
  }

  get done(): boolean {
    return this.finished;
  }

  push(input: Buffer): DecodeStep {
    if (this.finished) return { consumed: 0, data: [], done: true };
    switch (this.framing.kind) {
      case 'none':
        return { consumed: 0, data: [], done: true };
      case 'close':
        return { consumed: input.length, data: input.length > 0 ? [input] : [], done: false };
      case 'length': {
        const n = Math.min(this.remaining, input.length);
        this.remaining -= n;
        if (this.remaining === 0) this.finished = true;
        return { consumed: n, data: n > 0 ? [input.subarray(0, n)] : [], done: this.finished };
      }
      case 'chunked':
        return this.pushChunked(input);
    }
  }

  /** The peer closed: a `close`-framed body ends here, any other unfinished body is truncated. */
  end(): void {
    if (this.framing.kind === 'close') this.finished = true;
    else if (!this.finished) throw violation('connection closed inside a message body');
  }

  private pushChunked(input: Buffer): DecodeStep {
    const data: Buffer[] = [];
    let i = 0;
    while (i < input.length && this.chunk.kind !== 'done') {
      const st = this.chunk;
      switch (st.kind) {
        case 'size': {
          const lf = input.indexOf(10, i);
          const upto = lf === -1 ? input.length : lf + 1;
          const line = st.line + input.toString('latin1', i, upto);
          i = upto;
          if (lf === -1) {
            if (line.length > MAX_CHUNK_LINE) throw violation('chunk size line too long');
            this.chunk = { kind: 'size', line };
            break;
          }
          // chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1); extensions are ignored, sizes are hex only.
          const m = /^([0-9a-fA-F]{1,12})(;[\t !-~]*)?\r\n$/.exec(line);
          if (!m) throw violation('invalid chunk size');
          const size = parseInt(m[1]!, 16);
          this.chunk =
            size === 0 ? { kind: 'trailer', line: '', lines: 0 } : { kind: 'data', remaining: size };
          break;
        }
        case 'data': {
          const n = Math.min(st.remaining, input.length - i);
          data.push(input.subarray(i, i + n));
          i += n;
          this.chunk =
            st.remaining - n === 0
              ? { kind: 'data-crlf', seen: 0 }
              : { kind: 'data', remaining: st.remaining - n };
          break;
        }
        case 'data-crlf': {
          const expected = st.seen === 0 ? 13 : 10;
          if (input[i] !== expected) throw violation('chunk data not followed by CRLF');
          i++;
          this.chunk = st.seen === 0 ? { kind: 'data-crlf', seen: 1 } : { kind: 'size', line: '' };
          break;
        }
        case 'trailer': {
          const lf = input.indexOf(10, i);
          const upto = lf === -1 ? input.length : lf + 1;
          const line = st.line + input.toString('latin1', i, upto);
          i = upto;
          if (lf === -1) {
            if (line.length > MAX_CHUNK_LINE) throw violation('trailer line too long');
            this.chunk = { kind: 'trailer', line, lines: st.lines };
            break;
          }
          if (!line.endsWith('\r\n')) throw violation('bare LF in chunked trailer');
          if (line === '\r\n') {
            this.chunk = { kind: 'done' };
            this.finished = true;
          } else {
            // Trailer fields are read and dropped: nothing downstream may act on them.
            if (st.lines >= 32) throw violation('too many trailer fields');
            parseFields(headLines(line.slice(0, -2)));
            this.chunk = { kind: 'trailer', line: '', lines: st.lines + 1 };
          }
          break;
        }
      }
    }
    return { consumed: i, data, done: this.finished };
  }
}

/** Serialize a request head. Header names and values were validated by the parser or come from the gateway. */
export function encodeRequestHead(method: string, target: string, headers: readonly Header[]): Buffer {
  let s = `${method} ${target} HTTP/1.1\r\n`;
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

export function encodeResponseHead(status: number, reason: string, headers: readonly Header[]): Buffer {
  let s = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [n, v] of headers) s += `${n}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

/** One chunk of a chunked body as we re-emit it toward dockerd (normalised: no extensions, no trailers). */
export function encodeChunk(data: Buffer): Buffer[] {
  return [Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, Buffer.from('\r\n', 'latin1')];
}

export const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
