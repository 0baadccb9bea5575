/**
 * Starts the ssh clients of ssh-throughput.js in a process of its own. Forking the measured process for every run
 * write-protects all its memory (copy-on-write until the child execs), so the first write to each page it keeps
 * (the io slab pool, LMDB's heap, V8's heap) faulted once more in every run: a cost of the benchmark, not of a
 * gateway, which never forks. The parent forks this launcher once, before it measures anything.
 *
 * Protocol (IPC messages): { id, args, stdinFile?, command? } runs `ssh -v ARGS` (or COMMAND ARGS) and answers
 * { id, code, stderr, clientMs } when it exits, clientMs being its CPU (this process's reaped children, from
 * /proc/self/stat); { stop: id } sends it SIGINT (perf record).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface LaunchRequest {
  readonly id: number;
  readonly args: readonly string[];
  readonly stdinFile?: string;
  /** default `ssh -v` */
  readonly command?: string;
}

export interface LaunchResult {
  readonly id: number;
  readonly code: number | null;
  readonly stderr: string;
  readonly clientMs: number;
}

/** CPU ms of this process's reaped children (cutime + cstime, clock ticks of 10 ms). */
function childrenMs(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

const running = new Map<number, ChildProcess>();

function launch(request: LaunchRequest): void {
  const stdin = request.stdinFile === undefined ? 'ignore' : openSync(request.stdinFile, 'r');
  const devnull = openSync('/dev/null', 'w');
  const before = childrenMs();
  const [command, args] =
    request.command === undefined ? ['ssh', ['-v', ...request.args]] : [request.command, [...request.args]];
  const child = spawn(command, args, { stdio: [stdin, devnull, 'pipe'] });
  running.set(request.id, child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const reply = (code: number | null): void => {
    running.delete(request.id);
    if (typeof stdin === 'number') closeSync(stdin);
    closeSync(devnull);
    const result: LaunchResult = { id: request.id, code, stderr, clientMs: childrenMs() - before };
    process.send!(result);
  };
  child.once('error', (err) => {
    stderr += String(err);
    reply(-1);
  });
  child.once('close', reply);
}

if (process.send !== undefined) {
  process.on('message', (message: LaunchRequest | { stop: number }) => {
    if ('stop' in message) running.get(message.stop)?.kill('SIGINT');
    else launch(message);
  });
  process.on('disconnect', () => process.exit(0));
}
