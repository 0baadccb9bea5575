/**
 * Starts the clients of a benchmark (ssh, pgbench, the Docker load client, docker exec, perf) in a process of its
 * own. Forking the measured process for every run write-protects all its memory (copy-on-write until the child
 * execs), so the first write to each page it keeps (the io slab pool, LMDB's heap, V8's heap) faults once more in
 * every run, and the fork itself copies its page tables: a cost of the benchmark, not of a gateway, which never
 * forks. The parent forks this process once, before it measures anything (launcher.ts).
 *
 * Protocol (IPC messages), parent to launcher: a LaunchRequest runs COMMAND ARGS; { write: id, text } writes to
 * a piped stdin and { write: id, end: true } ends it; { stop: id } sends SIGINT (perf record). Launcher to parent:
 * { output: id, text } for each piece of a streamed stdout, then { id, code, stderr, stdout, bytes, clientMs } when
 * it exits, clientMs being its CPU (this process's reaped children, from /proc/self/stat).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface LaunchRequest {
  readonly id: number;
  readonly command: string;
  readonly args: readonly string[];
  /** the child's whole environment (default: the launcher's) */
  readonly env?: Readonly<Record<string, string>>;
  /** a file to read stdin from; 'pipe' to write it with { write } messages; default none */
  readonly stdin?: string;
  /** 'capture' (whole, in the result), 'stream' ({ output } messages), 'count' (bytes only); default discarded */
  readonly stdout?: 'capture' | 'stream' | 'count';
}

export interface LaunchResult {
  readonly id: number;
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
  readonly bytes: number;
  readonly clientMs: number;
}

export type ToLauncher = LaunchRequest | { stop: number } | { write: number; text?: string; end?: boolean };
export type FromLauncher = LaunchResult | { output: number; text: string };

/** CPU ms of this process's reaped children (cutime + cstime, clock ticks of 10 ms). */
function childrenMs(): number {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

const running = new Map<number, ChildProcess>();

function launch(request: LaunchRequest): void {
  const stdin =
    request.stdin === undefined ? 'ignore' : request.stdin === 'pipe' ? 'pipe' : openSync(request.stdin, 'r');
  const stdout = request.stdout === undefined ? openSync('/dev/null', 'w') : 'pipe';
  const before = childrenMs();
  const child = spawn(request.command, [...request.args], {
    stdio: [stdin, stdout, 'pipe'],
    ...(request.env !== undefined ? { env: request.env } : {}),
  });
  running.set(request.id, child);
  let stderr = '';
  let captured = '';
  let bytes = 0;
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (request.stdout !== undefined) {
    if (request.stdout !== 'count') child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string | Buffer) => {
      bytes += d.length;
      if (request.stdout === 'capture') captured += d as string;
      else if (request.stdout === 'stream') process.send!({ output: request.id, text: d });
    });
  }
  let replied = false;
  const reply = (code: number | null): void => {
    if (replied) return;
    replied = true;
    running.delete(request.id);
    if (typeof stdin === 'number') closeSync(stdin);
    if (typeof stdout === 'number') closeSync(stdout);
    const result: LaunchResult = {
      id: request.id,
      code,
      stderr,
      stdout: captured,
      bytes,
      clientMs: childrenMs() - before,
    };
    process.send!(result);
  };
  child.once('error', (err) => {
    stderr += String(err);
    reply(-1);
  });
  child.once('close', reply);
}

if (process.send !== undefined) {
  process.on('message', (message: ToLauncher) => {
    if ('stop' in message) running.get(message.stop)?.kill('SIGINT');
    else if ('write' in message) {
      const child = running.get(message.write);
      if (message.text !== undefined) child?.stdin?.write(message.text);
      if (message.end) child?.stdin?.end();
    } else launch(message);
  });
  process.on('disconnect', () => process.exit(0));
}
