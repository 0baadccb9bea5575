import { describe, expect, it } from '@jest/globals';
import { isAgentgateError } from '@agentgate/core';
import { FrontendReader, type FrontendFrame } from './frontend-reader.js';
import {
  encodeBind,
  encodeCancelRequest,
  encodeCopyData,
  encodeDescribe,
  encodeExecute,
  encodeParse,
  encodeQuery,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
} from './encode.js';

const startup = encodeStartupMessage({ user: 'devin', database: 'app', application_name: 'psql' });
const typed = [
  encodeQuery('SELECT 1; SELECT 2'),
  encodeParse('s1', 'SELECT $1::int', [23]),
  encodeBind('', 's1', ['42']),
  encodeDescribe('P', ''),
  encodeExecute(''),
  encodeSync(),
  encodeCopyData(Buffer.alloc(3000, 7)),
  encodeTerminate(),
];
const stream = Buffer.concat([startup, ...typed]);

function summarize(frames: FrontendFrame[]): string[] {
  return frames.map((f) =>
    f.kind === 'message'
      ? `${String.fromCharCode(f.type)}:${f.bytes.toString('hex')}`
      : JSON.stringify({ ...f, params: f.kind === 'startup' ? [...f.params] : undefined }),
  );
}

function violationOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isAgentgateError(err, 'PROTOCOL_VIOLATION')) return err.message;
    throw err;
  }
  throw new Error('expected a protocol violation');
}

describe('FrontendReader', () => {
  const whole = summarize(new FrontendReader(1 << 20).push(stream));

  it('reads the startup packet then typed messages, bytes intact', () => {
    expect(whole).toHaveLength(1 + typed.length);
    expect(whole[0]).toContain('"protocolVersion":196608');
    expect(whole[0]).toContain('["application_name","psql"]');
    expect(whole.slice(1)).toEqual(typed.map((b) => `${String.fromCharCode(b[0]!)}:${b.toString('hex')}`));
  });

  it('gives the same frames when the stream is split at every offset', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new FrontendReader(1 << 20);
      const frames = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(summarize(frames)).toEqual(whole);
      expect(reader.pendingBytes).toBe(0);
    }
  });

  it('gives the same frames fed one byte at a time', () => {
    const reader = new FrontendReader(1 << 20);
    const frames: FrontendFrame[] = [];
    for (let i = 0; i < stream.length; i++) frames.push(...reader.push(stream.subarray(i, i + 1)));
    expect(summarize(frames)).toEqual(whole);
  });

  it('recognises SSLRequest, GSSENCRequest and CancelRequest before the startup packet', () => {
    const reader = new FrontendReader(1024);
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    expect(reader.push(ssl)).toEqual([{ kind: 'ssl-request' }]);
    expect(reader.push(gss)).toEqual([{ kind: 'gssenc-request' }]);
    expect(reader.inStartupPhase).toBe(true);
    expect(new FrontendReader(1024).push(encodeCancelRequest(1234, -5))).toEqual([
      { kind: 'cancel', processId: 1234, secretKey: -5 },
    ]);
  });

  it('refuses an unknown message type, a bad length, an oversized message and a truncated one', () => {
    const after =
      (bytes: Buffer, limit = 1024) =>
      () =>
        new FrontendReader(limit).push(Buffer.concat([startup, bytes]));
    expect(violationOf(after(Buffer.from([0x7a, 0, 0, 0, 4])))).toMatch(/unknown message type/);
    expect(violationOf(after(Buffer.from([0x51, 0, 0, 0, 2])))).toMatch(/invalid message length/);
    expect(violationOf(after(encodeQuery('x'.repeat(2000))))).toMatch(/exceeds the limit/);
    // An oversized header is refused as soon as it arrives, before the body is buffered.
    const reader = new FrontendReader(1024);
    reader.push(startup);
    reader.push(Buffer.from([0x51, 0, 0]));
    expect(violationOf(() => reader.push(Buffer.from([0x10, 0])))).toMatch(/exceeds the limit/);
    const truncated = new FrontendReader(1024);
    truncated.push(Buffer.concat([startup, encodeQuery('SELECT 1').subarray(0, 7)]));
    expect(violationOf(() => truncated.end())).toMatch(/truncated/);
    expect(violationOf(() => new FrontendReader(1024).push(Buffer.from([0, 0, 0, 8, 0, 2, 0, 0])))).toMatch(
      /unsupported frontend protocol/,
    );
    expect(violationOf(() => new FrontendReader(1024).push(Buffer.from([0x7f, 0, 0, 0])))).toMatch(
      /startup packet length/,
    );
  });
});
