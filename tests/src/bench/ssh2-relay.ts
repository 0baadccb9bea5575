/**
 * The floor for the SSH benchmark: a bare ssh2 relay in this process, an ssh2 Server for the client and an ssh2
 * Client to sshd, with the gateway's ciphers (AES-GCM on both legs) and its one-writev-per-read corking, and
 * nothing else — no policy, no recording, no redaction, no metrics. Any key is accepted. What it costs per MB is
 * what the runtime and ssh2 cost on their own.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ServerChannel } from 'ssh2';
import type { TestSshd } from '../harness/sshd.js';

const CIPHERS: ssh2.CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];

export interface Ssh2Relay {
  readonly port: number;
  stop(): Promise<void>;
}

/** Pipe with backpressure, as the gateway's relay does (write, pause on a full buffer, resume on drain). */
function relay(src: Readable, dst: Writable): void {
  src.on('data', (chunk: Buffer) => {
    if (!dst.writable) return;
    if (!dst.write(chunk)) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
}

/** Cork `writers` around each 'data' event of `reader` (after ssh2's own listener), as the gateway does. */
function corkPerRead(reader: Duplex, writers: readonly Duplex[]): void {
  reader.prependListener('data', () => writers.forEach((w) => w.cork()));
  reader.on('data', () => writers.forEach((w) => w.uncork()));
}

export async function startSsh2Relay(sshd: TestSshd, hostKeyPath: string): Promise<Ssh2Relay> {
  const upstreamKey = readFileSync(sshd.upstreamKeyPath);
  const server = new ssh2.Server({ hostKeys: [readFileSync(hostKeyPath)], algorithms: { cipher: CIPHERS } });
  const sockets = new Set<Socket>();
  server.on('connection', (conn) => {
    conn.on('error', () => undefined);
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () => {
      const upstream = new ssh2.Client();
      upstream.on('error', () => conn.end());
      conn.on('close', () => upstream.end());
      const ready = new Promise<void>((resolve) => upstream.once('ready', resolve));
      upstream.connect({
        host: sshd.host,
        port: sshd.port,
        username: sshd.user,
        privateKey: upstreamKey,
        algorithms: { cipher: CIPHERS },
      });
      void ready.then(() => {
        const clientSocket = (conn as unknown as { _sock: Duplex })._sock;
        const upstreamSocket = (upstream as unknown as { _sock: Duplex })._sock;
        corkPerRead(clientSocket, [upstreamSocket, clientSocket]);
        corkPerRead(upstreamSocket, [clientSocket, upstreamSocket]);
      });
      conn.on('session', (accept) => {
        const session = accept();
        /** Relay one accepted channel to the upstream's channel for the same request (exec, or subsystem for sftp). */
        const relayChannel = (
          channel: ServerChannel,
          open: (callback: (err: Error | undefined, up: ClientChannel) => void) => void,
        ): void => {
          channel.pause();
          void ready.then(() =>
            open((err, up) => {
              if (err) {
                channel.exit(255);
                channel.end();
                return;
              }
              relay(channel, up);
              relay(up, channel);
              relay(up.stderr, channel.stderr);
              channel.on('end', () => up.end());
              up.on('exit', (code: number | null) => {
                if (code !== null) channel.exit(code);
              });
              up.on('close', () => channel.end());
              channel.resume();
            }),
          );
        };
        session.on('exec', (acceptExec, _reject, info) =>
          relayChannel(acceptExec(), (callback) => upstream.exec(info.command, callback)),
        );
        session.on('subsystem', (acceptSubsystem, _reject, info) =>
          relayChannel(acceptSubsystem(), (callback) => upstream.subsys(info.name, callback)),
        );
      });
    });
  });
  const listener: NetServer = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    server.injectSocket(socket);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const address = listener.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return {
    port: address.port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}
