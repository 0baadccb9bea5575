import { createHash } from 'node:crypto';
import type { AuthContext, Connection } from 'ssh2';
import { tokenFailure } from '@agentgate/core';
import type {
  AuthFailureReason,
  ClientInfo,
  Identity,
  IdentityService,
  ListenerAccess,
  Logger,
  ProtocolMetrics,
  SshListenerConfig,
} from '@agentgate/core';
import { verifyPublicKeySignature } from './public-key-auth.js';
import type { SourcePenalties } from './source-penalties.js';

export const AUTH_METHODS = ['publickey', 'password'] as const;

/** RFC 4253 §11.1 SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, what OpenSSH sends past MaxAuthTries. */
const DISCONNECT_NO_MORE_AUTH_METHODS = 14;

/** Failures that guess at a secret: they earn the source its penalty. Unknown keys and the rest guess nothing. */
const PENALISED: ReadonlySet<AuthFailureReason> = new Set([
  'bad-token',
  'bad-signature',
  'too-many-attempts',
]);

export interface ClientAuthenticationOptions {
  readonly listener: SshListenerConfig;
  readonly identity: IdentityService;
  /** Who may use the listener now (its `allow`, as the last reload left it). */
  readonly access: ListenerAccess;
  readonly metrics: ProtocolMetrics;
  readonly client: ClientInfo;
  /** The listener's log (it carries `listener` and `protocol`). */
  readonly log: Logger;
  readonly penalties: SourcePenalties;
}

/**
 * The authentication requests of one client connection (RFC 4252), limited like OpenSSH's: after `maxAuthTries`
 * failures the next attempt closes the connection. Every failure is logged at info and counted by reason; a source
 * with recent failures waits before its attempts are answered (SourcePenalties). A publickey request without a
 * signature only asks whether a key would do: a known key is answered at once and is no failure; an unknown one
 * counts towards `maxAuthTries` (as in OpenSSH) but earns no penalty, since it guesses nothing.
 */
export class ClientAuthentication {
  private failures = 0;
  private requests = 0;
  private closed = false;
  /** The penalty the current attempt waited out (logged with its failure). */
  private waitedMs = 0;
  private readonly wakeOnClose = new Set<() => void>();

  constructor(
    private readonly conn: Connection,
    private readonly options: ClientAuthenticationOptions,
  ) {
    conn.once('close', () => {
      this.closed = true;
      for (const wake of this.wakeOnClose) wake();
    });
  }

  /**
   * Answer one request. Resolves with the identity when the client authenticated (the caller accepts the request),
   * undefined when the request was answered here (refused, a key query answered, or the connection closed).
   */
  async authenticate(ctx: AuthContext): Promise<Identity | undefined> {
    const first = this.requests++ === 0;
    // A client's first `none` request asks which methods exist (RFC 4252 §5.2); OpenSSH does not count it either.
    if (ctx.method === 'none' && first) {
      ctx.reject([...AUTH_METHODS]);
      return undefined;
    }
    if (this.failures >= this.options.listener.maxAuthTries)
      return this.tooManyAttempts(ctx, { maxAuthTries: this.options.listener.maxAuthTries });
    const query = ctx.method === 'publickey' && (ctx.signature === undefined || ctx.blob === undefined);
    this.waitedMs = 0;
    if (!query && !(await this.penaltyServed())) return this.tooManyAttempts(ctx, { penaltyQueueFull: true });
    if (this.closed) return undefined;
    const identity = await this.verify(ctx);
    if (identity === undefined || query) return undefined;
    if (!this.options.access.allows(identity)) {
      this.refuse(ctx, 'not-allowed', { identity: identity.name });
      return undefined;
    }
    return identity;
  }

  /** The identity the request proves, or undefined after refusing it (or answering a key query). */
  private async verify(ctx: AuthContext): Promise<Identity | undefined> {
    const { identity } = this.options;
    if (ctx.method === 'publickey') {
      const fingerprint = keyFingerprint(ctx.key.data);
      const found = identity.findSshKey(ctx.key.algo, ctx.key.data);
      if (found === undefined) {
        this.refuse(ctx, 'unknown-key', { fingerprint, query: ctx.signature === undefined });
        return undefined;
      }
      // RFC 4252 §7: without a signature the client only asks whether the key would be acceptable.
      if (ctx.signature === undefined || ctx.blob === undefined) {
        ctx.accept();
        return found;
      }
      if (!verifyPublicKeySignature(ctx.key.data, ctx.blob, ctx.signature, ctx.hashAlgo)) {
        this.refuse(ctx, 'bad-signature', { fingerprint, identity: found.name });
        return undefined;
      }
      return found;
    }
    if (ctx.method === 'password') {
      try {
        return await identity.verifyToken(ctx.password);
      } catch (err) {
        const why = tokenFailure(err);
        if (why.reason === 'unavailable') this.options.log.warn('ssh token could not be checked', { err });
        this.refuse(ctx, why.reason, why.detail === undefined ? {} : { detail: why.detail });
        return undefined;
      }
    }
    this.refuse(ctx, 'unsupported-method', {});
    return undefined;
  }

  /** Refuse the request: logged (never the credential), counted, and penalised where it guessed at a secret. */
  private refuse(ctx: AuthContext, reason: AuthFailureReason, fields: Record<string, unknown>): void {
    this.failures++;
    this.recordFailure(ctx, reason, fields);
    if (!this.closed) ctx.reject([...AUTH_METHODS]);
  }

  private tooManyAttempts(ctx: AuthContext, fields: Record<string, unknown>): undefined {
    this.recordFailure(ctx, 'too-many-attempts', fields);
    disconnect(this.conn, DISCONNECT_NO_MORE_AUTH_METHODS);
    return undefined;
  }

  private recordFailure(ctx: AuthContext, reason: AuthFailureReason, fields: Record<string, unknown>): void {
    const { listener, client, log, metrics, penalties } = this.options;
    log.info('ssh authentication failed', {
      source: client.address,
      sourcePort: client.port,
      reason,
      method: ctx.method,
      username: ctx.username,
      failures: this.failures,
      ...(this.waitedMs > 0 ? { penaltyMs: this.waitedMs } : {}),
      ...fields,
    });
    metrics.authFailed(listener.name, 'ssh', reason);
    if (PENALISED.has(reason)) penalties.failed(client.address);
  }

  /** Wait out the source's penalty. False when its line of waiting attempts is too long (refused at once). */
  private async penaltyServed(): Promise<boolean> {
    const wait = this.options.penalties.reserve(this.options.client.address);
    if ('refused' in wait) return false;
    this.waitedMs = wait.waitMs;
    if (wait.waitMs > 0) await this.sleepUnlessClosed(wait.waitMs);
    return true;
  }

  private sleepUnlessClosed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeOnClose.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeOnClose.add(done);
      if (this.closed) done();
    });
  }
}

/** OpenSSH's `SHA256:…` fingerprint of a public key blob. */
function keyFingerprint(keyData: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyData).digest('base64').replace(/=+$/, '')}`;
}

/** ssh2's server connection has no public way to send a disconnect with a reason code; its protocol object does. */
function disconnect(conn: Connection, reason: number): void {
  const internals = conn as unknown as {
    _protocol?: { disconnect(reason: number): void };
    _sock?: { end(): void };
  };
  try {
    internals._protocol?.disconnect(reason);
  } finally {
    internals._sock?.end();
  }
}
