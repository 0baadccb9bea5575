/**
 * `agentgate serve` as its own process, as an operator runs it: for the suites that signal, kill or limit the
 * process itself (reload, crash recovery, a full store). The in-process gateway (gateway.ts) serves the rest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { repoRoot } from './cli.js';
import type { TestDockerd } from './dockerd.js';
import { PASSWORD, type TestPostgres } from './postgres.js';
import type { TestSshd } from './sshd.js';

export interface ServedGateway {
  readonly process: ChildProcess;
  readonly admin: string;
  /** Every JSON log line so far (stderr). */
  readonly logs: readonly Record<string, unknown>[];
  /** Every other stderr line so far: what Node itself prints (warnings). */
  readonly otherLines: readonly string[];
  port(listener: string): number;
  /** Whether a log message so far contains `text`. */
  logged(text: string): boolean;
  /** The first log line from now on that satisfies `match`. */
  nextLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/**
 * Start `agentgate serve --config FILE [args]`; resolves once it logged that it started. `fileSizeLimit` runs it
 * under `prlimit --fsize` (the store then fails as on a full disk).
 */
export async function serveProcess(
  configFile: string,
  options: { fileSizeLimit?: number; args?: readonly string[] } = {},
): Promise<ServedGateway> {
  const serve = [
    process.execPath,
    join(repoRoot, 'bin', 'agentgate'),
    'serve',
    '--config',
    configFile,
    ...(options.args ?? []),
  ];
  const [program, ...args] =
    options.fileSizeLimit === undefined ? serve : ['prlimit', `--fsize=${options.fileSizeLimit}`, ...serve];
  const child = spawn(program!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const otherLines: string[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  child.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const l of lines) {
      if (l.startsWith('{')) logs.push(JSON.parse(l) as Record<string, unknown>);
      else if (l !== '') otherLines.push(l);
    }
    for (const wake of waiters) wake();
  });
  const nextLog = (
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs = 30_000,
    from = logs.length,
  ): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = logs.slice(from).find(match);
        if (!hit) return;
        done();
        resolve(hit);
      };
      const onExit = (code: number | null): void => {
        done();
        reject(new Error(`agentgate exited (${code}); log: ${JSON.stringify(logs.slice(from))}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no such log line; saw ${JSON.stringify(logs.slice(from))}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('exit', onExit);
      };
      waiters.add(check);
      child.once('exit', onExit);
      check();
    });
  const started = (await nextLog((l) => l['msg'] === 'agentgate started', 60_000, 0)) as {
    admin: string;
    listeners: { name: string; address: { port: number } }[];
  };
  return {
    process: child,
    admin: started.admin,
    logs,
    otherLines,
    port: (listener) => started.listeners.find((l) => l.name === listener)!.address.port,
    logged: (text) => logs.some((l) => String(l['msg']).includes(text)),
    nextLog: (match, timeoutMs) => nextLog(match, timeoutMs),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The sections every served config shares, with its files under `home`: one identity, `devin` in `agents`. */
export function baseConfigYaml(home: string, devin: { token: string; sshPublicKey?: string }): string {
  const sha256 = createHash('sha256').update(devin.token).digest('hex');
  return `store: { path: ${join(home, 'transcripts')} }
signingKey: ${join(home, 'signing-key.json')}
admin: { listen: "127.0.0.1:0" }
identity:
  tokens: [{ name: devin, sha256: "${sha256}", groups: [agents] }]
${devin.sshPublicKey === undefined ? '' : `  sshKeys: [{ name: devin, publicKey: "${devin.sshPublicKey}", groups: [agents] }]\n`}`;
}

/** Listener entries (under `listeners:`) for the harness's upstreams, open to group `agents`. */
export const listenerYaml = {
  postgres: (name: string, postgres: TestPostgres): string => `  - name: ${name}
    protocol: postgres
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${postgres.port}, user: app, password: "${PASSWORD}", database: app }
`,
  ssh: (name: string, sshd: TestSshd, home: string): string => `  - name: ${name}
    protocol: ssh
    listen: "127.0.0.1:0"
    hostKey: ${join(home, 'ssh_host_ed25519_key')}
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
`,
  docker: (name: string, dockerd: TestDockerd): string => `  - name: ${name}
    protocol: docker
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
`,
};
