/**
 * A batch's event rows in PostgreSQL's binary COPY format, for `COPY agentgate.events … FROM STDIN (FORMAT binary)`:
 * the server stores each field as sent, with no text to parse and no bytea hex to decode (docs/performance.md,
 * "Fleet shipping", has the formats compared). Small fields are packed into chunks of about 256 KiB; an io event's
 * bytes go out as their own chunk, uncopied.
 */
import type { ShipRows } from './ship-rows.js';

export const copyEventsSql =
  'COPY agentgate.events (session_id, seq, node, ts, type, denied, stored, io_data) FROM STDIN (FORMAT binary)';

const fieldsPerRow = 8;
const chunkBytes = 256 * 1024;
/** The binary format's header: signature, flags (0), header extension length (0). */
const header = Buffer.from([
  ...Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
  ...[0, 0, 0, 0],
  ...[0, 0, 0, 0],
]);
/** microseconds from the Unix epoch to PostgreSQL's (2000-01-01) */
const pgEpochMicros = 946_684_800_000_000;
const twoTo32 = 2 ** 32;

class ChunkWriter {
  readonly chunks: Buffer[] = [];
  private buffer = Buffer.allocUnsafe(chunkBytes);
  private at = 0;

  /** Make room for `bytes` more bytes in the current chunk. */
  reserve(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    this.cut();
    if (bytes > this.buffer.length) this.buffer = Buffer.allocUnsafe(bytes);
  }

  int16(value: number): void {
    this.reserve(2);
    this.at = this.buffer.writeInt16BE(value, this.at);
  }

  int32(value: number): void {
    this.reserve(4);
    this.at = this.buffer.writeInt32BE(value, this.at);
  }

  int32Field(value: number): void {
    this.reserve(8);
    this.at = this.buffer.writeInt32BE(4, this.at);
    this.at = this.buffer.writeInt32BE(value, this.at);
  }

  boolField(value: boolean): void {
    this.reserve(5);
    this.at = this.buffer.writeInt32BE(1, this.at);
    this.buffer[this.at++] = value ? 1 : 0;
  }

  /** A timestamptz from ms since the Unix epoch: int64 microseconds since 2000-01-01. */
  timestampField(ms: number): void {
    const micros = Math.round(ms * 1000) - pgEpochMicros;
    const high = Math.floor(micros / twoTo32);
    this.reserve(12);
    this.at = this.buffer.writeInt32BE(8, this.at);
    this.at = this.buffer.writeInt32BE(high, this.at);
    this.at = this.buffer.writeUInt32BE(micros - high * twoTo32, this.at);
  }

  /** A text field as UTF-8: its length is known only once written, so it is filled in after. */
  textField(value: string): void {
    // A UTF-16 code unit never takes more than 3 bytes in UTF-8.
    this.reserve(4 + value.length * 3);
    const written = this.buffer.write(value, this.at + 4, 'utf8');
    this.buffer.writeInt32BE(written, this.at);
    this.at += 4 + written;
  }

  /** A bytea field; large values are passed on as they are, not copied. */
  bytesField(value: Buffer | null): void {
    if (value === null) return this.int32(-1);
    this.int32(value.length);
    if (value.length < 4096) {
      this.reserve(value.length);
      this.at += value.copy(this.buffer, this.at);
      return;
    }
    this.cut();
    this.chunks.push(value);
  }

  bytes(value: Buffer): void {
    this.reserve(value.length);
    this.at += value.copy(this.buffer, this.at);
  }

  /** Close the current chunk (if it holds anything) and start a new one. */
  private cut(): void {
    if (this.at === 0) return;
    this.chunks.push(this.buffer.subarray(0, this.at));
    this.buffer = Buffer.allocUnsafe(chunkBytes);
    this.at = 0;
  }

  finish(): Buffer[] {
    this.cut();
    return this.chunks;
  }
}

/** The COPY data for a batch's events, header to trailer. */
export function copyEventsData(node: string, events: ShipRows['events']): Buffer[] {
  const out = new ChunkWriter();
  out.bytes(header);
  for (let i = 0; i < events.seq.length; i++) {
    out.int16(fieldsPerRow);
    out.textField(events.session[i]!);
    out.int32Field(events.seq[i]!);
    out.textField(node);
    out.timestampField(events.ts[i]!);
    out.textField(events.type[i]!);
    out.boolField(events.denied[i]!);
    out.textField(events.stored[i]!);
    out.bytesField(events.ioData[i]!);
  }
  out.int16(-1);
  return out.finish();
}
