import type { Duplex } from 'node:stream';
import type { AuthContext, Connection } from 'ssh2';
import { CLIENT_LEFT } from '@agentgate/core';
import type {
  ClientInfo,
  EngineDeps,
  GatedSession,
  Identity,
  Logger,
  SshListenerConfig,
} from '@agentgate/core';
import { AUTH_METHODS, ClientAuthentication } from './client-authentication.js';
import type { ConnectionContext } from './connection-context.js';
import { handleDirectTcpip, RemoteForwarding } from './port-forwarding.js';
import { SessionChannel } from './session-channel.js';
import type { SourcePenalties } from './source-penalties.js';
import { UpstreamPool } from './upstream-pool.js';

type ConnectionState =
  | { readonly kind: 'authenticating' }
  | { readonly kind: 'authenticated'; readonly identity: Identity; readonly username: string }
  | {
      readonly kind: 'ready';
      readonly session: GatedSession;
      readonly ctx: ConnectionContext;
      readonly forwarding: RemoteForwarding;
    }
  | { readonly kind: 'closed' };

export interface SshConnectionOptions {
  readonly listener: SshListenerConfig;
  readonly deps: EngineDeps;
  /** Where the client connected from. */
  readonly client: ClientInfo;
  readonly log: Logger;
  /** The connection's signal from `handle`: it ends the session (gateway shutdown). */
  readonly signal: AbortSignal;
  /** The listener's per-source penalty for failed authentications. */
  readonly penalties: SourcePenalties;
}

/** One client SSH connection: authentication, then its channels bridged to the gateway's own upstream connection. */
export class SshConnection {
  private state: ConnectionState = { kind: 'authenticating' };
  private channelSeq = 0;
  private readonly authentication: ClientAuthentication;

  private readonly listener: SshListenerConfig;
  private readonly deps: EngineDeps;
  private readonly client: ClientInfo;
  private readonly log: Logger;
  private readonly signal: AbortSignal;

  constructor(
    private readonly conn: Connection,
    options: SshConnectionOptions,
  ) {
    this.listener = options.listener;
    this.deps = options.deps;
    this.client = options.client;
    this.log = options.log;
    this.signal = options.signal;
    this.authentication = new ClientAuthentication(conn, {
      listener: options.listener,
      identity: options.deps.identity,
      access: options.deps.access,
      metrics: options.deps.metrics,
      client: options.client,
      log: options.log,
      penalties: options.penalties,
    });
  }

  attach(): void {
    const conn = this.conn;
    conn.on('authentication', (ctx: AuthContext) => {
      this.authenticate(ctx).catch((err) => {
        this.log.warn('ssh authentication error', { err });
        try {
          ctx.reject([...AUTH_METHODS]);
        } catch {
          // connection already gone
        }
      });
    });
    conn.on('ready', () => {
      try {
        this.ready();
      } catch (err) {
        this.log.error('ssh session could not start', { err });
        conn.end();
      }
    });
    conn.on('session', (accept, reject) => {
      try {
        if (this.state.kind !== 'ready') return reject();
        const session = accept();
        new SessionChannel(this.state.ctx, session, this.nextChannelId());
      } catch (err) {
        this.log.error('ssh session channel failed', { err });
      }
    });
    conn.on('tcpip', (accept, reject, info) => {
      try {
        if (this.state.kind !== 'ready') return reject();
        handleDirectTcpip(this.state.ctx, accept, reject, info);
      } catch (err) {
        this.log.error('ssh direct-tcpip failed', { err });
      }
    });
    conn.on('openssh.streamlocal', (_accept: unknown, reject: () => void) => {
      // Unix-socket forwarding (`ssh -L /sock`): not a channel kind the rules can allow, so always refused.
      try {
        if (this.state.kind === 'ready')
          this.state.ctx.record('notice', {
            event: 'channel.refused',
            type: 'direct-streamlocal@openssh.com',
          });
        reject();
      } catch (err) {
        this.log.error('ssh streamlocal failed', { err });
      }
    });
    conn.on('request', (accept, reject, name, info) => {
      try {
        if (this.state.kind !== 'ready') return reject?.();
        this.state.forwarding.handle(name, accept, reject, info as { bindAddr: string; bindPort: number });
      } catch (err) {
        this.log.error('ssh global request failed', { err });
      }
    });
    conn.on('error', (err: Error) => {
      this.log.debug('ssh client connection error', { err: err.message });
    });
    conn.on('close', () => {
      try {
        this.close();
      } catch (err) {
        this.log.error('ssh close failed', { err });
      }
    });
  }

  /** True once authenticated and the session is open. */
  get isReady(): boolean {
    return this.state.kind === 'ready';
  }

  nextChannelId(): string {
    return `ch${++this.channelSeq}`;
  }

  private async authenticate(ctx: AuthContext): Promise<void> {
    if (this.state.kind !== 'authenticating') return ctx.reject();
    const identity = await this.authentication.authenticate(ctx);
    if (identity === undefined || this.state.kind !== 'authenticating') return;
    this.state = { kind: 'authenticated', identity, username: ctx.username };
    ctx.accept();
  }

  private ready(): void {
    if (this.state.kind !== 'authenticated') return;
    const { identity, username } = this.state;
    const deps = this.deps;
    const session = deps.sessions.open({
      listener: this.listener.name,
      protocol: 'ssh',
      identity,
      client: this.client,
      detail: {
        username,
        upstream: `${this.listener.upstream.user}@${this.listener.upstream.host}:${this.listener.upstream.port}`,
      },
      signal: this.signal,
      log: this.log,
    });
    const log = session.log;
    const record: ConnectionContext['record'] = (type, body) => session.record(type, body);
    const pool = new UpstreamPool(
      this.listener,
      {
        onHostKeyMismatch: (presented) => {
          record('error', {
            event: 'upstream.host-key-mismatch',
            expected: this.listener.upstream.hostKey,
            presented,
          });
          deps.metrics.upstreamError(this.listener.name, 'ssh', 'host-key');
        },
        onError: (err) => log.warn('upstream connection error', { err: err.message }),
      },
      log,
      (this.conn as unknown as { _sock?: Duplex })._sock,
    );
    const ctx: ConnectionContext = {
      listener: this.listener,
      log,
      metrics: deps.metrics,
      recorder: session.recorder,
      pool,
      clientConnection: this.conn,
      nextChannelId: () => this.nextChannelId(),
      decide: (command, signal, hooks) => session.decide(command, signal, hooks),
      record,
    };
    this.state = { kind: 'ready', session, ctx, forwarding: new RemoteForwarding(ctx, this.conn) };
    // Whatever ends the session (expiry, revocation, the store refusing its bytes, shutdown, an administrator) ends
    // the connection, and with it what is still running: a shell, `tail -f`, a forwarded port.
    session.ended.addEventListener('abort', () => this.conn.end(), { once: true });
    // Connect upstream now so its failure is known (and recorded) before the first channel request.
    pool.warmUp().catch((err) => {
      record('error', { event: 'upstream.unavailable', message: (err as Error).message });
      deps.metrics.upstreamError(this.listener.name, 'ssh', 'connect');
    });
  }

  /**
   * Gateway shutdown of a connection without a session yet (an open session ends through `ended`), and the engine
   * closing: end the client connection (its channels close with it).
   */
  shutdown(): void {
    this.conn.end();
  }

  private close(): void {
    const s = this.state;
    this.state = { kind: 'closed' };
    if (s.kind !== 'ready') return;
    s.forwarding.dispose();
    s.ctx.pool.dispose();
    s.session.end(CLIENT_LEFT);
  }
}
