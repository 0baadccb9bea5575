import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { SFTP, SftpFramer, SftpReader, packetType, statusPacket } from './sftp-packets.js';
import { SftpInspector, type FileTransferRecord } from './sftp-inspector.js';

function packet(type: number, ...fields: (number | string | Buffer | bigint)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([type])];
  for (const f of fields) {
    if (typeof f === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(f);
      parts.push(b);
    } else if (typeof f === 'bigint') {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(f);
      parts.push(b);
    } else {
      const data = typeof f === 'string' ? Buffer.from(f) : f;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      parts.push(len, data);
    }
  }
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

describe('SftpFramer', () => {
  it('yields the same packets wherever the stream is split', () => {
    const stream = Buffer.concat([
      packet(SFTP.OPEN, 1, '/tmp/a', 0x1a, 0),
      packet(SFTP.WRITE, 2, 'h1', 0n, Buffer.alloc(1000, 7)),
      packet(SFTP.CLOSE, 3, 'h1'),
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const step of [1, 3, 64]) {
        const f = new SftpFramer();
        const out: Buffer[] = [];
        out.push(...f.push(stream.subarray(0, cut)));
        for (let i = cut; i < stream.length; i += step)
          out.push(...f.push(stream.subarray(i, Math.min(i + step, stream.length))));
        expect(out.map(packetType)).toEqual([SFTP.OPEN, SFTP.WRITE, SFTP.CLOSE]);
        expect(Buffer.concat(out).equals(stream)).toBe(true);
      }
    }
  });

  it('refuses an oversized packet length', () => {
    const f = new SftpFramer();
    expect(() => f.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]))).toThrow(/exceeds/);
  });

  it('encodes SSH_FXP_STATUS', () => {
    const p = statusPacket(42, 3, 'agentgate: denied by rule x');
    const r = new SftpReader(p);
    expect(packetType(p)).toBe(SFTP.STATUS);
    expect(r.uint32()).toBe(42);
    expect(r.uint32()).toBe(3);
    expect(r.string()).toBe('agentgate: denied by rule x');
    expect(p.readUInt32BE(0)).toBe(p.length - 4);
  });
});

describe('SftpInspector', () => {
  it('records uploads and downloads with size and SHA-256, resolving relative paths against the home dir', () => {
    const records: FileTransferRecord[] = [];
    const ins = new SftpInspector((r) => records.push(r));
    ins.fromClient(packet(SFTP.REALPATH, 1, '.'));
    ins.fromServer(packet(SFTP.NAME, 1, 1, '/home/deploy', '/home/deploy', Buffer.alloc(4)));
    const req = ins.fromClient(packet(SFTP.OPEN, 2, 'notes.txt', 0x1a, 0));
    expect(req).toEqual({ requestId: 2, operation: 'open-write', paths: ['/home/deploy/notes.txt'] });
    ins.fromServer(packet(SFTP.HANDLE, 2, 'H'));
    ins.fromClient(packet(SFTP.WRITE, 3, 'H', 0n, Buffer.from('hello ')));
    ins.fromClient(packet(SFTP.WRITE, 4, 'H', 6n, Buffer.from('world')));
    ins.fromClient(packet(SFTP.CLOSE, 5, 'H'));
    expect(ins.fromClient(packet(SFTP.OPEN, 6, '/etc/motd', 0x01, 0))).toBeUndefined();
    ins.fromServer(packet(SFTP.HANDLE, 6, 'R'));
    ins.fromClient(packet(SFTP.READ, 7, 'R', 0n, 32768));
    ins.fromServer(packet(SFTP.DATA, 7, Buffer.from('motd')));
    ins.fromClient(packet(SFTP.CLOSE, 8, 'R'));
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(records).toEqual([
      {
        via: 'sftp',
        direction: 'upload',
        path: '/home/deploy/notes.txt',
        bytes: 11,
        sha256: sha('hello world'),
      },
      { via: 'sftp', direction: 'download', path: '/etc/motd', bytes: 4, sha256: sha('motd') },
    ]);
  });

  it('asks for decisions on every request that changes files', () => {
    const ins = new SftpInspector(() => undefined);
    expect(ins.fromClient(packet(SFTP.REMOVE, 1, '/a'))?.operation).toBe('remove');
    expect(ins.fromClient(packet(SFTP.MKDIR, 2, '/d', 0))?.operation).toBe('mkdir');
    expect(ins.fromClient(packet(SFTP.RENAME, 3, '/a', '/b'))?.paths).toEqual(['/a', '/b']);
    expect(ins.fromClient(packet(SFTP.READ, 4, 'x', 0n, 10))).toBeUndefined();
  });
});
