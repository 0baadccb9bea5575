/**
 * Test harness: a real OpenSSH sshd on 127.0.0.1:<free port> with its own config, host key and authorized key
 * (the gateway's upstream key), plus helpers to drive the OpenSSH client against it or against a gateway.
 * Works on a fresh machine with only `openssh-server`/`openssh-client` installed: keys come from ssh-keygen.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentgateError,
  SHUTDOWN,
  createSessionLifecycles,
  matchesPrincipal,
  noMasking,
  noopMetrics,
  silentLogger,
  type ApprovalBroker,
  type Command,
  type EngineDeps,
  type Identity,
  type IdentityService,
  type IoDirection,
  type RuleConfig,
  type SessionInfo,
  type SessionRecorder,
  type SshListenerConfig,
  type TranscriptEvent,
  type TranscriptWriter,
  ReplaceableListenerAccess,
} from '@agentgate/core';
import { createGate, createPolicy } from '@agentgate/policy';
import { createSshEngine } from '@agentgate/ssh';

export interface TestSshd {
  readonly host: string;
  readonly port: number;
  /** The account the gateway logs in as upstream. */
  readonly user: string;
  /** `ssh-ed25519 AAAA…`: pin this as the listener's `upstream.hostKey`. */
  readonly hostKeyLine: string;
  /** Private key sshd accepts (the gateway's upstream credential). */
  readonly upstreamKeyPath: string;
  /** Scratch directory (removed by stop()). */
  readonly dir: string;
  /** The listening sshd's process id (benchmarks read its reaped children's CPU). */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** An ed25519 key pair made with ssh-keygen; returns the private key path (public key at `.pub`). */
export function makeKeyPair(dir: string, name: string): { path: string; publicKey: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  return { path, publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}

function waitForBanner(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(port, '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        if (d.toString().startsWith('SSH-')) resolve();
        else reject(new Error(`unexpected banner ${d.toString()}`));
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * `x11`: sshd forwards X11 (xauth must be installed); else it refuses. `sftpSubsystem`: the command sshd runs for
 * the sftp subsystem (default its own internal-sftp).
 */
export async function startSshd(
  options: { extraConfig?: string; x11?: boolean; sftpSubsystem?: string } = {},
): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-sshd-'));
  const hostKey = makeKeyPair(dir, 'ssh_host_ed25519_key');
  const upstreamKey = makeKeyPair(dir, 'gateway_upstream_key');
  writeFileSync(join(dir, 'authorized_keys'), upstreamKey.publicKey + '\n', { mode: 0o600 });
  const port = await freePort();
  // sshd's privilege separation directory must exist (Debian creates it only when the service starts).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey.path}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'AllowTcpForwarding yes',
    `X11Forwarding ${options.x11 === true ? 'yes' : 'no'}`,
    'PrintMotd no',
    'PrintLastLog no',
    'AcceptEnv LANG LC_* AGENTGATE_*',
    `Subsystem sftp ${options.sftpSubsystem ?? 'internal-sftp'}`,
    'LogLevel ERROR',
    options.extraConfig ?? '',
  ].join('\n');
  const configPath = join(dir, 'sshd_config');
  writeFileSync(configPath, config + '\n');
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForBanner(port, 10_000);
  } catch (err) {
    child.kill('SIGTERM');
    throw new Error(`${(err as Error).message}: ${stderr}`, { cause: err });
  }
  const hostKeyLine = hostKey.publicKey.split(/\s+/).slice(0, 2).join(' ');
  return {
    host: '127.0.0.1',
    port,
    user: 'root',
    hostKeyLine,
    upstreamKeyPath: upstreamKey.path,
    dir,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The OpenSSH client options every test uses: no config, no known_hosts, no prompts. */
export function sshClientOptions(port: number, keyPath?: string): string[] {
  return [
    '-F',
    '/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    ...(keyPath !== undefined ? ['-o', 'IdentitiesOnly=yes', '-i', keyPath] : []),
    '-p',
    String(port),
  ];
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Run a client program to completion, optionally feeding stdin. */
export function run(
  program: string,
  args: readonly string[],
  options: {
    input?: Buffer | string;
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    /** Called with all stdout so far whenever more arrives (to act once the program has got somewhere). */
    onStdout?: (soFar: string) => void;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      options.onStdout?.(Buffer.concat(out).toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.on('error', () => undefined);
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// A gateway with only the SSH engine, for the SSH suites: real policy and gate (@agentgate/policy), an in-memory
// transcript and identity. The full composition root is exercised by the lead's startTestGateway suites.
// ---------------------------------------------------------------------------------------------------------------

export interface RecordedSession {
  readonly info: SessionInfo;
  readonly events: { type: string; body: Record<string, unknown> }[];
  readonly io: { direction: IoDirection; data: Buffer; channel: string | undefined }[];
  ended: boolean;
}

/** Keeps every event in memory so tests can assert what was recorded. */
export class MemoryTranscript implements TranscriptWriter {
  readonly writable = true;
  readonly failMode = 'closed' as const;
  readonly sessions: RecordedSession[] = [];
  /** What every recorder's ioBackpressure answers (a test holds the relays with it); none when unset. */
  ioBackpressure: (() => Promise<void> | undefined) | undefined;

  openSession(info: SessionInfo, extra?: Record<string, unknown>): SessionRecorder {
    const s: RecordedSession = {
      info,
      events: [{ type: 'session.start', body: { ...extra } }],
      io: [],
      ended: false,
    };
    this.sessions.push(s);
    let seq = 0;
    return {
      sessionId: info.id,
      append(type, body): TranscriptEvent {
        s.events.push({ type, body });
        return { session: info.id, seq: ++seq, ts: Date.now(), type, prev: '', hash: '', ...body };
      },
      ioBackpressure: () => this.ioBackpressure?.(),
      io(direction, data, channel) {
        // Keep only the first bytes per chunk: throughput runs must not hold hundreds of MB.
        s.io.push({
          direction,
          data: data.length > 4096 ? Buffer.from(data.subarray(0, 4096)) : Buffer.from(data),
          channel,
        });
      },
      end(body) {
        if (s.ended) return;
        s.ended = true;
        s.events.push({ type: 'session.end', body: { ...body } });
      },
    };
  }

  /** All events of all sessions of a type, in order. */
  all(type: string): Record<string, unknown>[] {
    return this.sessions.flatMap((s) => s.events.filter((e) => e.type === type).map((e) => e.body));
  }

  /** How each decided command was decided, in order (the gate records it in the `command` event). */
  decisions(): Record<string, unknown>[] {
    return this.all('command').flatMap((c) =>
      c['decision'] === undefined ? [] : [c['decision'] as Record<string, unknown>],
    );
  }
}

export interface GatewayIdentities {
  readonly keys?: readonly { name: string; publicKey: string; groups: readonly string[] }[];
  readonly tokens?: readonly { name: string; token: string; groups: readonly string[] }[];
}

function memoryIdentity(ids: GatewayIdentities): IdentityService {
  return {
    async verifyToken(token) {
      const t = ids.tokens?.find((x) => x.token === token);
      if (t === undefined) throw new AgentgateError('AUTH_FAILED', 'bad token');
      return { name: t.name, groups: t.groups, source: 'token' };
    },
    findSshKey(_algorithm, keyData): Identity | undefined {
      const k = ids.keys?.find((x) =>
        Buffer.from(x.publicKey.split(/\s+/)[1] ?? '', 'base64').equals(keyData),
      );
      return k === undefined ? undefined : { name: k.name, groups: k.groups, source: 'ssh-key' };
    },
    isAllowed: (identity, refs) => matchesPrincipal(identity, refs),
  };
}

export interface StandaloneSshGateway {
  readonly port: number;
  readonly transcript: MemoryTranscript;
  readonly listener: SshListenerConfig;
  /** Approvals requested so far (the test's approver answers them). */
  readonly approvals: Command[];
  stop(): Promise<void>;
}

export async function startStandaloneSshGateway(options: {
  sshd: TestSshd;
  rules: readonly RuleConfig[];
  identities: GatewayIdentities;
  listener?: Partial<SshListenerConfig>;
  approve?: (command: Command) => Promise<boolean>;
}): Promise<StandaloneSshGateway> {
  const { sshd } = options;
  const listener: SshListenerConfig = {
    name: 'build-host',
    protocol: 'ssh',
    listen: '127.0.0.1:0',
    allow: ['group:agents'],
    hostKey: join(sshd.dir, 'gateway_host_key'),
    upstream: {
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      privateKey: sshd.upstreamKeyPath,
      hostKey: sshd.hostKeyLine,
    },
    shell: 'allow',
    unknownPrograms: 'match-all',
    envAllow: ['LANG', 'LC_*', 'AGENTGATE_OK*'],
    maxAuthTries: 6,
    authPenaltyMaxMs: 10_000,
    ...options.listener,
  };
  const transcript = new MemoryTranscript();
  const approvals: Command[] = [];
  let n = 0;
  const broker: ApprovalBroker | undefined =
    options.approve === undefined
      ? undefined
      : {
          async request(input) {
            approvals.push(input.command);
            const id = `appr-${++n}`;
            return { id, outcome: (await options.approve!(input.command)) ? 'approved' : 'rejected' };
          },
        };
  const gate = createGate({
    policy: createPolicy(options.rules, [listener]),
    approvers: [],
    log: silentLogger,
    ...(broker ? { broker } : {}),
  });
  const deps: EngineDeps = {
    identity: memoryIdentity(options.identities),
    sessions: createSessionLifecycles({ gate, transcript, metrics: noopMetrics }),
    masking: noMasking,
    metrics: noopMetrics,
    log: silentLogger,
    access: new ReplaceableListenerAccess(listener.allow),
  };
  const engine = createSshEngine(listener, deps);
  await engine.ready?.();
  // Each connection gets its own signal, as from the gateway's listener server.
  const sockets = new Map<Socket, AbortController>();
  const server: TcpServer = createServer((socket) => {
    socket.setNoDelay(true);
    const stop = new AbortController();
    sockets.set(socket, stop);
    socket.once('close', () => sockets.delete(socket));
    engine
      .handle(
        socket,
        {
          address: socket.remoteAddress ?? '127.0.0.1',
          port: socket.remotePort ?? 0,
          local: true,
          tls: false,
        },
        stop.signal,
      )
      .catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    port,
    transcript,
    listener,
    approvals,
    async stop() {
      for (const stop of sockets.values()) stop.abort(SHUTDOWN);
      await engine.close?.();
      for (const s of sockets.keys()) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A real sshd and a standalone gateway in front of it admitting one agent key (identity devin, group agents). */
export interface AgentSshFixture {
  readonly sshd: TestSshd;
  readonly gw: StandaloneSshGateway;
  readonly agentKey: { path: string; publicKey: string };
  stop(): Promise<void>;
}

export async function startAgentSshFixture(
  options: { rules?: readonly RuleConfig[]; x11?: boolean; sftpSubsystem?: string } = {},
): Promise<AgentSshFixture> {
  const sshd = await startSshd({
    x11: options.x11 === true,
    ...(options.sftpSubsystem !== undefined ? { sftpSubsystem: options.sftpSubsystem } : {}),
  });
  const keys = mkdtempSync(join(tmpdir(), 'agentgate-ssh-keys-'));
  const cleanUp = async (): Promise<void> => {
    await sshd.stop();
    rmSync(keys, { recursive: true, force: true });
  };
  try {
    const agentKey = makeKeyPair(keys, 'agent');
    const gw = await startStandaloneSshGateway({
      sshd,
      rules: options.rules ?? [],
      identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }] },
    });
    return {
      sshd,
      gw,
      agentKey,
      async stop() {
        await gw.stop();
        await cleanUp();
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}
