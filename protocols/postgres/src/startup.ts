/**
 * Startup and client authentication (PostgreSQL docs "Start-up"): which startup parameters the gateway accepts,
 * the token sent as the cleartext password, and the limits that hold until a client has authenticated — the
 * server's own 64 KiB cap on authentication messages (PG_MAX_AUTH_TOKEN_LENGTH) and a login timeout like its
 * authentication_timeout.
 */
import {
  clientMessage,
  tokenFailure,
  type AuthFailureReason,
  type ClientInfo,
  type EngineDeps,
  type Identity,
  type PostgresListenerConfig,
} from '@agentgate/core';

/** Largest message a client may send before it has authenticated (the password message); the server's limit. */
export const MAX_PRE_AUTH_MESSAGE_BYTES = 64 * 1024;

/** A refusal the session sends as a FATAL ErrorResponse. */
export interface Refusal {
  readonly sqlstate: string;
  readonly message: string;
}

/** An authenticated client: who, and which database as which user it asked for. */
export interface Login {
  readonly identity: Identity;
  readonly database: string;
  readonly user: string;
  readonly params: ReadonlyMap<string, string>;
}

export interface StartupContext {
  readonly listener: PostgresListenerConfig;
  readonly client: ClientInfo;
  /** The connection is TLS by now (after an SSLRequest). */
  readonly tls: boolean;
}

/**
 * Startup parameters other than `user` and `database` are settings the server applies before the first command,
 * with no statement the rules could see: it reads their names as setting names, case-insensitively (`ROLE=boss`
 * is `SET ROLE boss`). So every name is compared in lower case, and settings that switch the role or change how
 * the server splits SQL text are refused here, as the SQL analysis refuses or decides them in a statement.
 */
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);

/** Startup parameters the gateway cannot honour, and a cleartext password it must not ask for. */
export function startupRefusal(
  params: ReadonlyMap<string, string>,
  ctx: StartupContext,
): Refusal | undefined {
  for (const [rawName, value] of params) {
    const name = rawName.toLowerCase();
    if (name === 'options' || name === 'replication' || IDENTITY_SETTINGS.has(name))
      return {
        sqlstate: '0A000',
        message: `agentgate: startup parameter "${rawName}" is not allowed through the gateway${
          IDENTITY_SETTINGS.has(name) ? ' (switch roles with a statement, which the rules decide)' : ''
        }`,
      };
    if (name === 'client_encoding' && !/^(utf-?8|unicode)$/i.test(value.replace(/['"]/g, ''))) {
      return {
        sqlstate: '0A000',
        message: `agentgate: client_encoding "${value}" is not supported (the gateway analyses SQL as UTF8)`,
      };
    }
    if (name === 'standard_conforming_strings' && !/^(on|true|yes|1)$/i.test(value)) {
      return {
        sqlstate: '0A000',
        message:
          'agentgate: standard_conforming_strings must stay on (the gateway analyses SQL as the server splits it)',
      };
    }
  }
  if (!ctx.tls && !ctx.client.local && !ctx.listener.allowCleartext) {
    return {
      sqlstate: '28000',
      message:
        'agentgate: refusing a cleartext password over a non-TLS connection; connect with sslmode=require',
    };
  }
  return undefined;
}

/**
 * Check the token sent as the password, the listener's `allow` and the database asked for. Every refusal of a
 * credential is logged at info (never the credential) and counted (`agentgate_auth_failures_total`).
 */
export async function authenticate(
  token: string,
  params: ReadonlyMap<string, string>,
  ctx: StartupContext,
  deps: Pick<EngineDeps, 'identity' | 'metrics' | 'log' | 'access'>,
): Promise<{ login: Login } | { refusal: Refusal }> {
  const { listener } = ctx;
  const failed = (reason: AuthFailureReason, fields: Record<string, unknown>): void => {
    deps.log.info('postgres authentication failed', {
      listener: listener.name,
      protocol: 'postgres',
      source: ctx.client.address,
      reason,
      user: params.get('user') ?? '',
      ...fields,
    });
    deps.metrics.authFailed(listener.name, 'postgres', reason);
  };
  let identity: Identity;
  try {
    identity = await deps.identity.verifyToken(token);
  } catch (err) {
    const reason = tokenFailure(err).reason;
    if (reason === 'unavailable') deps.log.warn('postgres token could not be checked', { err });
    failed(reason, { err: clientMessage(err) });
    return {
      refusal: {
        sqlstate: '28P01',
        message: `agentgate: password authentication failed for user "${params.get('user') ?? ''}"`,
      },
    };
  }
  if (!deps.access.allows(identity)) {
    failed('not-allowed', { identity: identity.name });
    return {
      refusal: {
        sqlstate: '28000',
        message: `agentgate: identity "${identity.name}" is not allowed on listener ${listener.name}`,
      },
    };
  }
  const upstream = listener.upstream;
  const requested = params.get('database');
  if (
    upstream.database !== undefined &&
    requested !== undefined &&
    requested !== upstream.database &&
    requested !== params.get('user')
  ) {
    return {
      refusal: {
        sqlstate: '3D000',
        message: `agentgate: listener ${listener.name} serves database "${upstream.database}" only`,
      },
    };
  }
  return {
    login: {
      identity,
      database: upstream.database ?? requested ?? upstream.user,
      user: params.get('user') ?? identity.name,
      params,
    },
  };
}
