import { describe, expect, it } from '@jest/globals';
import { StreamDemuxer, type DemuxedStream } from './stream-demux.js';
import { maskInspectEnv } from './env-masking.js';

function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

function demuxAtEverySplit(input: Buffer): Array<[DemuxedStream, string]>[] {
  const all: Array<[DemuxedStream, string]>[] = [];
  for (let split = 0; split <= input.length; split++) {
    const d = new StreamDemuxer();
    const out: Array<[DemuxedStream, string]> = [];
    const emit = (s: DemuxedStream, data: Buffer): void => {
      const last = out[out.length - 1];
      if (last && last[0] === s) last[1] += data.toString();
      else out.push([s, data.toString()]);
    };
    d.push(input.subarray(0, split), emit);
    d.push(input.subarray(split), emit);
    all.push(out);
  }
  return all;
}

describe('stream demuxer (recording only)', () => {
  it('splits stdout and stderr frames at every offset', () => {
    const input = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err\n'), frame(1, 'out two\n')]);
    for (const r of demuxAtEverySplit(input)) {
      expect(r).toEqual([
        ['out', 'out one\n'],
        ['err', 'err\n'],
        ['out', 'out two\n'],
      ]);
    }
  });
  it('passes a TTY stream through as stdout', () => {
    for (const r of demuxAtEverySplit(Buffer.from('plain tty output\r\n')))
      expect(r).toEqual([['out', 'plain tty output\r\n']]);
  });
});

describe('inspect Env masking', () => {
  it('masks secret-looking names and detector hits, leaves the rest', () => {
    const body = Buffer.from(
      JSON.stringify({
        Id: 'x',
        Config: { Env: ['DB_PASSWORD=hunter2', 'api_key=k', 'PATH=/bin', 'MAIL=a@b.example'] },
        ContainerConfig: { Env: ['GITHUB_TOKEN=ghp'] },
      }),
    );
    const detectors = { mask: (v: string) => v.replace(/\S+@\S+/g, '[email]') };
    const res = maskInspectEnv(body, detectors);
    const doc = JSON.parse(res.body.toString()) as {
      Config: { Env: string[] };
      ContainerConfig: { Env: string[] };
    };
    expect(doc.Config.Env).toEqual(['DB_PASSWORD=****', 'api_key=****', 'PATH=/bin', 'MAIL=[email]']);
    expect(doc.ContainerConfig.Env).toEqual(['GITHUB_TOKEN=****']);
    expect(res.masked).toBe(4);
  });
  it('returns the same buffer when nothing is masked or the body is not JSON', () => {
    const plain = Buffer.from('{"Config":{"Env":["PATH=/bin"]}}');
    expect(maskInspectEnv(plain, undefined).body).toBe(plain);
    const junk = Buffer.from('not json');
    expect(maskInspectEnv(junk, undefined).body).toBe(junk);
  });
});
