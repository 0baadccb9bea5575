/**
 * Decoders for the client messages the session inspects (PostgreSQL docs "Message Formats"). Each takes the whole
 * message (type byte, length, body) as the FrontendReader framed it and checks every field against the message's
 * end, as the server does (pq_getmsg*): a string without its NUL, a count or length running past the end, or
 * bytes left over is a protocol violation (08P01), never a crash.
 */
import { AgentgateError } from '@agentgate/core';

export interface ParseMessage {
  readonly statementName: string;
  readonly text: string;
}

export interface BindMessage {
  readonly portal: string;
  readonly statementName: string;
  /** Parameters: text-format ones decoded, binary ones as base64 (`{ base64 }`), NULL as null. */
  readonly params: unknown[];
  /** Result-column format codes as sent (empty: all text; one: applies to all). */
  readonly resultFormats: number[];
}

/** Reads one message body field by field; `what` names the message in the violation. */
class BodyReader {
  private offset = 5;

  constructor(
    private readonly msg: Buffer,
    private readonly what: string,
  ) {}

  private fail(detail: string): never {
    throw new AgentgateError('PROTOCOL_VIOLATION', `agentgate: invalid ${this.what} message: ${detail}`);
  }

  cstring(field: string): string {
    const nul = this.msg.indexOf(0, this.offset);
    if (nul < 0) this.fail(`${field} has no terminating NUL`);
    const value = this.msg.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return value;
  }

  private need(n: number, field: string): void {
    if (this.offset + n > this.msg.length) this.fail(`${field} runs past the end of the message`);
  }

  int16(field: string): number {
    this.need(2, field);
    const value = this.msg.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(field: string): number {
    this.need(4, field);
    const value = this.msg.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  count(field: string): number {
    const n = this.int16(field);
    if (n < 0) this.fail(`${field} is negative (${n})`);
    return n;
  }

  /** `n` bytes as a view, after checking they are there. */
  bytes(n: number, field: string): { start: number; end: number } {
    this.need(n, field);
    const start = this.offset;
    this.offset += n;
    return { start, end: this.offset };
  }

  byte(field: string): number {
    this.need(1, field);
    return this.msg[this.offset++]!;
  }

  end(): void {
    if (this.offset !== this.msg.length)
      this.fail(`${this.msg.length - this.offset} bytes after the last field`);
  }
}

export function decodeQuery(msg: Buffer): string {
  const r = new BodyReader(msg, 'Query');
  const text = r.cstring('the query string');
  r.end();
  return text;
}

export function decodeParse(msg: Buffer): ParseMessage {
  const r = new BodyReader(msg, 'Parse');
  const statementName = r.cstring('the statement name');
  const text = r.cstring('the query string');
  const types = r.count('the parameter type count');
  for (let i = 0; i < types; i++) r.int32(`parameter type ${i + 1}`);
  r.end();
  return { statementName, text };
}

export function decodeBind(msg: Buffer): BindMessage {
  const r = new BodyReader(msg, 'Bind');
  const portal = r.cstring('the portal name');
  const statementName = r.cstring('the statement name');
  const formatCount = r.count('the parameter format count');
  const formats: number[] = [];
  for (let i = 0; i < formatCount; i++) formats.push(r.int16(`parameter format ${i + 1}`));
  const paramCount = r.count('the parameter count');
  if (formatCount > 1 && formatCount !== paramCount)
    throw new AgentgateError(
      'PROTOCOL_VIOLATION',
      `agentgate: invalid Bind message: ${formatCount} parameter formats for ${paramCount} parameters`,
    );
  const params: unknown[] = [];
  for (let i = 0; i < paramCount; i++) {
    const len = r.int32(`the length of parameter ${i + 1}`);
    if (len < 0) {
      params.push(null);
      continue;
    }
    const { start, end } = r.bytes(len, `parameter ${i + 1}`);
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    params.push(
      format === 1 ? { base64: msg.toString('base64', start, end) } : msg.toString('utf8', start, end),
    );
  }
  const resultCount = r.count('the result format count');
  const resultFormats: number[] = [];
  for (let i = 0; i < resultCount; i++) resultFormats.push(r.int16(`result format ${i + 1}`));
  r.end();
  return { portal, statementName, params, resultFormats };
}

/** Execute: portal name and row limit. */
export function decodeExecute(msg: Buffer): { portal: string; maxRows: number } {
  const r = new BodyReader(msg, 'Execute');
  const portal = r.cstring('the portal name');
  const maxRows = r.int32('the row limit');
  r.end();
  return { portal, maxRows };
}

/** Close / Describe: 'S' (statement) or 'P' (portal) and the name. */
export function decodeTarget(msg: Buffer, what: 'Close' | 'Describe'): { target: 'S' | 'P'; name: string } {
  const r = new BodyReader(msg, what);
  const kind = String.fromCharCode(r.byte('the target kind'));
  if (kind !== 'S' && kind !== 'P')
    throw new AgentgateError(
      'PROTOCOL_VIOLATION',
      `agentgate: invalid ${what} message: target kind '${kind}' is neither S nor P`,
    );
  const name = r.cstring('the name');
  r.end();
  return { target: kind, name };
}

/** FunctionCall: the function's OID (the arguments stay opaque). */
export function decodeFunctionCallOid(msg: Buffer): number {
  return new BodyReader(msg, 'FunctionCall').int32('the function OID');
}

/** PasswordMessage: the cleartext password (the gateway's token). */
export function decodePassword(msg: Buffer): string {
  const r = new BodyReader(msg, 'password');
  const password = r.cstring('the password');
  r.end();
  return password;
}
