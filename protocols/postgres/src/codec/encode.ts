/**
 * Pure encoders for the backend messages the gateway itself sends to clients (PostgreSQL docs, "Message Formats").
 * Frontend encoders follow for the messages the gateway sends upstream (and tests send as a client).
 */

import { BackendMessage } from './message-types.js';

function message(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function int32s(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => out.writeInt32BE(v, i * 4));
  return out;
}

function cstring(text: string): Buffer {
  return Buffer.from(text + '\0', 'utf8');
}

export type Severity = 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING';

/** ErrorResponse / NoticeResponse: fields S (localized severity), V (severity), C (SQLSTATE), M (message). */
export function encodeErrorResponse(
  severity: Severity,
  sqlstate: string,
  text: string,
  detail?: string,
  kind: 'E' | 'N' = 'E',
): Buffer {
  const fields = [
    cstring('S' + severity),
    cstring('V' + severity),
    cstring('C' + sqlstate),
    cstring('M' + text),
  ];
  if (detail !== undefined) fields.push(cstring('D' + detail));
  fields.push(Buffer.from([0]));
  return message(kind, Buffer.concat(fields));
}

export function encodeNoticeResponse(sqlstate: string, text: string): Buffer {
  return encodeErrorResponse('NOTICE', sqlstate, text, undefined, 'N');
}

export const encodeAuthenticationOk = (): Buffer => message('R', int32s(0));
export const encodeAuthenticationCleartextPassword = (): Buffer => message('R', int32s(3));
export const encodeBackendKeyData = (processId: number, secretKey: number): Buffer =>
  message('K', int32s(processId, secretKey));
export const encodeParameterStatus = (name: string, value: string): Buffer =>
  message('S', Buffer.concat([cstring(name), cstring(value)]));

/** ReadyForQuery with transaction status `I` (idle), `T` (in a block) or `E` (failed block). */
export function encodeReadyForQuery(status: number): Buffer {
  const out = Buffer.allocUnsafe(6);
  out[0] = BackendMessage.ReadyForQuery;
  out.writeInt32BE(5, 1);
  out[5] = status;
  return out;
}

/** The one-byte answer to SSLRequest / GSSENCRequest. */
export const SSL_ACCEPT = Buffer.from('S');
export const ENCRYPTION_REFUSED = Buffer.from('N');

// ---- frontend messages (gateway → upstream; also used by tests to build client input) ----

function int32(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeInt32BE(value, 0);
  return out;
}

function int16(value: number): Buffer {
  const out = Buffer.allocUnsafe(2);
  out.writeInt16BE(value, 0);
  return out;
}

/** StartupMessage (protocol 3.0): untyped, Int32 length, Int32 196608, name/value pairs, final NUL. */
export function encodeStartupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    int32(196608),
    ...Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]),
    Buffer.from([0]),
  ]);
  return Buffer.concat([int32(body.length + 4), body]);
}

export const encodeSslRequest = (): Buffer => int32s(8, 80877103);
export const encodeCancelRequest = (processId: number, secretKey: number): Buffer =>
  int32s(16, 80877102, processId, secretKey);
export const encodePasswordMessage = (password: string): Buffer => message('p', cstring(password));

export function encodeSaslInitialResponse(mechanism: string, data: string): Buffer {
  const payload = Buffer.from(data, 'utf8');
  return message('p', Buffer.concat([cstring(mechanism), int32(payload.length), payload]));
}

export const encodeSaslResponse = (data: string): Buffer => message('p', Buffer.from(data, 'utf8'));
export const encodeQuery = (text: string): Buffer => message('Q', cstring(text));
export const encodeSync = (): Buffer => message('S', Buffer.alloc(0));
export const encodeFlush = (): Buffer => message('H', Buffer.alloc(0));
export const encodeTerminate = (): Buffer => message('X', Buffer.alloc(0));
export const encodeCopyData = (data: Buffer): Buffer => message('d', data);

export function encodeParse(name: string, text: string, paramTypes: readonly number[] = []): Buffer {
  return message(
    'P',
    Buffer.concat([cstring(name), cstring(text), int16(paramTypes.length), ...paramTypes.map(int32)]),
  );
}

/** Bind with text-format parameters (null = SQL NULL) and text results. */
export function encodeBind(portal: string, statement: string, params: readonly (string | null)[]): Buffer {
  const values = params.map((p) =>
    p === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(p)), Buffer.from(p)]),
  );
  return message(
    'B',
    Buffer.concat([cstring(portal), cstring(statement), int16(0), int16(params.length), ...values, int16(0)]),
  );
}

export const encodeDescribe = (target: 'S' | 'P', name: string): Buffer =>
  message('D', Buffer.concat([Buffer.from(target), cstring(name)]));
export const encodeExecute = (portal: string, maxRows = 0): Buffer =>
  message('E', Buffer.concat([cstring(portal), int32(maxRows)]));
export const encodeClose = (target: 'S' | 'P', name: string): Buffer =>
  message('C', Buffer.concat([Buffer.from(target), cstring(name)]));

/** FunctionCall (fastpath) with text-format arguments. */
export function encodeFunctionCall(oid: number, args: readonly string[]): Buffer {
  return message(
    'F',
    Buffer.concat([
      int32(oid),
      int16(0),
      int16(args.length),
      ...args.map((a) => Buffer.concat([int32(Buffer.byteLength(a)), Buffer.from(a)])),
      int16(0),
    ]),
  );
}
