import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';
import type { FileTransferRecord } from './sftp-inspector.js';

type ScpState =
  | { kind: 'header'; line: string }
  | { kind: 'content'; name: string; remaining: number; size: number; hash: Hash }
  | { kind: 'status-byte' };

/**
 * Follows the legacy scp protocol (rcp's, as `scp -O` still speaks it) in the sender's byte stream: control lines
 * `C<mode> <size> <name>\n`, `D…`/`E` for directories, `T…` times, then `size` content bytes and a status byte.
 * Records each file's name, size and SHA-256. Observes only; bytes are relayed untouched.
 */
export class ScpInspector {
  private state: ScpState = { kind: 'header', line: '' };
  private readonly dirs: string[] = [];

  constructor(
    private readonly direction: 'upload' | 'download',
    private readonly target: string,
    private readonly onTransfer: (record: FileTransferRecord) => void,
  ) {}

  observe(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      const s = this.state;
      if (s.kind === 'content') {
        const n = Math.min(s.remaining, chunk.length - i);
        s.hash.update(chunk.subarray(i, i + n));
        s.remaining -= n;
        i += n;
        if (s.remaining === 0) {
          this.onTransfer({
            via: 'scp',
            direction: this.direction,
            path: this.pathOf(s.name),
            bytes: s.size,
            sha256: s.hash.digest('hex'),
          });
          this.state = { kind: 'status-byte' };
        }
        continue;
      }
      if (s.kind === 'status-byte') {
        i++;
        this.state = { kind: 'header', line: '' };
        continue;
      }
      const nl = chunk.indexOf(0x0a, i);
      const end = nl < 0 ? chunk.length : nl;
      s.line += chunk.toString('utf8', i, end);
      i = end;
      if (nl < 0) {
        if (s.line.length > 4096) this.state = { kind: 'header', line: '' }; // not scp; stop growing
        break;
      }
      i++;
      this.control(s.line);
    }
  }

  private control(line: string): void {
    this.state = { kind: 'header', line: '' };
    const m = /^([CD])[0-7]{4} (\d+) (.*)$/.exec(line);
    if (m !== null) {
      if (m[1] === 'D') {
        this.dirs.push(m[3]!);
        return;
      }
      const size = Number(m[2]);
      if (size === 0) {
        this.onTransfer({
          via: 'scp',
          direction: this.direction,
          path: this.pathOf(m[3]!),
          bytes: 0,
          sha256: createHash('sha256').digest('hex'),
        });
        this.state = { kind: 'status-byte' };
        return;
      }
      this.state = { kind: 'content', name: m[3]!, remaining: size, size, hash: createHash('sha256') };
      return;
    }
    if (line === 'E') this.dirs.pop();
  }

  private pathOf(name: string): string {
    return posix.join(this.target, ...this.dirs, name);
  }
}
