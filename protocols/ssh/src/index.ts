import type { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientInfo, EngineFactory, SshListenerConfig } from '@agentgate/core';
import { loadOrCreateHostKey } from './host-key.js';
import { SourcePenalties } from './source-penalties.js';
import { SshConnection } from './ssh-connection.js';

interface PendingConnection {
  readonly info: ClientInfo;
  readonly signal: AbortSignal;
  connection?: SshConnection;
}

/** Client keepalive (RFC 4254 §4 global request): a dead peer is dropped after about a minute. */
const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 4;
/** Like sshd's LoginGraceTime: a connection not authenticated by then is dropped (slowloris, stuck clients). */
const LOGIN_GRACE_MS = 120_000;

/**
 * AES-GCM only on the client side: the gateway decrypts and re-encrypts every byte, and AES-GCM through OpenSSL
 * (AES-NI) is the cheapest cipher ssh2 runs, with its native binding (built at install) or without it, where
 * chacha20-poly1305 would even go through a WASM poly1305. The client picks the first of its own list the server
 * offers (RFC 4253 §7.1), and OpenSSH lists chacha20 and the CTR modes before GCM, so offering them would select
 * them. Every OpenSSH since 6.2 and ssh2 speak AES-GCM.
 */
const CLIENT_SIDE_CIPHERS: ssh2.CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];

/**
 * The SSH listener engine. One ssh2 Server per listener terminates the client's SSH with the
 * gateway's host key; the composition root accepts the sockets and hands each to `handle`.
 */
export const createSshEngine: EngineFactory<SshListenerConfig> = (listener, deps) => {
  const log = deps.log.child({ listener: listener.name, protocol: 'ssh' });
  const pending = new WeakMap<object, PendingConnection>();
  const live = new Set<SshConnection>();
  const penalties = new SourcePenalties(listener.authPenaltyMaxMs);
  let server: ssh2.Server | undefined;
  const serverReady = loadOrCreateHostKey(listener.hostKey).then((hostKey) => {
    server = new ssh2.Server({
      hostKeys: [hostKey],
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      ident: 'agentgate',
      algorithms: { cipher: CLIENT_SIDE_CIPHERS },
    });
    server.on('connection', (conn) => {
      // ssh2 emits 'connection' once the client's identification line arrived; map it back to its socket.
      const socket = (conn as unknown as { _sock: object })._sock;
      const entry = pending.get(socket);
      if (entry === undefined) {
        conn.end();
        return;
      }
      const connection = new SshConnection(conn, {
        listener,
        deps,
        client: entry.info,
        log,
        signal: entry.signal,
        penalties,
      });
      entry.connection = connection;
      live.add(connection);
      conn.once('close', () => live.delete(connection));
      connection.attach();
    });
    server.on('error', (err: Error) => log.warn('ssh server error', { err: err.message }));
    return server;
  });
  serverReady.catch(() => undefined);

  return {
    async ready(): Promise<void> {
      await serverReady;
    },
    async handle(client: Duplex, info: ClientInfo, signal: AbortSignal): Promise<void> {
      let srv: ssh2.Server;
      try {
        srv = await serverReady;
      } catch (err) {
        log.error('ssh host key unavailable', { err });
        client.destroy();
        return;
      }
      const entry: PendingConnection = { info, signal };
      pending.set(client, entry);
      const done = new Promise<void>((resolve) => {
        client.once('close', () => resolve());
      });
      client.on('error', (err: Error) => log.debug('ssh client socket error', { err: err.message }));
      // A session, once open, ends itself on this signal; before that, shutdown ends the connection here.
      const onAbort = (): void => {
        if (entry.connection === undefined) client.destroy();
        else if (!entry.connection.isReady) entry.connection.shutdown();
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      const grace = setTimeout(() => {
        if (entry.connection?.isReady !== true) client.destroy();
      }, LOGIN_GRACE_MS);
      grace.unref();
      // A client that sends garbage instead of an SSH identification line (RFC 4253 §4.2) makes ssh2 error out and
      // end the socket; `handle` resolves when the socket closes either way.
      if (client instanceof Socket) client.setNoDelay(true);
      srv.injectSocket(client as Socket);
      await done;
      clearTimeout(grace);
      signal.removeEventListener('abort', onAbort);
    },
    async close(): Promise<void> {
      for (const c of live) c.shutdown();
    },
  };
};

export { probeSshUpstream } from './upstream-probe.js';
