/**
 * The benchmarks' side of launcher-process.ts: clients started from a process forked once, so that the process
 * measured (the gateway, the Node relays) is never forked while it is measured. `BENCH_SPAWN=direct` makes
 * `startLauncher` return undefined, and the benchmarks spawn from their own process as before the ninth round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromLauncher, LaunchRequest, LaunchResult, ToLauncher } from './launcher-process.js';

export type { LaunchResult } from './launcher-process.js';

export interface Launched {
  readonly result: Promise<LaunchResult>;
  /** write to the child's stdin (request `stdin: 'pipe'`) */
  write(text: string): void;
  endStdin(): void;
  /** SIGINT */
  stop(): void;
}

export interface Launcher {
  /** run a command; `onStdout` receives a streamed stdout (request `stdout: 'stream'`) */
  launch(request: Omit<LaunchRequest, 'id'>, onStdout?: (text: string) => void): Launched;
  /** lets the launcher exit (a benchmark calls it when done: the IPC channel keeps its process alive) */
  close(): void;
}

export function startLauncher(): Launcher | undefined {
  if (process.env.BENCH_SPAWN === 'direct') return undefined;
  const path = join(dirname(fileURLToPath(import.meta.url)), 'launcher-process.js');
  const child: ChildProcess = spawn(process.execPath, [path], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const results = new Map<number, (result: LaunchResult) => void>();
  const streams = new Map<number, (text: string) => void>();
  let launches = 0;
  child.on('message', (message: FromLauncher) => {
    if ('output' in message) {
      streams.get(message.output)?.(message.text);
      return;
    }
    const result = message;
    streams.delete(result.id);
    results.get(result.id)?.(result);
    results.delete(result.id);
  });
  const send = (message: ToLauncher): void => void child.send(message);
  return {
    launch(request, onStdout) {
      const id = ++launches;
      if (onStdout) streams.set(id, onStdout);
      const result = new Promise<LaunchResult>((resolve) => {
        results.set(id, resolve);
        send({ ...request, id });
      });
      return {
        result,
        write: (text) => send({ write: id, text }),
        endStdin: () => send({ write: id, end: true }),
        stop: () => send({ stop: id }),
      };
    },
    close: () => child.disconnect(),
  };
}
