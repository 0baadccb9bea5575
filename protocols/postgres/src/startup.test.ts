import { describe, expect, it } from '@jest/globals';
import {
  AgentgateError,
  matchesPrincipal,
  noopMetrics,
  silentLogger,
  type AuthFailureReason,
  type Identity,
  type PostgresListenerConfig,
  ReplaceableListenerAccess,
} from '@agentgate/core';
import { authenticate, startupRefusal } from './startup.js';

const listener: PostgresListenerConfig = {
  name: 'pg',
  protocol: 'postgres',
  listen: '127.0.0.1:0',
  allow: ['group:agents'],
  allowCleartext: false,
  upstream: { host: '127.0.0.1', port: 5432, user: 'app', database: 'app' },
  maxMessageBytes: 1 << 20,
  recordRows: 5,
  dynamicSql: 'match-all',
  loginTimeoutMs: 60_000,
};
const local = { address: '127.0.0.1', local: true, tls: false };
const remote = { address: '192.0.2.7', local: false, tls: false };
const params = (entries: Record<string, string>) => new Map(Object.entries({ user: 'devin', ...entries }));

describe('startup', () => {
  it('refuses parameters the gateway cannot honour and cleartext passwords off loopback without TLS', () => {
    const ctx = { listener, client: local, tls: false };
    expect(startupRefusal(params({ database: 'app' }), ctx)).toBeUndefined();
    expect(startupRefusal(params({ options: '-c x=1' }), ctx)?.sqlstate).toBe('0A000');
    expect(startupRefusal(params({ replication: 'database' }), ctx)?.sqlstate).toBe('0A000');
    expect(startupRefusal(params({ client_encoding: 'LATIN1' }), ctx)?.message).toMatch(/LATIN1/);
    expect(startupRefusal(params({ client_encoding: "'utf-8'" }), ctx)).toBeUndefined();
    expect(startupRefusal(params({ standard_conforming_strings: 'off' }), ctx)?.sqlstate).toBe('0A000');
    // The server reads setting names case-insensitively, and a role set at startup is a role switch.
    expect(startupRefusal(params({ STANDARD_CONFORMING_STRINGS: 'off' }), ctx)?.sqlstate).toBe('0A000');
    expect(startupRefusal(params({ Client_Encoding: 'SJIS' }), ctx)?.message).toMatch(/SJIS/);
    expect(startupRefusal(params({ client_encoding: 'UTF8', CLIENT_ENCODING: 'SJIS' }), ctx)).toBeDefined();
    for (const name of ['role', 'ROLE', 'session_authorization', 'Session_Authorization'])
      expect(startupRefusal(params({ [name]: 'boss' }), ctx)?.message).toMatch(/not allowed/);
    expect(startupRefusal(params({ application_name: 'psql', DateStyle: 'ISO' }), ctx)).toBeUndefined();
    expect(startupRefusal(params({}), { listener, client: remote, tls: false })?.sqlstate).toBe('28000');
    expect(startupRefusal(params({}), { listener, client: remote, tls: true })).toBeUndefined();
  });
});

describe('client authentication', () => {
  const devin: Identity = { name: 'devin', groups: ['agents'], source: 'token' };
  const eve: Identity = { name: 'eve', groups: ['outsiders'], source: 'token' };
  function deps(failures: AuthFailureReason[]) {
    return {
      identity: {
        async verifyToken(token: string): Promise<Identity> {
          if (token === 'devin') return devin;
          if (token === 'eve') return eve;
          const reason =
            token === 'old' ? 'expired' : token === 'jwks' ? 'jwks-unavailable' : 'unknown-token';
          throw new AgentgateError('AUTH_FAILED', 'refused', { detail: { reason } });
        },
        findSshKey: () => undefined,
        isAllowed: (who: Identity, refs: readonly string[]) => matchesPrincipal(who, refs as never),
      },
      metrics: {
        ...noopMetrics,
        authFailed: (_l: string, _p: string, reason: AuthFailureReason) => void failures.push(reason),
      },
      log: silentLogger,
      access: new ReplaceableListenerAccess(listener.allow),
    };
  }
  const ctx = { listener, client: local, tls: false };

  it('admits a valid token and names the database the listener serves', async () => {
    const failures: AuthFailureReason[] = [];
    const result = await authenticate('devin', params({ database: 'app' }), ctx, deps(failures));
    expect(result).toEqual({
      login: { identity: devin, database: 'app', user: 'devin', params: params({ database: 'app' }) },
    });
    expect(failures).toEqual([]);
  });

  it('refuses and counts bad, expired and uncheckable tokens and identities outside allow', async () => {
    const failures: AuthFailureReason[] = [];
    for (const token of ['nope', 'old', 'jwks'])
      expect(await authenticate(token, params({}), ctx, deps(failures))).toEqual({
        refusal: { sqlstate: '28P01', message: 'agentgate: password authentication failed for user "devin"' },
      });
    expect((await authenticate('eve', params({}), ctx, deps(failures))) as unknown).toMatchObject({
      refusal: { sqlstate: '28000' },
    });
    expect(failures).toEqual(['bad-token', 'expired', 'unavailable', 'not-allowed']);
  });

  it('refuses another database than the one the listener serves', async () => {
    const result = await authenticate('devin', params({ database: 'other' }), ctx, deps([]));
    expect(result).toMatchObject({ refusal: { sqlstate: '3D000' } });
  });
});
