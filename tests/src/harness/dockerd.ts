/**
 * Test harness: a real dockerd (apt `docker.io`) on its own unix socket, data root and exec root, with no bridge,
 * no iptables and no TCP listener, plus a tiny local image imported from busybox-static (no registry is ever
 * contacted). Containers must be run with `--network none`. Starts in well under a second, so each test file
 * starts its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, copyFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';

export const TEST_IMAGE = 'agentgate-test/busybox:latest';
const BUSYBOX = '/usr/bin/busybox';
const APPLETS = ['sh', 'cat', 'echo', 'sleep', 'env', 'head', 'ls', 'rm', 'mkdir', 'true', 'wc', 'tar'];

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TestDockerd {
  /** Path of dockerd's API socket. */
  readonly socket: string;
  readonly dir: string;
  readonly image: string;
  /** Run the docker CLI straight against this dockerd (setup, comparisons). */
  docker(args: readonly string[], opts?: DockerCliOptions): Promise<CommandResult>;
  stop(): Promise<void>;
}

export interface DockerCliOptions {
  /** DOCKER_HOST, e.g. `tcp://127.0.0.1:PORT`; default: this dockerd's socket. */
  readonly host?: string;
  /** Sent on every request as `Authorization: Bearer …` through the CLI config's HttpHeaders. */
  readonly token?: string;
  readonly input?: string | Buffer;
  readonly timeoutMs?: number;
  readonly env?: Record<string, string>;
}

let configCounter = 0;

/** Run the docker CLI with its own config dir (HttpHeaders carries the gateway token). */
export async function runDocker(
  args: readonly string[],
  opts: DockerCliOptions & { host: string; scratch: string },
): Promise<CommandResult> {
  const configDir = join(opts.scratch, `cli-config-${process.pid}-${configCounter++}`);
  await mkdir(configDir, { recursive: true });
  const config = opts.token ? { HttpHeaders: { Authorization: `Bearer ${opts.token}` } } : {};
  await writeFile(join(configDir, 'config.json'), JSON.stringify(config));
  return new Promise((resolve, reject) => {
    const child = spawn('docker', ['--config', configDir, ...args], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: configDir,
        DOCKER_HOST: opts.host,
        DOCKER_BUILDKIT: '0',
        ...opts.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/_ping', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function buildRootfsTar(dir: string): Promise<string> {
  const root = join(dir, 'rootfs');
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'tmp'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
  for (const a of APPLETS) await symlink('busybox', join(root, 'bin', a));
  const tarPath = join(dir, 'rootfs.tar');
  await new Promise<void>((resolve, reject) => {
    const t = spawn('tar', ['-C', root, '-cf', tarPath, '.'], { stdio: 'ignore' });
    t.on('error', reject);
    t.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
  });
  return tarPath;
}

export interface DockerdOptions {
  /**
   * dockerd's `--default-cgroupns-mode`: `host` makes dockerd report `CgroupnsMode: host` for every container, as
   * it does by default on cgroup v1 hosts.
   */
  readonly defaultCgroupnsMode?: 'host' | 'private';
}

export async function startDockerd(options: DockerdOptions = {}): Promise<TestDockerd> {
  if (!existsSync('/usr/sbin/dockerd') && !existsSync('/usr/bin/dockerd'))
    throw new Error('dockerd is not installed (apt-get install docker.io)');
  if (!existsSync(BUSYBOX))
    throw new Error('busybox-static is not installed (apt-get install busybox-static)');
  // Short paths: containerd's socket lives under the exec root and unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp('/tmp/agd-');
  const socket = join(dir, 'docker.sock');
  const child: ChildProcess = spawn(
    'dockerd',
    [
      '--host',
      `unix://${socket}`,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--userland-proxy=false',
      ...(options.defaultCgroupnsMode ? ['--default-cgroupns-mode', options.defaultCgroupnsMode] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (log.length < 200_000) log += c.toString();
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 30_000;
  while (!(await ping(socket))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dockerd did not start:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const host = `unix://${socket}`;
  const docker = (args: readonly string[], opts: DockerCliOptions = {}): Promise<CommandResult> =>
    runDocker(args, { host, scratch: dir, ...opts });
  const tarPath = await buildRootfsTar(dir);
  const imported = await docker(['import', tarPath, TEST_IMAGE]);
  if (imported.code !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
  return {
    socket,
    dir,
    image: TEST_IMAGE,
    docker,
    async stop() {
      await docker(['rm', '-f', ...(await docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean)]).catch(
        () => undefined,
      );
      if (!exited) {
        child.kill('SIGTERM');
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 15_000);
          child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

export interface GatewayResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP request to a gateway TCP listener with node's http client (a fresh connection each time). */
export function gatewayRequest(
  port: number,
  method: string,
  path: string,
  opts: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<GatewayResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Write raw bytes on one TCP connection and collect everything until the server closes or `idleMs` passes. */
export function rawExchange(port: number, data: string | Buffer, idleMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let timer = setTimeout(() => sock.destroy(), idleMs);
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      clearTimeout(timer);
      timer = setTimeout(() => sock.destroy(), idleMs);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    sock.on('error', reject);
    sock.write(data);
  });
}
