import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { ScpInspector } from './scp-inspector.js';
import type { FileTransferRecord } from './sftp-inspector.js';
import { envAllowed } from './env-allow.js';

describe('ScpInspector', () => {
  it('records each file of a legacy scp stream however it is chunked', () => {
    const a = Buffer.alloc(70_000, 1);
    const stream = Buffer.concat([
      Buffer.from('T1700000000 0 1700000000 0\n'),
      Buffer.from(`C0644 ${a.length} a.bin\n`),
      a,
      Buffer.from([0]),
      Buffer.from('D0755 0 sub\n'),
      Buffer.from('C0600 0 empty\n'),
      Buffer.from([0]),
      Buffer.from('E\n'),
    ]);
    for (const step of [1, 7, 4096, stream.length]) {
      const records: FileTransferRecord[] = [];
      const ins = new ScpInspector('upload', '/srv', (r) => records.push(r));
      for (let i = 0; i < stream.length; i += step) ins.observe(stream.subarray(i, i + step));
      expect(records).toEqual([
        {
          via: 'scp',
          direction: 'upload',
          path: '/srv/a.bin',
          bytes: a.length,
          sha256: createHash('sha256').update(a).digest('hex'),
        },
        {
          via: 'scp',
          direction: 'upload',
          path: '/srv/sub/empty',
          bytes: 0,
          sha256: createHash('sha256').digest('hex'),
        },
      ]);
    }
  });
});

describe('envAllowed', () => {
  it('matches names against globs', () => {
    expect(envAllowed('LC_ALL', ['LANG', 'LC_*'])).toBe(true);
    expect(envAllowed('LANG', ['LANG'])).toBe(true);
    expect(envAllowed('LD_PRELOAD', ['LANG', 'LC_*'])).toBe(false);
  });
});
