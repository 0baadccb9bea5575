/**
 * `POST/GET/DELETE /api/ssh-keys` (docs/cli.md, "Admin HTTP API"): register a public key that acts as the Bearer token's identity, with
 * its groups, until the TTL ends. The OpenSSH client cuts passwords at 1023 bytes, so long JWTs log in this way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AgentgateError,
  isAgentgateError,
  parseDuration,
  type Identity,
  type IdentityService,
} from '@agentgate/core';
import { bearerToken, readJson, sendJson } from './http-util.js';

export interface SshKeyRegistration {
  readonly fingerprint: string;
  readonly expiresAt: number;
  readonly identity: Identity;
}

export interface SshKeyRegistry {
  /** Resolves once the registration is durable. */
  register(publicKeyLine: string, identity: Identity, ttlMs: number): Promise<SshKeyRegistration>;
  list(): readonly SshKeyRegistration[];
  /** `by`: the caller's identity, kept with a fleet's revocation. */
  revoke(fingerprint: string, by?: string): Promise<boolean>;
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
    const caller = await opts.identity.verifyToken(token).catch((err: unknown) => {
      // The one failure a user fixes themselves: say it plainly.
      if (isAgentgateError(err) && (err.detail as { reason?: unknown } | undefined)?.reason === 'expired')
        throw new AgentgateError(
          'AUTH_FAILED',
          `token expired (${err.message}); get a fresh token and try again`,
        );
      throw err;
    });
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
      const askedMs = typeof body.ttl === 'string' ? parseDuration(body.ttl) : DEFAULT_TTL_MS;
      if (askedMs <= 0) throw new AgentgateError('BAD_REQUEST', 'ttl must be positive');
      if (askedMs > opts.maxTtlMs)
        throw new AgentgateError(
          'BAD_REQUEST',
          `ttl ${formatHours(askedMs)} is over the maximum of ${formatHours(opts.maxTtlMs)}; ask for ${formatHours(opts.maxTtlMs)} or less`,
        );
      // A key must not outlive the token that registered it: the TTL is cut to the token's end, and the reply says so.
      const callerExpiresAtMs = caller.lease?.expiresAtMs;
      const tokenLeftMs = callerExpiresAtMs === undefined ? undefined : callerExpiresAtMs - Date.now();
      if (tokenLeftMs !== undefined && tokenLeftMs <= 0)
        throw new AgentgateError('AUTH_FAILED', 'token expired; get a fresh token and run ssh-login again');
      const shortened = tokenLeftMs !== undefined && tokenLeftMs < askedMs;
      const ttlMs = shortened ? tokenLeftMs : askedMs;
      const reg = await opts.registry.register(body.publicKey, caller, ttlMs);
      opts.onChange?.(
        'registered',
        {
          fingerprint: reg.fingerprint,
          identity: caller.name,
          expiresAt: reg.expiresAt,
        },
        caller,
      );
      sendJson(res, 201, {
        ...show(reg),
        ...(shortened
          ? {
              ttlShortened: {
                asked: formatHours(askedMs),
                granted: formatHours(ttlMs),
                reason: `the token expires at ${new Date(callerExpiresAtMs!).toISOString()}; a key never outlives the token that registered it`,
              },
            }
          : {}),
      });
      return true;
    }
    if (pathname === '/api/ssh-keys' && req.method === 'GET') {
      sendJson(res, 200, opts.registry.list().filter(visible).map(show));
      return true;
    }
    const m = /^\/api\/ssh-keys\/(.+)$/.exec(pathname);
    if (m && req.method === 'DELETE') {
      const fingerprint = decodeFingerprint(m[1]!);
      const reg = opts.registry.list().find((r) => r.fingerprint === fingerprint);
      if (!reg || !visible(reg)) throw new AgentgateError('NOT_FOUND', `no registered key ${fingerprint}`);
      await opts.registry.revoke(fingerprint, caller.name);
      opts.onChange?.('revoked', { fingerprint, identity: caller.name }, caller);
      sendJson(res, 200, { revoked: fingerprint });
      return true;
    }
    throw new AgentgateError('NOT_FOUND', `no route ${req.method} ${pathname}`);
  };
}

const DEFAULT_TTL_MS = 8 * 3_600_000;

/** A path segment that is not valid percent-encoding is the caller's mistake (400), not the gateway's (500). */
function decodeFingerprint(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AgentgateError('BAD_REQUEST', 'the fingerprint in the path is not valid percent-encoding');
  }
}

/** A TTL as a person reads it: `8h`, `1h30m`, `45m`, `90s`. */
function formatHours(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
}
