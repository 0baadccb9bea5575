/**
 * A forwarded channel's last bytes must reach a slow reader. One side's end and close arrive together, while up to a
 * window of its data still waits at the gateway for the other side's window (RFC 4254 §5.2): the gateway closed the
 * other side at once and dropped that tail. OpenSSH `ssh -L` through the gateway to a local TCP server, real sshd.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import {
  freePort,
  sshClientOptions,
  startAgentSshFixture,
  type AgentSshFixture,
  type StandaloneSshGateway,
} from './harness/sshd.js';

let fixture: AgentSshFixture;
let gw: StandaloneSshGateway;
let agentKey: { path: string; publicKey: string };

beforeAll(async () => {
  fixture = await startAgentSshFixture({
    rules: [
      {
        name: 'may-tunnel',
        protocol: 'ssh',
        who: ['identity:devin'],
        match: { channels: ['port-forward'] },
        action: 'allow',
      },
    ],
  });
  ({ gw, agentKey } = fixture);
});

afterAll(async () => {
  await fixture?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function listen(onConnection: (s: Socket) => void): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** `ssh -N -L` through the gateway to `target`; resolves with a connected local socket once the tunnel is up. */
async function tunnel(target: Server): Promise<{ ssh: ChildProcess; socket: Socket }> {
  const targetPort = (target.address() as { port: number }).port;
  const localPort = await freePort();
  const ssh = spawn(
    'ssh',
    [
      ...sshClientOptions(gw.port, agentKey.path),
      '-N',
      '-o',
      'ExitOnForwardFailure=yes',
      '-L',
      `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`,
      'agent@127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const c = connect({ port: localPort, host: '127.0.0.1', allowHalfOpen: true });
      c.once('connect', () => resolve(c));
      c.once('error', () => resolve(undefined));
    });
    if (socket !== undefined) return { ssh, socket };
  }
  ssh.kill();
  throw new Error('the tunnel did not come up');
}

async function stop(ssh: ChildProcess, target: Server): Promise<void> {
  const exited = new Promise((resolve) => ssh.once('close', resolve));
  ssh.kill();
  await exited;
  await new Promise((resolve) => target.close(resolve));
}

/** Everything a paused socket receives once it is read after `ms`, up to its close (or a 20 s deadline). */
async function readAllAfter(socket: Socket, ms: number): Promise<Buffer> {
  await sleep(ms);
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.resume();
  const deadline = setTimeout(() => socket.destroy(), 20_000);
  await new Promise((resolve) => socket.once('close', resolve));
  clearTimeout(deadline);
  return Buffer.concat(chunks);
}

describe('forwarded channel tail', () => {
  it('delivers all of a download to a client that reads only after the target has closed', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const target = await listen((s) => s.end(data));
    const { ssh, socket } = await tunnel(target);
    try {
      socket.pause();
      socket.end(); // the client's EOF lets sshd close the channel once the target's data is sent
      // Read after the target has sent everything and closed: the gateway holds the tail meanwhile.
      const got = await readAllAfter(socket, 2000);
      expect({ length: got.length, sha: sha256(got) }).toEqual({ length: data.length, sha: sha256(data) });
    } finally {
      await stop(ssh, target);
    }
  }, 30_000);

  it('delivers all of an upload to a target that reads only after it has closed its side', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    let received: (b: Buffer) => void = () => undefined;
    const upload = new Promise<Buffer>((resolve) => (received = resolve));
    const target = await listen((s) => {
      s.end(); // its EOF travels to the client, whose close then follows its own EOF
      s.pause();
      const chunks: Buffer[] = [];
      setTimeout(() => {
        s.on('data', (d: Buffer) => chunks.push(d));
        s.resume();
      }, 2000);
      s.once('close', () => received(Buffer.concat(chunks)));
    });
    const { ssh, socket } = await tunnel(target);
    try {
      socket.resume();
      socket.end(data);
      const deadline = setTimeout(() => received(Buffer.alloc(0)), 20_000);
      const got = await upload;
      clearTimeout(deadline);
      expect({ length: got.length, sha: sha256(got) }).toEqual({ length: data.length, sha: sha256(data) });
    } finally {
      socket.destroy();
      await stop(ssh, target);
    }
  }, 30_000);

  it('delivers all of an ssh -R download to an upstream-side reader that half-closed first', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const target = await listen((s) => {
      s.on('error', () => undefined);
      s.end(data);
      s.resume();
    });
    const remotePort = await freePort();
    const ssh = spawn(
      'ssh',
      [
        ...sshClientOptions(gw.port, agentKey.path),
        '-N',
        '-o',
        'ExitOnForwardFailure=yes',
        '-R',
        `127.0.0.1:${remotePort}:127.0.0.1:${(target.address() as { port: number }).port}`,
        'agent@127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    try {
      let socket: Socket | undefined;
      for (let i = 0; i < 100 && socket === undefined; i++) {
        await sleep(100);
        socket = await new Promise<Socket | undefined>((resolve) => {
          const c = connect({ port: remotePort, host: '127.0.0.1', allowHalfOpen: true });
          c.once('connect', () => resolve(c));
          c.once('error', () => resolve(undefined));
        });
      }
      if (socket === undefined) throw new Error('the remote forward did not come up');
      socket.pause();
      socket.end(); // this EOF reaches the client first, while the target's data still flows the other way
      const got = await readAllAfter(socket, 2000);
      expect({ length: got.length, sha: sha256(got) }).toEqual({ length: data.length, sha: sha256(data) });
    } finally {
      await stop(ssh, target);
    }
  }, 30_000);
});
