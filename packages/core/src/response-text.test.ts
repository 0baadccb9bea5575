import { describe, expect, it } from '@jest/globals';
import { responseTextUpTo } from './response-text.js';

/** A response whose body comes as these chunks, then goes on for ever when `endless`. */
function chunked(parts: string[], endless = false): Response {
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(Buffer.from(parts[i++]!));
      else if (endless) controller.enqueue(Buffer.alloc(1024, 'x'));
      else controller.close();
    },
  });
  return new Response(stream);
}

describe('responseTextUpTo', () => {
  it('reads a body within the limit whole', async () => {
    await expect(responseTextUpTo(chunked(['{"a":', '1}']), 16)).resolves.toEqual({
      text: '{"a":1}',
      whole: true,
    });
  });

  it('stops an endless body at the limit, keeping the chunks before it', async () => {
    const read = await responseTextUpTo(chunked(['start'], true), 4096);
    expect(read.whole).toBe(false);
    expect(read.text.startsWith('start')).toBe(true);
    expect(read.text.length).toBeLessThanOrEqual(4096);
  });
});
