import { describe, expect, it } from '@jest/globals';
import { BackendFramer, forEachMessage } from './backend-framer.js';
import { decodeDataRow, decodeErrorFields, decodeRowDescription } from './decode.js';
import { encodeErrorResponse, encodeParameterStatus, encodeReadyForQuery } from './encode.js';

function msg(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const rowDescription = msg(
  'T',
  Buffer.concat([
    Buffer.from([0, 2]),
    Buffer.from('id\0'),
    Buffer.from([0, 0, 0x40, 0, 0, 1, 0, 0, 0, 23, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0]),
    Buffer.from('raw\0'),
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1]),
  ]),
);
const dataRow = msg('D', Buffer.from([0, 2, 0, 0, 0, 2, 0x34, 0x32, 0, 0, 0, 3, 0xff, 0x00, 0xc3]));
const nullRow = msg('D', Buffer.from([0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
const stream = Buffer.concat([
  encodeParameterStatus('client_encoding', 'UTF8'),
  rowDescription,
  dataRow,
  nullRow,
  msg('C', Buffer.from('SELECT 2\0')),
  encodeReadyForQuery(0x49),
]);

function types(region: Buffer | null): string {
  let out = '';
  if (region) forEachMessage(region, (type) => (out += String.fromCharCode(type)));
  return out;
}

describe('BackendFramer', () => {
  it('hands a chunk of whole messages back as the region itself', () => {
    const framer = new BackendFramer();
    expect(framer.push(stream)).toBe(stream);
    const cut = stream.length - 3;
    expect(framer.push(stream.subarray(0, cut))?.length).toBeLessThan(cut);
  });

  it('returns complete messages split at every offset, bytes intact', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const framer = new BackendFramer();
      const a = framer.push(stream.subarray(0, cut));
      const b = framer.push(stream.subarray(cut));
      expect(types(a) + types(b)).toBe('STDDCZ');
      expect(Buffer.concat([a ?? Buffer.alloc(0), b ?? Buffer.alloc(0)]).equals(stream)).toBe(true);
      expect(framer.pendingBytes).toBe(0);
    }
  });

  it('handles one byte at a time and keeps an incomplete tail', () => {
    const framer = new BackendFramer();
    let seen = '';
    for (let i = 0; i < stream.length; i++) seen += types(framer.push(stream.subarray(i, i + 1)));
    expect(seen).toBe('STDDCZ');
    framer.push(dataRow.subarray(0, 6));
    expect(framer.takePending()?.length).toBe(6);
  });

  it('decodes row descriptions and rows: text values, binary as base64, NULL', () => {
    const fields = decodeRowDescription(rowDescription, 0, rowDescription.length);
    expect(fields.map((f) => [f.name, f.tableOid, f.columnAttnum, f.typeOid, f.format])).toEqual([
      ['id', 0x4000, 1, 23, 0],
      ['raw', 0, 0, 17, 1],
    ]);
    expect(decodeDataRow(dataRow, 0, (c) => fields[c]!.format === 1)).toEqual([
      '42',
      { base64: Buffer.from([0xff, 0, 0xc3]).toString('base64') },
    ]);
    expect(decodeDataRow(nullRow, 0, () => false)).toEqual([null, null]);
  });

  it('encodes an ErrorResponse the way decoders read it', () => {
    const err = encodeErrorResponse('ERROR', '42501', 'agentgate: denied by rule x');
    const fields = decodeErrorFields(err, 0, err.length);
    expect([err[0], fields.get('S'), fields.get('C'), fields.get('M')]).toEqual([
      0x45,
      'ERROR',
      '42501',
      'agentgate: denied by rule x',
    ]);
  });

  it('rejects an invalid length from upstream', () => {
    expect(() => new BackendFramer().push(Buffer.from([0x44, 0, 0, 0, 1]))).toThrow(
      /invalid upstream message length/,
    );
  });
});
