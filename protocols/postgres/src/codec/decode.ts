/**
 * Small decoders for the server's message bodies (PostgreSQL docs, "Message Formats"). All take the whole message
 * (`start` = type byte) and read in place. The client's messages are decoded, and checked, in frontend-decode.ts.
 */

/** Reads a NUL-terminated string at `offset`; returns it and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number, end: number): [string, number] {
  const nul = buf.indexOf(0, offset);
  if (nul < 0 || nul >= end) throw new RangeError('unterminated string');
  return [buf.toString('utf8', offset, nul), nul + 1];
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

/** A DataRow of a simple query (every column text), as the catalog reads use it. */
export function decodeTextRow(buf: Buffer, start: number): (string | null)[] {
  const count = buf.readInt16BE(start + 5);
  let offset = start + 7;
  const values: (string | null)[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const len = buf.readInt32BE(offset);
    offset += 4;
    if (len < 0) values[i] = null;
    else {
      values[i] = buf.toString('utf8', offset, offset + len);
      offset += len;
    }
  }
  return values;
}

/** A column's format under Bind's result format codes: none means text, one applies to every column. */
export function bindFormatOf(formats: readonly number[], column: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[column] ?? 0);
}
