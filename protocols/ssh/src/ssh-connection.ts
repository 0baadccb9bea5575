import type { Duplex } from 'node:stream';
import type { AuthContext, Connection } from 'ssh2';
import { newId, onIdentityExpired } from '@agentgate/core';
import type {
  ClientInfo,
  EngineDeps,
  Identity,
  Logger,
  SessionInfo,
  SessionRecorder,
  SshListenerConfig,
} from '@agentgate/core';
import { makeDecide, type ConnectionContext } from './connection-context.js';
import { handleDirectTcpip, RemoteForwarding } from './port-forwarding.js';
import { verifyPublicKeySignature } from './public-key-auth.js';
import { SessionChannel } from './session-channel.js';
import { UpstreamPool } from './upstream-pool.js';

type ConnectionState =
  | { readonly kind: 'authenticating' }
  | { readonly kind: 'authenticated'; readonly identity: Identity; readonly username: string }
  | { readonly kind: 'ready'; readonly ctx: ConnectionContext; readonly forwarding: RemoteForwarding }
  | { readonly kind: 'closed' };

const AUTH_METHODS = ['publickey', 'password'] as const;

/** One client SSH connection: authentication, then its channels bridged to the gateway's own upstream connection. */
export class SshConnection {
  private state: ConnectionState = { kind: 'authenticating' };
  private readonly abort = new AbortController();
  private stopExpiryWatch: (() => void) | undefined;
  private stopWatchingRevocation: (() => void) | undefined;
  private channelSeq = 0;

  constructor(
    private readonly conn: Connection,
    private readonly listener: SshListenerConfig,
    private readonly deps: EngineDeps,
    private readonly client: ClientInfo,
    private readonly log: Logger,
  ) {}

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
    let identity: Identity | undefined;
    if (ctx.method === 'publickey') {
      identity = this.deps.identity.findSshKey(ctx.key.algo, ctx.key.data);
      if (identity === undefined) return ctx.reject([...AUTH_METHODS]);
      // RFC 4252 §7: without a signature the client only asks whether the key would be acceptable.
      if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept();
      if (!verifyPublicKeySignature(ctx.key.data, ctx.blob, ctx.signature, ctx.hashAlgo)) {
        this.log.warn('ssh public key signature invalid', { identity: identity.name });
        return ctx.reject([...AUTH_METHODS]);
      }
    } else if (ctx.method === 'password') {
      try {
        identity = await this.deps.identity.verifyToken(ctx.password);
      } catch {
        return ctx.reject([...AUTH_METHODS]);
      }
    } else {
      return ctx.reject([...AUTH_METHODS]);
    }
    if (!this.deps.identity.isAllowed(identity, this.listener.allow)) {
      this.log.info('ssh identity not allowed on listener', {
        identity: identity.name,
        listener: this.listener.name,
      });
      return ctx.reject([...AUTH_METHODS]);
    }
    this.state = { kind: 'authenticated', identity, username: ctx.username };
    ctx.accept();
  }

  private ready(): void {
    if (this.state.kind !== 'authenticated') return;
    const { identity, username } = this.state;
    const deps = this.deps;
    const info: SessionInfo = {
      id: newId(),
      listener: this.listener.name,
      protocol: 'ssh',
      identity,
      client: this.client,
      startedAt: Date.now(),
    };
    const recorder: SessionRecorder = deps.transcript.openSession(info, {
      username,
      upstream: `${this.listener.upstream.user}@${this.listener.upstream.host}:${this.listener.upstream.port}`,
    });
    deps.metrics.sessionStarted(this.listener.name, 'ssh');
    const log = this.log.child({ session: info.id, identity: identity.name });
    const record: ConnectionContext['record'] = (type, body) => {
      try {
        recorder.append(type, body);
      } catch (err) {
        log.error('transcript append failed', { err, type });
      }
    };
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
      recorder,
      pool,
      clientConnection: this.conn,
      signal: this.abort.signal,
      nextChannelId: () => this.nextChannelId(),
      decide: makeDecide(deps.gate, { info, recorder }, this.abort.signal, log),
      record,
    };
    this.state = { kind: 'ready', ctx, forwarding: new RemoteForwarding(ctx, this.conn) };
    this.disconnectAtExpiry(identity, record, log);
    this.disconnectOnRevocation(identity, record, log);
    this.disconnectWhenRecordingLost(recorder, log);
    // Connect upstream now so its failure is known (and recorded) before the first channel request.
    pool.warmUp().catch((err) => {
      record('error', { event: 'upstream.unavailable', message: (err as Error).message });
      deps.metrics.upstreamError(this.listener.name, 'ssh', 'connect');
    });
  }

  /**
   * A connection authenticated with an expiring token or key registration ends when it expires: the gate denies
   * new commands from then on, and this also stops what is already running (a shell, `tail -f`, a forwarded port).
   */
  private disconnectAtExpiry(
    identity: Identity,
    record: ConnectionContext['record'],
    log: ConnectionContext['log'],
  ): void {
    this.stopExpiryWatch = onIdentityExpired(identity, (expiredAt) => {
      log.info('ssh session ended: identity expired', { expiredAt });
      record('error', { event: 'identity.expired', expiredAt });
      this.conn.end();
    });
  }

  /** A revoked key registration (`DELETE /api/ssh-keys/{fingerprint}`) ends the connections made with it. */
  private disconnectOnRevocation(
    identity: Identity,
    record: ConnectionContext['record'],
    log: ConnectionContext['log'],
  ): void {
    const signal = identity.revoked;
    if (signal === undefined) return;
    const onRevoked = (): void => {
      log.info('ssh session ended: credential revoked');
      record('error', { event: 'identity.revoked' });
      this.conn.end();
    };
    if (signal.aborted) return onRevoked();
    signal.addEventListener('abort', onRevoked, { once: true });
    this.stopWatchingRevocation = () => signal.removeEventListener('abort', onRevoked);
  }

  /**
   * Fail closed for streams: when the store refuses this session's bytes (full disk, failMode closed), output of a
   * running command or a file transfer would otherwise go on unrecorded. New commands are refused by the gate.
   */
  private disconnectWhenRecordingLost(recorder: SessionRecorder, log: ConnectionContext['log']): void {
    recorder.recordingLost?.addEventListener(
      'abort',
      () => {
        log.error('ssh session ended: the transcript store refuses its bytes (failMode closed)');
        this.conn.end();
      },
      { once: true },
    );
  }

  /** Gateway shutdown: end the client connection (its channels close with it). */
  shutdown(): void {
    this.conn.end();
  }

  private close(): void {
    const s = this.state;
    this.state = { kind: 'closed' };
    this.stopExpiryWatch?.();
    this.stopWatchingRevocation?.();
    this.abort.abort();
    if (s.kind !== 'ready') return;
    s.forwarding.dispose();
    s.ctx.pool.dispose();
    try {
      s.ctx.recorder.end({ reason: 'client closed' });
    } catch (err) {
      this.log.error('transcript end failed', { err });
    }
    this.deps.metrics.sessionEnded(this.listener.name, 'ssh');
  }
}
