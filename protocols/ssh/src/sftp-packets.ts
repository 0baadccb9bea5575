/**
 * SFTP v3 framing and the few fields the gateway reads (draft-ietf-secsh-filexfer-02 §3, §6, §7): every packet is
 * `uint32 length, byte type, [uint32 request-id], payload`. Pure: no I/O.
 */
export const SFTP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  SETSTAT: 9,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  RENAME: 18,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
} as const;

/** §6.3 pflags */
export const SFTP_OPEN_WRITE_FLAGS = 0x02 | 0x04 | 0x08 | 0x10; // WRITE | APPEND | CREAT | TRUNC
export const SFTP_STATUS_PERMISSION_DENIED = 3;

/** Largest packet accepted (OpenSSH's sftp-server uses 256 KiB; leave room for extensions). */
export const SFTP_MAX_PACKET = 4 * 1024 * 1024;

/** Splits a byte stream into whole SFTP packets, across any chunk boundaries. */
export class SftpFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Returns the complete packets (length prefix included) now available. Throws on an oversized packet. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten();
      const total = head.readUInt32BE(0) + 4;
      if (total > SFTP_MAX_PACKET)
        throw new Error(`sftp packet of ${total} bytes exceeds ${SFTP_MAX_PACKET}`);
      if (this.buffered < total) break;
      out.push(this.take(total));
    }
    return out;
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const all = this.flatten();
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered -= n;
    return all.subarray(0, n);
  }
}

/** A cursor over one packet's payload. */
export class SftpReader {
  private pos: number;
  constructor(
    private readonly packet: Buffer,
    start = 5,
  ) {
    this.pos = start;
  }
  uint32(): number {
    const v = this.packet.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint64(): number {
    const v = this.packet.readBigUInt64BE(this.pos);
    this.pos += 8;
    return Number(v);
  }
  bytes(): Buffer {
    const len = this.uint32();
    const v = this.packet.subarray(this.pos, this.pos + len);
    if (v.length !== len) throw new Error('truncated sftp packet');
    this.pos += len;
    return v;
  }
  string(): string {
    return this.bytes().toString('utf8');
  }
}

export function packetType(packet: Buffer): number {
  return packet[4] ?? 0;
}

/** §7 SSH_FXP_STATUS */
export function statusPacket(requestId: number, code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const lang = Buffer.from('en', 'utf8');
  const body = Buffer.alloc(4 + 1 + 4 + 4 + 4 + msg.length + 4 + lang.length);
  let o = body.writeUInt32BE(body.length - 4, 0);
  o = body.writeUInt8(SFTP.STATUS, o);
  o = body.writeUInt32BE(requestId, o);
  o = body.writeUInt32BE(code, o);
  o = body.writeUInt32BE(msg.length, o);
  o += msg.copy(body, o);
  o = body.writeUInt32BE(lang.length, o);
  lang.copy(body, o);
  return body;
}
