import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { AgentgateError, type Logger, type SshListenerConfig } from '@agentgate/core';
import { parsePublicKeyLine } from './host-key.js';
import { batchWritesPerRead } from './write-batching.js';

/** OpenSSH sshd's default MaxSessions: channels beyond it on one connection are refused, so open another. */
export const UPSTREAM_MAX_CHANNELS = 10;

interface UpstreamConnection {
  readonly client: ssh2.Client;
  readonly ready: Promise<void>;
  channels: number;
  closed: boolean;
}

export interface UpstreamLease {
  readonly client: ssh2.Client;
  /** The agent's and the upstream's transports when both are known (else none): writers to batch (write-batching). */
  readonly transports: readonly Duplex[];
  /** Call once when the channel opened on this lease closes. */
  release(): void;
}

export interface UpstreamPoolEvents {
  /** The upstream presented a host key other than the pinned one. */
  onHostKeyMismatch(presented: string): void;
  onError(err: Error): void;
}

/**
 * The gateway's own connections to the real sshd for one client connection. The agent never sees these
 * credentials. Connections are opened lazily and grown past MaxSessions.
 */
export class UpstreamPool {
  private readonly connections: UpstreamConnection[] = [];
  private readonly privateKey: Buffer | undefined;
  private readonly pinnedKey: Buffer;
  private disposed = false;

  constructor(
    private readonly listener: SshListenerConfig,
    private readonly events: UpstreamPoolEvents,
    private readonly log: Logger,
    /** The agent's transport: writes towards it are batched per upstream read, and the reverse (see write-batching). */
    private readonly clientSocket?: Duplex,
  ) {
    this.privateKey =
      listener.upstream.privateKey === undefined ? undefined : readFileSync(listener.upstream.privateKey);
    this.pinnedKey = parsePublicKeyLine(listener.upstream.hostKey).blob;
  }

  async acquire(): Promise<UpstreamLease> {
    if (this.disposed) throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: connection closing');
    let conn = this.connections.find((c) => !c.closed && c.channels < UPSTREAM_MAX_CHANNELS);
    if (conn === undefined) {
      conn = this.connect();
      this.connections.push(conn);
    }
    conn.channels++;
    const leased = conn;
    try {
      await leased.ready;
    } catch (err) {
      leased.channels--;
      throw err;
    }
    let released = false;
    return {
      client: leased.client,
      transports: this.transportsOf(leased.client),
      release: () => {
        if (released) return;
        released = true;
        leased.channels--;
      },
    };
  }

  /** Connect eagerly so an unreachable upstream is known before the first channel request. */
  warmUp(): Promise<void> {
    return this.acquire().then((lease) => lease.release());
  }

  dispose(): void {
    this.disposed = true;
    for (const c of this.connections) {
      c.closed = true;
      c.client.end();
    }
  }

  private transportsOf(client: ssh2.Client): readonly Duplex[] {
    const upstreamSocket = (client as unknown as { _sock?: Duplex })._sock;
    const clientSocket = this.clientSocket;
    return upstreamSocket === undefined || clientSocket === undefined ? [] : [clientSocket, upstreamSocket];
  }

  /** After 'ready' ssh2's own socket 'data' listeners are in place on both sockets, so ours run around them. */
  private batchWrites(client: ssh2.Client): void {
    const [clientSocket, upstreamSocket] = this.transportsOf(client);
    if (upstreamSocket === undefined || clientSocket === undefined || this.disposed) return;
    const detach = [
      batchWritesPerRead(clientSocket, [upstreamSocket, clientSocket]),
      batchWritesPerRead(upstreamSocket, [clientSocket, upstreamSocket]),
    ];
    client.once('close', () => detach.forEach((d) => d()));
  }

  private connect(): UpstreamConnection {
    const client = new ssh2.Client();
    const up = this.listener.upstream;

    let hostKeyMismatch = false;
    const conn: UpstreamConnection = {
      client,
      channels: 0,
      closed: false,
      ready: new Promise<void>((resolve, reject) => {
        client.once('ready', resolve);
        client.on('error', (err) => {
          conn.closed = true;
          if (hostKeyMismatch) {
            reject(
              new AgentgateError(
                'UPSTREAM_UNAVAILABLE',
                'agentgate: upstream host key does not match the pinned key',
                { cause: err },
              ),
            );
          } else {
            reject(
              new AgentgateError('UPSTREAM_UNAVAILABLE', `agentgate: upstream unavailable (${err.message})`, {
                cause: err,
              }),
            );
          }
          try {
            this.events.onError(err);
          } catch (e) {
            this.log.error('upstream error handler failed', { err: e });
          }
        });
        client.on('close', () => {
          conn.closed = true;
          reject(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream closed the connection'));
        });
      }),
    };
    conn.ready.catch(() => undefined);
    conn.ready.then(
      () => this.batchWrites(client),
      () => undefined,
    );
    client.connect({
      host: up.host,
      port: up.port,
      username: up.user,
      ...(this.privateKey !== undefined ? { privateKey: this.privateKey } : {}),
      ...(up.password !== undefined ? { password: up.password } : {}),
      // ssh2's client trusts any host key unless told otherwise: pin the configured one (RFC 4251 §4.1).
      hostVerifier: (key: Buffer) => {
        const ok = key.equals(this.pinnedKey);
        if (!ok) {
          hostKeyMismatch = true;
          try {
            this.events.onHostKeyMismatch(
              `${this.listener.upstream.hostKey.split(/\s+/)[0] ?? ''} ${key.toString('base64')}`,
            );
          } catch (e) {
            this.log.error('host key mismatch handler failed', { err: e });
          }
        }
        return ok;
      },
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      readyTimeout: 10_000,
    });
    // Window adjusts and keystrokes are tiny packets: with Nagle on they wait for the peer's delayed ACK.
    client.setNoDelay(true);
    return conn;
  }
}
