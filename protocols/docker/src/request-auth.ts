/**
 * Who a Docker request acts as: the unix listener's fixed identity, or the `Authorization: Bearer` token each
 * request carries, checked against the listener's `allow`. A keep-alive connection that presents the same header
 * again is not verified again while its identity's credential lasts. Every refusal is logged at info and counted
 * (`agentgate_auth_failures_total{protocol="docker"}`); the token never is.
 */
import {
  AgentgateError,
  credentialLapse,
  tokenFailure,
  type AuthFailureReason,
  type ClientInfo,
  type DockerListenerConfig,
  type EngineDeps,
  type Identity,
} from '@agentgate/core';
import { type Header, headerValues } from './http-codec.js';

export type AuthDeps = Pick<EngineDeps, 'identity' | 'metrics' | 'log' | 'access'>;

export class RequestAuthenticator {
  /** The last verified `Authorization` header of this connection, its token and identity. */
  private cached: { header: string; token: string; identity: Identity } | undefined;
  /** The identity object last found in `allow`, and the allow list's generation it was found in (a reload). */
  private allowed: Identity | undefined;
  private allowedGeneration = -1;
  private socketIdentity: Identity | undefined;
  private lastAuthorization: { headers: readonly Header[]; values: string[] } | undefined;

  constructor(
    private readonly listener: DockerListenerConfig,
    private readonly info: ClientInfo,
    private readonly deps: AuthDeps,
  ) {}

  /**
   * The identity a request acts as, admitted by the listener. Synchronous when nothing needs verifying (the
   * socket's identity, or the header this connection already verified); a new or changed token is verified
   * asynchronously. Throws (or rejects) AUTH_FAILED or NOT_ALLOWED.
   */
  authenticate(headers: readonly Header[]): Identity | Promise<Identity> {
    const { listener, info } = this;
    if (listener.identity !== undefined && info.address === 'unix') {
      this.socketIdentity ??= {
        name: listener.identity,
        groups: listener.identityGroups ?? [],
        source: 'socket',
      };
      return this.admitted(this.socketIdentity);
    }
    const auth = this.authorization(headers);
    const header = auth.length === 1 ? auth[0] : undefined;
    const cached = this.cached;
    if (cached && header === cached.header && credentialLapse(cached.identity, Date.now()) === undefined)
      return this.admitted(cached.identity);
    const token = header === undefined ? undefined : /^Bearer +(\S+)$/i.exec(header)?.[1];
    if (header === undefined || token === undefined) {
      const why =
        auth.length > 1 ? 'several Authorization headers' : auth.length === 1 ? 'not a Bearer token' : '';
      this.refused('no-credential', why === '' ? {} : { detail: why });
      throw new AgentgateError('AUTH_FAILED', 'agentgate: a Bearer token is required');
    }
    return this.verify(header, token).then((identity) => this.admitted(identity));
  }

  /** The `Authorization` values of a head: the same headers object (a repeated head) has the same values. */
  private authorization(headers: readonly Header[]): string[] {
    const last = this.lastAuthorization;
    if (last?.headers === headers) return last.values;
    const values = headerValues(headers, 'authorization');
    this.lastAuthorization = { headers, values };
    return values;
  }

  private async verify(header: string, token: string): Promise<Identity> {
    const cached = this.cached;
    if (cached && cached.token === token && credentialLapse(cached.identity, Date.now()) === undefined) {
      this.cached = { header, token, identity: cached.identity };
      return cached.identity;
    }
    let identity: Identity;
    try {
      identity = await this.deps.identity.verifyToken(token);
    } catch (err) {
      const { reason, detail } = tokenFailure(err);
      if (reason === 'unavailable') this.deps.log.warn('docker token could not be checked', { err });
      this.refused(reason, detail === undefined ? {} : { detail });
      const why =
        err instanceof AgentgateError && err.expose ? `: ${err.message.replace(/^agentgate: /, '')}` : '';
      throw new AgentgateError('AUTH_FAILED', `agentgate: authentication failed${why}`, { cause: err });
    }
    this.cached = { header, token, identity };
    return identity;
  }

  private admitted(identity: Identity): Identity {
    const { access } = this.deps;
    if (this.allowed === identity && this.allowedGeneration === access.generation) return identity;
    if (!access.allows(identity)) {
      this.refused('not-allowed', { identity: identity.name });
      throw new AgentgateError(
        'NOT_ALLOWED',
        `agentgate: ${identity.name} may not use listener ${this.listener.name}`,
      );
    }
    this.allowed = identity;
    this.allowedGeneration = access.generation;
    return identity;
  }

  private refused(reason: AuthFailureReason, fields: Record<string, unknown>): void {
    this.deps.log.info('docker authentication failed', {
      source: this.info.address,
      sourcePort: this.info.port,
      reason,
      ...fields,
    });
    this.deps.metrics.authFailed(this.listener.name, 'docker', reason);
  }
}
