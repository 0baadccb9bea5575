/**
 * Backend (server → client) framing with no I/O: every message is Byte1 type + Int32 length. `push` returns the
 * region of complete messages (a view of the chunk when nothing was left over) and keeps a partial tail, so the
 * session can scan messages in place and forward the region with one write. No per-message allocation.
 */
import { AgentgateError } from '@agentgate/core';

/** Upper bound for one upstream message; PostgreSQL itself caps a field at 1 GB. */
const MAX_BACKEND_MESSAGE_BYTES = 1 << 30;

export class BackendFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private needed = 0;

  /** Complete messages in this chunk plus whatever was left over, or null when no message completed yet. */
  push(chunk: Buffer): Buffer | null {
    let buf: Buffer;
    if (this.buffered === 0) buf = chunk;
    else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < this.needed) return null;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    let offset = 0;
    for (;;) {
      if (buf.length - offset < 5) {
        this.needed = 5;
        break;
      }
      const length = buf.readInt32BE(offset + 1);
      if (length < 4 || length >= MAX_BACKEND_MESSAGE_BYTES) {
        throw new AgentgateError(
          'PROTOCOL_VIOLATION',
          `agentgate: invalid upstream message length ${length}`,
        );
      }
      if (buf.length - offset < length + 1) {
        this.needed = length + 1;
        break;
      }
      offset += length + 1;
    }
    if (offset < buf.length) {
      const rest = buf.subarray(offset);
      this.chunks = [rest];
      this.buffered = rest.length;
    }
    // A chunk of whole messages (the usual answer) is the region itself: no view made of it per read.
    return offset === 0 ? null : offset === buf.length ? buf : buf.subarray(0, offset);
  }

  get pendingBytes(): number {
    return this.buffered;
  }

  /** Hands over the bytes of an incomplete message (for a new framer to continue from). */
  takePending(): Buffer | null {
    if (this.buffered === 0) return null;
    const rest = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }
}

/** Calls `visit(type, buf, start, end)` for each message in a region returned by `push` (start = type byte). */
export function forEachMessage(
  region: Buffer,
  visit: (type: number, buf: Buffer, start: number, end: number) => void,
): void {
  let offset = 0;
  while (offset < region.length) {
    const end = offset + 1 + region.readInt32BE(offset + 1);
    visit(region[offset]!, region, offset, end);
    offset = end;
  }
}
