import { createHash, type Hash } from 'node:crypto';
import { posix } from 'node:path';
import { SFTP, SFTP_OPEN_WRITE_FLAGS, SftpFramer, SftpReader, packetType } from './sftp-packets.js';

export interface FileTransferRecord {
  readonly via: 'sftp' | 'scp';
  readonly direction: 'upload' | 'download';
  readonly path: string;
  readonly bytes: number;
  /** Hex SHA-256 of the content, or null when it was not transferred front to back (random access). */
  readonly sha256: string | null;
}

/** A client request that changes files: the gate decides it before it is forwarded. */
export interface SftpWriteRequest {
  readonly requestId: number;
  readonly operation: 'open-write' | 'remove' | 'rename' | 'mkdir' | 'rmdir' | 'symlink' | 'setstat';
  readonly paths: readonly string[];
}

interface OpenFile {
  readonly path: string;
  write: boolean;
  bytes: number;
  nextOffset: number;
  hash: Hash | null;
}

/**
 * Reads the SFTP packets the gateway relays (both directions) without terminating the protocol: the bytes are
 * forwarded as whole packets, so throughput stays that of a plain relay while file names, sizes, direction and
 * content hashes are recorded, and write requests can be held for a decision.
 */
export class SftpInspector {
  readonly clientFramer = new SftpFramer();
  readonly serverFramer = new SftpFramer();
  private readonly pendingOpens = new Map<number, { path: string; write: boolean }>();
  private readonly pendingReads = new Map<number, { handle: string; offset: number }>();
  private readonly pendingRealpathDot = new Set<number>();
  private readonly files = new Map<string, OpenFile>();
  /** The user's working directory as the server reported it (REALPATH "."), to resolve relative paths. */
  private cwd: string | undefined;

  constructor(private readonly onTransfer: (record: FileTransferRecord) => void) {}

  resolve(path: string): string {
    if (path.startsWith('/') || this.cwd === undefined) return posix.normalize(path);
    return posix.resolve(this.cwd, path);
  }

  /** Inspect a client→server packet; returns the write request the gate must decide first, if any. */
  fromClient(packet: Buffer): SftpWriteRequest | undefined {
    const type = packetType(packet);
    if (type === SFTP.INIT) return undefined;
    const r = new SftpReader(packet);
    const id = r.uint32();
    switch (type) {
      case SFTP.WRITE: {
        const handle = r.bytes().toString('hex');
        const offset = r.uint64();
        const data = r.bytes();
        const f = this.files.get(handle);
        if (f !== undefined) this.account(f, offset, data);
        return undefined;
      }
      case SFTP.READ: {
        const handle = r.bytes().toString('hex');
        this.pendingReads.set(id, { handle, offset: r.uint64() });
        return undefined;
      }
      case SFTP.OPEN: {
        const path = this.resolve(r.string());
        const write = (r.uint32() & SFTP_OPEN_WRITE_FLAGS) !== 0;
        this.pendingOpens.set(id, { path, write });
        return write ? { requestId: id, operation: 'open-write', paths: [path] } : undefined;
      }
      case SFTP.CLOSE: {
        const handle = r.bytes().toString('hex');
        const f = this.files.get(handle);
        if (f !== undefined) {
          this.files.delete(handle);
          if (f.write || f.bytes > 0) {
            this.onTransfer({
              via: 'sftp',
              direction: f.write ? 'upload' : 'download',
              path: f.path,
              bytes: f.bytes,
              sha256: f.hash === null ? null : f.hash.digest('hex'),
            });
          }
        }
        return undefined;
      }
      case SFTP.REALPATH: {
        if (r.string() === '.') this.pendingRealpathDot.add(id);
        return undefined;
      }
      case SFTP.REMOVE:
        return { requestId: id, operation: 'remove', paths: [this.resolve(r.string())] };
      case SFTP.MKDIR:
        return { requestId: id, operation: 'mkdir', paths: [this.resolve(r.string())] };
      case SFTP.RMDIR:
        return { requestId: id, operation: 'rmdir', paths: [this.resolve(r.string())] };
      case SFTP.SETSTAT:
        return { requestId: id, operation: 'setstat', paths: [this.resolve(r.string())] };
      case SFTP.RENAME: {
        const from = this.resolve(r.string());
        return { requestId: id, operation: 'rename', paths: [from, this.resolve(r.string())] };
      }
      case SFTP.SYMLINK: {
        // OpenSSH sends (targetpath, linkpath) reversed from the draft; both are checked.
        const a = this.resolve(r.string());
        return { requestId: id, operation: 'symlink', paths: [a, this.resolve(r.string())] };
      }
      default:
        return undefined;
    }
  }

  /** Inspect a server→client packet. */
  fromServer(packet: Buffer): void {
    const type = packetType(packet);
    if (type === SFTP.VERSION) return;
    const r = new SftpReader(packet);
    const id = r.uint32();
    switch (type) {
      case SFTP.HANDLE: {
        const open = this.pendingOpens.get(id);
        if (open === undefined) return;
        this.pendingOpens.delete(id);
        this.files.set(r.bytes().toString('hex'), {
          path: open.path,
          write: open.write,
          bytes: 0,
          nextOffset: 0,
          hash: createHash('sha256'),
        });
        return;
      }
      case SFTP.DATA: {
        const read = this.pendingReads.get(id);
        if (read === undefined) return;
        this.pendingReads.delete(id);
        const f = this.files.get(read.handle);
        if (f !== undefined && !f.write) this.account(f, read.offset, r.bytes());
        return;
      }
      case SFTP.NAME: {
        if (this.pendingRealpathDot.delete(id) && r.uint32() >= 1) this.cwd = r.string();
        return;
      }
      case SFTP.STATUS:
        this.pendingOpens.delete(id);
        this.pendingReads.delete(id);
        this.pendingRealpathDot.delete(id);
        return;
      default:
        return;
    }
  }

  private account(f: OpenFile, offset: number, data: Buffer): void {
    f.bytes += data.length;
    if (f.hash !== null && offset === f.nextOffset) {
      f.hash.update(data);
      f.nextOffset += data.length;
    } else {
      f.hash = null;
    }
  }
}
