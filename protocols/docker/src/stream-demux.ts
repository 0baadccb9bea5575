/**
 * Reads Docker's multiplexed stdout/stderr framing (Engine API "Attach to a container": an 8-byte header
 * `[stream, 0, 0, 0, size uint32 BE]` before each payload) for recording only — the client always gets the bytes
 * untouched. A TTY stream has no framing; when the bytes do not look like frames the demuxer passes them as stdout.
 */
export type DemuxedStream = 'out' | 'err' | 'in';

const EMPTY = Buffer.alloc(0);

export class StreamDemuxer {
  private mode: 'unknown' | 'framed' | 'raw';
  private header = EMPTY;
  private remaining = 0;
  private current: DemuxedStream = 'out';

  constructor(mode: 'unknown' | 'framed' | 'raw' = 'unknown') {
    this.mode = mode;
  }

  push(chunk: Buffer, emit: (stream: DemuxedStream, data: Buffer) => void): void {
    if (this.mode === 'raw') {
      emit('out', chunk);
      return;
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        emit(this.current, chunk.subarray(i, i + n));
        this.remaining -= n;
        i += n;
        continue;
      }
      let h: Buffer;
      if (this.header.length === 0 && chunk.length - i >= 8) {
        // The whole header is in this chunk (the usual case): read it in place, no copy per frame.
        h = chunk.subarray(i, i + 8);
        i += 8;
      } else {
        const need = 8 - this.header.length;
        this.header = Buffer.concat([this.header, chunk.subarray(i, i + need)]);
        i += Math.min(need, chunk.length - i);
        if (this.header.length < 8) return;
        h = this.header;
        this.header = EMPTY;
      }
      if (h[0]! > 2 || h[1] !== 0 || h[2] !== 0 || h[3] !== 0) {
        // Not framing after all (a TTY stream): everything from here on is raw output.
        this.mode = 'raw';
        emit('out', Buffer.concat([h, chunk.subarray(i)]));
        return;
      }
      this.mode = 'framed';
      this.current = h[0] === 2 ? 'err' : h[0] === 0 ? 'in' : 'out';
      this.remaining = h.readUInt32BE(4);
    }
  }
}
