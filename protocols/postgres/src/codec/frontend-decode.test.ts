import { describe, expect, it } from '@jest/globals';
import { isAgentgateError } from '@agentgate/core';
import {
  encodeBind,
  encodeClose,
  encodeExecute,
  encodeFunctionCall,
  encodeParse,
  encodeQuery,
} from './encode.js';
import {
  decodeBind,
  decodeExecute,
  decodeFunctionCallOid,
  decodeParse,
  decodePassword,
  decodeQuery,
  decodeTarget,
} from './frontend-decode.js';

/** The message cut to `bodyBytes` of its body, its length field saying so (as a framed message would). */
function cut(msg: Buffer, bodyBytes: number): Buffer {
  const out = Buffer.from(msg.subarray(0, 5 + bodyBytes));
  out.writeInt32BE(4 + bodyBytes, 1);
  return out;
}

function violation(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isAgentgateError(err, 'PROTOCOL_VIOLATION')) return err.message;
    throw err;
  }
  throw new Error('no violation');
}

describe('client message decoders', () => {
  it('decode what the encoders wrote', () => {
    expect(decodeQuery(encodeQuery('SELECT 1'))).toBe('SELECT 1');
    expect(decodeParse(encodeParse('s1', 'SELECT $1', [23]))).toEqual({
      statementName: 's1',
      text: 'SELECT $1',
    });
    expect(decodeBind(encodeBind('p', 's1', ['42', null]))).toEqual({
      portal: 'p',
      statementName: 's1',
      params: ['42', null],
      resultFormats: [],
    });
    expect(decodeExecute(encodeExecute('p', 10))).toEqual({ portal: 'p', maxRows: 10 });
    expect(decodeTarget(encodeClose('S', 's1'), 'Close')).toEqual({ target: 'S', name: 's1' });
    expect(decodeFunctionCallOid(encodeFunctionCall(1397, ['-3']))).toBe(1397);
    expect(decodePassword(encodeQuery('tok'))).toBe('tok');
  });

  const whole: [string, Buffer, (msg: Buffer) => unknown][] = [
    ['Query', encodeQuery('SELECT 1'), decodeQuery],
    ['Parse', encodeParse('s1', 'SELECT $1, $2', [23, 25]), decodeParse],
    ['Bind', encodeBind('portal', 's1', ['42', null, 'text']), decodeBind],
    ['Execute', encodeExecute('portal', 5), decodeExecute],
    ['Close', encodeClose('P', 'portal'), (m) => decodeTarget(m, 'Close')],
  ];

  it.each(whole)(
    'refuse a %s cut at any offset as a protocol violation naming the message',
    (name, msg, decode) => {
      for (let body = 0; body < msg.length - 5; body++) {
        expect(violation(() => decode(cut(msg, body)))).toMatch(
          new RegExp(`^agentgate: invalid ${name} message: `),
        );
      }
    },
  );

  it.each(whole)('refuse a %s with bytes after its last field', (name, msg, decode) => {
    const longer = Buffer.concat([msg, Buffer.from([1, 2])]);
    longer.writeInt32BE(longer.length - 1, 1);
    expect(violation(() => decode(longer))).toBe(
      `agentgate: invalid ${name} message: 2 bytes after the last field`,
    );
  });

  it('refuse counts that are negative or disagree', () => {
    const bind = encodeBind('', '', ['1']);
    const negative = Buffer.from(bind);
    negative.writeInt16BE(-1, 7); // parameter format count, after two empty names
    expect(violation(() => decodeBind(negative))).toMatch(/parameter format count is negative/);
    const formats = Buffer.concat([bind.subarray(0, 7), Buffer.from([0, 2, 0, 0, 0, 1]), bind.subarray(9)]);
    formats.writeInt32BE(formats.length - 1, 1);
    expect(violation(() => decodeBind(formats))).toMatch(/2 parameter formats for 1 parameters/);
    expect(violation(() => decodeTarget(encodeClose('S', 'x').fill(0x5a, 5, 6), 'Close'))).toMatch(
      /target kind 'Z' is neither S nor P/,
    );
  });
});
