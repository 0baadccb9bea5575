/**
 * Small decoders for the message bodies the session inspects (PostgreSQL docs, "Message Formats"). All take the
 * whole message (`start` = type byte) and read in place.
 */

/** Reads a NUL-terminated string at `offset`; returns it and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number, end: number): [string, number] {
  const nul = buf.indexOf(0, offset);
  if (nul < 0 || nul >= end) throw new RangeError('unterminated string');
  return [buf.toString('utf8', offset, nul), nul + 1];
}

export interface ParseMessage {
  readonly statementName: string;
  readonly text: string;
}

export function decodeParse(msg: Buffer): ParseMessage {
  const [statementName, next] = readCString(msg, 5, msg.length);
  const [text] = readCString(msg, next, msg.length);
  return { statementName, text };
}

export interface BindMessage {
  readonly portal: string;
  readonly statementName: string;
  /** Parameters: text-format ones decoded, binary ones as base64 (`{ base64 }`), NULL as null. */
  readonly params: unknown[];
  /** Result-column format codes as sent (empty: all text; one: applies to all). */
  readonly resultFormats: number[];
}

export function decodeBind(msg: Buffer): BindMessage {
  const [portal, afterPortal] = readCString(msg, 5, msg.length);
  const [statementName, afterName] = readCString(msg, afterPortal, msg.length);
  let offset = afterName;
  const formatCount = msg.readInt16BE(offset);
  offset += 2;
  const formats: number[] = [];
  for (let i = 0; i < formatCount; i++, offset += 2) formats.push(msg.readInt16BE(offset));
  const paramCount = msg.readInt16BE(offset);
  offset += 2;
  const params: unknown[] = [];
  for (let i = 0; i < paramCount; i++) {
    const len = msg.readInt32BE(offset);
    offset += 4;
    if (len < 0) {
      params.push(null);
      continue;
    }
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
    params.push(
      format === 1
        ? { base64: msg.toString('base64', offset, offset + len) }
        : msg.toString('utf8', offset, offset + len),
    );
    offset += len;
  }
  const resultCount = msg.readInt16BE(offset);
  offset += 2;
  const resultFormats: number[] = [];
  for (let i = 0; i < resultCount; i++, offset += 2) resultFormats.push(msg.readInt16BE(offset));
  return { portal, statementName, params, resultFormats };
}

/** Execute: portal name and row limit. */
export function decodeExecute(msg: Buffer): { portal: string; maxRows: number } {
  const [portal, offset] = readCString(msg, 5, msg.length);
  return { portal, maxRows: msg.readInt32BE(offset) };
}

/** Close / Describe: 'S' (statement) or 'P' (portal) and the name. */
export function decodeTarget(msg: Buffer): { target: 'S' | 'P'; name: string } {
  const [name] = readCString(msg, 6, msg.length);
  return { target: msg[5] === 0x53 ? 'S' : 'P', name };
}

export function decodeQuery(msg: Buffer): string {
  return readCString(msg, 5, msg.length)[0];
}

/** FunctionCall: the function's OID (the arguments stay opaque). */
export function decodeFunctionCallOid(msg: Buffer): number {
  return msg.readInt32BE(5);
}

export interface FieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly columnAttnum: number;
  readonly typeOid: number;
  readonly format: number;
}

export function decodeRowDescription(buf: Buffer, start: number, end: number): FieldDescription[] {
  const count = buf.readInt16BE(start + 5);
  let offset = start + 7;
  const fields: FieldDescription[] = [];
  for (let i = 0; i < count; i++) {
    let name: string;
    [name, offset] = readCString(buf, offset, end);
    fields.push({
      name,
      tableOid: buf.readInt32BE(offset),
      columnAttnum: buf.readInt16BE(offset + 4),
      typeOid: buf.readInt32BE(offset + 6),
      format: buf.readInt16BE(offset + 16),
    });
    offset += 18;
  }
  return fields;
}

/** DataRow values for the transcript: text decoded, binary as base64, NULL as null. */
export function decodeDataRow(buf: Buffer, start: number, binary: (column: number) => boolean): unknown[] {
  const count = buf.readInt16BE(start + 5);
  let offset = start + 7;
  const values: unknown[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const len = buf.readInt32BE(offset);
    offset += 4;
    if (len < 0) values[i] = null;
    else {
      values[i] = binary(i)
        ? { base64: buf.toString('base64', offset, offset + len) }
        : buf.toString('utf8', offset, offset + len);
      offset += len;
    }
  }
  return values;
}

/** CommandComplete tag, e.g. `SELECT 3`, `INSERT 0 1`. */
export function decodeCommandTag(buf: Buffer, start: number, end: number): string {
  return readCString(buf, start + 5, end)[0];
}

/** Rows affected/returned from a command tag (the last number), or null. */
export function rowCountOfTag(tag: string): number | null {
  const m = /(\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}

/** ErrorResponse / NoticeResponse fields by code letter. */
export function decodeErrorFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const fields = new Map<string, string>();
  let offset = start + 5;
  while (offset < end && buf[offset] !== 0) {
    const code = String.fromCharCode(buf[offset]!);
    let value: string;
    [value, offset] = readCString(buf, offset + 1, end);
    fields.set(code, value);
  }
  return fields;
}

export function decodeParameterStatus(buf: Buffer, start: number, end: number): [string, string] {
  const [name, next] = readCString(buf, start + 5, end);
  const [value] = readCString(buf, next, end);
  return [name, value];
}
