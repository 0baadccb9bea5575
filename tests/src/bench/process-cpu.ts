/** What the benchmarks read about their own process: CPU time from /proc, and a V8 profile on request. */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

/** /proc counts CPU in clock ticks of 10 ms. */
export const tickUs = 10_000;

/** A /proc stat file's user + system ticks (system only with `systemOnly`). */
export function statTicks(file: string, systemOnly = false): number {
  // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
  const text = readFileSync(file, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (systemOnly ? 0 : Number(fields[11])) + Number(fields[12]);
}

/** With BENCH_PROFILE=DIR: start the V8 profiler; the returned function writes DIR/NAME.cpuprofile. */
export async function startProfile(): Promise<((name: string) => Promise<void>) | undefined> {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async (name) => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}
