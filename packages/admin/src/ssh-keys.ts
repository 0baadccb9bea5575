/**
 * `POST/GET/DELETE /api/ssh-keys` (docs/cli.md, "Admin HTTP API"): register a public key that acts as the Bearer token's identity, with
 * its groups, until the TTL ends. The OpenSSH client cuts passwords at 1023 bytes, so long JWTs log in this way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentgateError, parseDuration, type Identity, type IdentityService } from '@agentgate/core';
import { bearerToken, readJson, sendJson } from './http-util.js';

export interface SshKeyRegistration {
  readonly fingerprint: string;
  readonly expiresAt: number;
  readonly identity: Identity;
}

export interface SshKeyRegistry {
  register(publicKeyLine: string, identity: Identity, ttlMs: number): SshKeyRegistration;
  list(): readonly SshKeyRegistration[];
  revoke(fingerprint: string): boolean;
}

export interface SshKeysApiOptions {
  readonly identity: IdentityService;
  readonly registry: SshKeyRegistry;
  /** Longest TTL a key may be registered for. */
  readonly maxTtlMs: number;
  /** Called after each change, to record it; `actor` is the identity whose token asked for it. */
  readonly onChange?: (
    event: 'registered' | 'revoked',
    detail: Record<string, unknown>,
    actor: Identity,
  ) => void;
}

export function sshKeysHandler(opts: SshKeysApiOptions) {
  return async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> => {
    if (!pathname.startsWith('/api/ssh-keys')) return false;
    const token = bearerToken(req);
    if (!token) throw new AgentgateError('AUTH_FAILED', 'a Bearer token is required');
    const caller = await opts.identity.verifyToken(token);
    const visible = (r: SshKeyRegistration): boolean => r.identity.name === caller.name;
    const show = (r: SshKeyRegistration) => ({
      fingerprint: r.fingerprint,
      identity: r.identity.name,
      groups: r.identity.groups,
      expiresAt: new Date(r.expiresAt).toISOString(),
    });

    if (pathname === '/api/ssh-keys' && req.method === 'POST') {
      const body = (await readJson(req)) as { publicKey?: unknown; ttl?: unknown };
      if (typeof body.publicKey !== 'string')
        throw new AgentgateError('BAD_REQUEST', 'publicKey (string) is required');
      let ttlMs = typeof body.ttl === 'string' ? parseDuration(body.ttl) : 8 * 3_600_000;
      // A key must not outlive the token that registered it.
      const callerExpiresAtMs = caller.lease?.expiresAtMs;
      if (callerExpiresAtMs !== undefined) ttlMs = Math.min(ttlMs, callerExpiresAtMs - Date.now());
      if (ttlMs <= 0) throw new AgentgateError('BAD_REQUEST', 'ttl must be positive');
      if (ttlMs > opts.maxTtlMs)
        throw new AgentgateError('BAD_REQUEST', `ttl over the maximum of ${opts.maxTtlMs / 3_600_000}h`);
      const reg = opts.registry.register(body.publicKey, caller, ttlMs);
      opts.onChange?.(
        'registered',
        {
          fingerprint: reg.fingerprint,
          identity: caller.name,
          expiresAt: reg.expiresAt,
        },
        caller,
      );
      sendJson(res, 201, show(reg));
      return true;
    }
    if (pathname === '/api/ssh-keys' && req.method === 'GET') {
      sendJson(res, 200, opts.registry.list().filter(visible).map(show));
      return true;
    }
    const m = /^\/api\/ssh-keys\/(.+)$/.exec(pathname);
    if (m && req.method === 'DELETE') {
      const fingerprint = decodeURIComponent(m[1]!);
      const reg = opts.registry.list().find((r) => r.fingerprint === fingerprint);
      if (!reg || !visible(reg)) throw new AgentgateError('NOT_FOUND', `no registered key ${fingerprint}`);
      opts.registry.revoke(fingerprint);
      opts.onChange?.('revoked', { fingerprint, identity: caller.name }, caller);
      sendJson(res, 200, { revoked: fingerprint });
      return true;
    }
    throw new AgentgateError('NOT_FOUND', `no route ${req.method} ${pathname}`);
  };
}
