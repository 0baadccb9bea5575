/**
 * How the CLI writes: a closed pipe (`agentgate export … | head`) ends the command quietly instead of with an
 * EPIPE stack trace, long outputs respect backpressure, and colour goes only to a terminal, never when
 * `NO_COLOR` is set (https://no-color.org).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Install once per process: the reader of our output went away, so there is nobody left to tell anything. */
export function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
}

/** Colour (ANSI escapes) only for a terminal, and not when NO_COLOR is set to anything. */
export function colourFor(stream: Writable & { isTTY?: boolean }): boolean {
  const noColor = process.env['NO_COLOR'];
  return stream.isTTY === true && (noColor === undefined || noColor === '');
}

/**
 * Write a long output piece by piece: waits when the stream's buffer is full, and yields now and then so that a
 * closed pipe's error is noticed (exitQuietlyOnClosedOutput) before the whole output was produced for nobody.
 */
export class OutputWriter {
  private writes = 0;

  constructor(private readonly stream: Writable = process.stdout) {}

  async write(chunk: string | Uint8Array): Promise<void> {
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
    if (++this.writes % 256 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
