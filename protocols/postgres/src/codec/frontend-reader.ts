/**
 * Frontend (client → server) framing with no I/O. PostgreSQL docs, "Message Flow" / "Message Formats": the first
 * packet of a connection is untyped (Int32 length, Int32 code: StartupMessage, SSLRequest, GSSENCRequest or
 * CancelRequest); after the StartupMessage every message is Byte1 type + Int32 length (length counts itself).
 * Frames are views into the received chunks: their bytes are forwarded upstream untouched.
 */
import { AgentgateError } from '@agentgate/core';
import { FrontendMessage } from './message-types.js';

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
export const PROTOCOL_3_0 = 196608;
/** The server's own limit for a startup packet (src/include/libpq/pqcomm.h MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_BYTES = 10000;

export type FrontendFrame =
  | {
      readonly kind: 'startup';
      readonly protocolVersion: number;
      readonly params: ReadonlyMap<string, string>;
    }
  | { readonly kind: 'ssl-request' }
  | { readonly kind: 'gssenc-request' }
  | { readonly kind: 'cancel'; readonly processId: number; readonly secretKey: number }
  /** A typed message; `bytes` is the whole message (type byte, length, body). */
  | { readonly kind: 'message'; readonly type: number; readonly bytes: Buffer };

const frontendTypes: ReadonlySet<number> = new Set(Object.values(FrontendMessage));

function violation(message: string): AgentgateError {
  return new AgentgateError('PROTOCOL_VIOLATION', `agentgate: ${message}`);
}

export class FrontendReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private startupPhase = true;
  /** Says when the limit applies, in the violation (` before authentication`). */
  private limitContext = '';

  constructor(private maxMessageBytes: number) {}

  /** Change the largest typed message accepted; `context` says when that limit applies. */
  setLimit(maxMessageBytes: number, context = ''): void {
    this.maxMessageBytes = maxMessageBytes;
    this.limitContext = context;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  get inStartupPhase(): boolean {
    return this.startupPhase;
  }

  /** Feed one chunk; returns the complete frames it finishes. Throws PROTOCOL_VIOLATION on malformed input. */
  push(chunk: Buffer): FrontendFrame[] {
    const frames: FrontendFrame[] = [];
    if (chunk.length === 0) return frames;
    let buf: Buffer;
    if (this.buffered === 0) buf = chunk;
    else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      // Wait for the whole frame before copying, so a large message is concatenated once, not once per chunk.
      // An invalid header (unknown type, length over the limit) is reported at once, not after buffering the body.
      const limit = this.startupPhase ? MAX_STARTUP_PACKET_BYTES : this.maxMessageBytes;
      const needed = this.neededBytes();
      if (this.buffered < needed && needed <= limit) return frames;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    let offset = 0;
    while (offset < buf.length) {
      const used = this.startupPhase
        ? this.readStartup(buf, offset, frames)
        : this.readTyped(buf, offset, frames);
      if (used === 0) break;
      offset += used;
    }
    if (offset < buf.length) {
      const rest = buf.subarray(offset);
      this.chunks = [rest];
      this.buffered = rest.length;
    }
    return frames;
  }

  /** Call at end of input: a partial frame left over means the client sent a truncated message. */
  end(): void {
    if (this.buffered > 0)
      throw violation(`truncated message (${this.buffered} bytes of an incomplete frame)`);
  }

  private neededBytes(): number {
    const head = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks.slice(0, 5));
    if (this.startupPhase) return head.length >= 4 ? head.readInt32BE(0) : 4;
    if (!frontendTypes.has(head[0]!)) return 0;
    return head.length >= 5 ? head.readInt32BE(1) + 1 : 5;
  }

  private readStartup(buf: Buffer, offset: number, frames: FrontendFrame[]): number {
    if (buf.length - offset < 4) return 0;
    const length = buf.readInt32BE(offset);
    if (length < 8 || length > MAX_STARTUP_PACKET_BYTES)
      throw violation(`invalid startup packet length ${length}`);
    if (buf.length - offset < length) return 0;
    const code = buf.readInt32BE(offset + 4);
    if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
      if (length !== 8) throw violation('invalid encryption request length');
      frames.push({ kind: code === SSL_REQUEST_CODE ? 'ssl-request' : 'gssenc-request' });
    } else if (code === CANCEL_REQUEST_CODE) {
      if (length !== 16) throw violation('invalid cancel request length');
      frames.push({
        kind: 'cancel',
        processId: buf.readInt32BE(offset + 8),
        secretKey: buf.readInt32BE(offset + 12),
      });
    } else {
      if (code >> 16 !== 3) throw violation(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
      frames.push({
        kind: 'startup',
        protocolVersion: code,
        params: parseStartupParams(buf.subarray(offset + 8, offset + length)),
      });
      this.startupPhase = false;
    }
    return length;
  }

  private readTyped(buf: Buffer, offset: number, frames: FrontendFrame[]): number {
    const type = buf[offset]!;
    if (!frontendTypes.has(type))
      throw violation(`unknown message type 0x${type.toString(16).padStart(2, '0')}`);
    if (buf.length - offset < 5) return 0;
    const length = buf.readInt32BE(offset + 1);
    if (length < 4) throw violation(`invalid message length ${length}`);
    if (length + 1 > this.maxMessageBytes)
      throw violation(
        `message of ${length + 1} bytes${this.limitContext} exceeds the limit of ${this.maxMessageBytes} bytes`,
      );
    if (buf.length - offset < length + 1) return 0;
    frames.push({ kind: 'message', type, bytes: buf.subarray(offset, offset + length + 1) });
    return length + 1;
  }
}

/** StartupMessage body: name/value pairs of NUL-terminated strings, then a final NUL. */
function parseStartupParams(body: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let offset = 0;
  for (;;) {
    const end = body.indexOf(0, offset);
    if (end < 0) throw violation('malformed startup packet');
    if (end === offset) break;
    const name = body.toString('utf8', offset, end);
    const valueEnd = body.indexOf(0, end + 1);
    if (valueEnd < 0) throw violation('malformed startup packet');
    params.set(name, body.toString('utf8', end + 1, valueEnd));
    offset = valueEnd + 1;
  }
  return params;
}
