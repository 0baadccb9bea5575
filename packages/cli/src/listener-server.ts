/**
 * Owns one listener's socket: accepts TCP (TCP_NODELAY) or unix connections, counts each once and hands it to the
 * protocol engine with a signal of its own. Tracks live connections so shutdown can stop accepting, let in-flight
 * work finish, then close what is left.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import {
  SHUTDOWN,
  type ClientInfo,
  type ConnectionControl,
  type ListenerBase,
  type Logger,
  type Protocol,
  type ProtocolEngine,
} from '@agentgate/core';
import { UnauthenticatedConnections } from './unauthenticated-connections.js';

/** What the server needs of a listener: its address, and the protocol's socket needs (Docker's half-close). */
export interface ServedListener extends Omit<ListenerBase, 'allow'> {
  readonly protocol: Protocol;
  /** File mode of a unix socket listener (Docker). */
  readonly socketMode?: number;
}

export type ListenerAddress = { readonly host: string; readonly port: number } | { readonly path: string };

export interface ListenerServer {
  readonly name: string;
  readonly address: ListenerAddress;
  readonly listening: boolean;
  readonly activeConnections: number;
  /**
   * Close the listening socket (draining): new connections are refused, accepted ones (those still authenticating
   * included) go on untouched.
   */
  stopAccepting(): void;
  /** Resolves once no accepted connection is left. */
  idle(): Promise<void>;
  /** Stop accepting, tell every session to end (shutdown), wait up to `graceMs` for them, then destroy the rest. */
  close(graceMs: number): Promise<void>;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export async function startListenerServer(
  listener: ServedListener,
  engine: ProtocolEngine,
  hooks: { log: Logger; connectionOpened(): void; listening(up: boolean): void },
): Promise<ListenerServer> {
  const log = hooks.log.child({ listener: listener.name });
  // One signal per connection, aborted from here at shutdown: engines and sessions listen to their own connection's
  // signal, so no shared signal collects a listener per connection.
  const connections = new Map<net.Socket, AbortController>();
  const sessions = new Set<Promise<void>>();
  const idleWaiters: (() => void)[] = [];
  let stopping = false;
  const unixPath = listener.listen.startsWith('unix:') ? listener.listen.slice(5) : undefined;
  let listening = false;

  const unauthenticated =
    listener.unauthenticated &&
    new UnauthenticatedConnections(
      listener.unauthenticated,
      log.child({ listener: listener.name, protocol: listener.protocol }),
    );

  // Docker's hijacked streams need half-close: `docker exec` without -i closes its write side and still reads.
  const server = net.createServer(
    { allowHalfOpen: listener.protocol === 'docker', noDelay: true },
    (socket) => {
      hooks.connectionOpened();
      const source = unixPath ? 'unix' : (socket.remoteAddress ?? 'unknown');
      const admission = unauthenticated?.admit(source);
      if (admission === null) {
        socket.destroy();
        return;
      }
      const stop = new AbortController();
      if (stopping) stop.abort(SHUTDOWN);
      connections.set(socket, stop);
      socket.setNoDelay(true);
      socket.on('error', () => {
        /* engines handle errors on their own listeners; this keeps an early reset from crashing the process */
      });
      const info: ClientInfo = unixPath
        ? { address: 'unix', local: true, tls: false }
        : {
            address: socket.remoteAddress ?? 'unknown',
            ...(socket.remotePort !== undefined ? { port: socket.remotePort } : {}),
            local: isLoopback(socket.remoteAddress ?? ''),
            tls: false,
          };
      const control: ConnectionControl = { authenticated: () => admission?.authenticated() };
      const session = engine
        .handle(socket, info, stop.signal, control)
        .catch((err: unknown) =>
          log.error('session failed', { error: err instanceof Error ? err.message : String(err) }),
        )
        .finally(() => {
          admission?.closed();
          connections.delete(socket);
          sessions.delete(session);
          if (!socket.destroyed) socket.destroy();
          if (connections.size === 0) for (const wake of idleWaiters.splice(0)) wake();
        });
      sessions.add(session);
    },
  );
  server.on('error', (err) => log.error('listener error', { error: err.message }));

  if (unixPath) {
    // A socket file left by a previous run would make listen fail with EADDRINUSE.
    const st = await lstat(unixPath).catch(() => undefined);
    if (st?.isSocket()) await unlink(unixPath);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (unixPath) server.listen(unixPath, done);
    else {
      const idx = listener.listen.lastIndexOf(':');
      server.listen(
        Number(listener.listen.slice(idx + 1)),
        listener.listen.slice(0, idx).replace(/^\[|\]$/g, ''),
        done,
      );
    }
  });
  if (unixPath && listener.socketMode !== undefined) await chmod(unixPath, listener.socketMode);
  listening = true;
  hooks.listening(true);
  const addr = server.address();
  const address: ListenerAddress =
    unixPath !== undefined
      ? { path: unixPath }
      : { host: (addr as net.AddressInfo).address, port: (addr as net.AddressInfo).port };
  log.info('listening', { protocol: listener.protocol, address });

  // Resolves once the socket is closed and every connection has ended (net.Server's close callback).
  let closed: Promise<void> | undefined;
  const stopAccepting = (): void => {
    if (closed !== undefined) return;
    listening = false;
    hooks.listening(false);
    closed = new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    name: listener.name,
    address,
    get listening() {
      return listening;
    },
    get activeConnections() {
      return connections.size;
    },
    stopAccepting,
    idle: () =>
      connections.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve)),
    async close(graceMs) {
      stopAccepting();
      stopping = true;
      unauthenticated?.close();
      for (const stop of connections.values()) stop.abort(SHUTDOWN);
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([Promise.allSettled([...sessions]).then(() => undefined), grace]);
      for (const s of connections.keys()) s.destroy();
      await Promise.allSettled([...sessions]);
      await closed;
      if (unixPath) await unlink(unixPath).catch(() => undefined);
    },
  };
}
