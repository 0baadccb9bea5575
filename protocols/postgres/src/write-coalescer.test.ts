import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { WriteCoalescer } from './write-coalescer.js';

/** A real Writable that holds every write until `release()` (a peer that is not reading). */
function slowSink(highWaterMark: number) {
  const written: Buffer[] = [];
  const held: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      held.push(cb);
    },
  });
  return { sink, written, release: () => held.splice(0).forEach((cb) => cb()) };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WriteCoalescer', () => {
  it('merges adjacent views of one chunk into one write per tick', async () => {
    const { sink, written, release } = slowSink(1 << 20);
    const out = new WriteCoalescer(
      () => sink,
      () => undefined,
    );
    const chunk = Buffer.from('abcdefgh');
    out.write(chunk.subarray(0, 3));
    out.write(chunk.subarray(3, 8));
    await tick();
    expect(written.map((b) => b.toString())).toEqual(['abcdefgh']);
    release();
  });

  it('keeps runs of different chunks apart and in order, each run one buffer', async () => {
    const written: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk);
        cb();
      },
    });
    const out = new WriteCoalescer(
      () => sink,
      () => undefined,
    );
    // Not from Buffer's shared pool, where two small buffers may happen to be adjacent.
    const first = Buffer.alloc(16, 'BindDescExecSync');
    const other = Buffer.alloc(5, 'Query');
    for (let at = 0; at < 16; at += 4) out.write(first.subarray(at, at + 4));
    out.write(other);
    out.write(first.subarray(4, 8)); // not after the last write: a run of its own
    out.write(first.subarray(8, 16));
    await tick();
    expect(written.map((b) => b.toString())).toEqual(['BindDescExecSync', 'Query', 'DescExecSync']);
    expect(written[0]!.buffer).toBe(first.buffer);
  });

  it('keeps held writes past the end of the tick and sends them with the later ones at the release', async () => {
    const { sink, written, release } = slowSink(1 << 20);
    const out = new WriteCoalescer(
      () => sink,
      () => undefined,
    );
    const chunk = Buffer.from('BindExecSync');
    out.write(chunk.subarray(0, 4));
    out.hold(true);
    await tick();
    expect(written).toEqual([]);
    out.write(chunk.subarray(4, 8));
    out.hold(false);
    out.write(chunk.subarray(8));
    await tick();
    expect(written.map((b) => b.toString())).toEqual(['BindExecSync']);
    release();
  });

  it('sends the writes held over one read at releaseNow, leaving nothing for the end of the tick', async () => {
    const written: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk.toString());
        cb();
      },
    });
    const out = new WriteCoalescer(
      () => sink,
      () => undefined,
    );
    const region = Buffer.from('RowDescDataRowCompleteReady');
    out.hold(true);
    out.write(region.subarray(0, 7));
    out.write(Buffer.from('<injected>'));
    out.write(region.subarray(7));
    out.releaseNow();
    expect(written.join('')).toBe('RowDesc<injected>DataRowCompleteReady');
    out.write(Buffer.from('later'));
    expect(written.join('')).toBe('RowDesc<injected>DataRowCompleteReady');
    await tick();
    expect(written.join('')).toBe('RowDesc<injected>DataRowCompleteReadylater');
  });

  it('writes held bytes at an explicit flush (a closing connection)', () => {
    const { sink, written, release } = slowSink(1 << 20);
    const out = new WriteCoalescer(
      () => sink,
      () => undefined,
    );
    out.hold(true);
    out.write(Buffer.from('Terminate'));
    out.flush();
    expect(written.map((b) => b.toString())).toEqual(['Terminate']);
    release();
  });

  it('reports backpressure while a drain is due, and the drain does follow', async () => {
    const { sink, release } = slowSink(4);
    let pressured = 0;
    const out = new WriteCoalescer(
      () => sink,
      () => (pressured++, expect(sink.writableNeedDrain).toBe(true)),
    );
    out.write(Buffer.from('0123456789'));
    await tick();
    expect(pressured).toBe(1);
    const drained = new Promise<void>((resolve) => sink.once('drain', resolve));
    release();
    await drained;
    expect(sink.writableNeedDrain).toBe(false);
  });

  it('drops writes to a destroyed target instead of throwing', async () => {
    const { sink } = slowSink(4);
    sink.destroy();
    const out = new WriteCoalescer(
      () => sink,
      () => {
        throw new Error('no backpressure on a destroyed target');
      },
    );
    out.write(Buffer.from('x'));
    await tick();
    expect(sink.destroyed).toBe(true);
  });
});
