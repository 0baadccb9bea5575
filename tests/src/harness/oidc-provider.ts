/**
 * A real OpenID provider for the console's sign-in tests: `oidc-provider` (the certified provider library) on
 * 127.0.0.1, with its own login and consent pages (devInteractions: any login name, any password), one confidential
 * client for the console, and a `groups` claim per account released under the `groups` scope.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from './postgres.js';

export interface TestOidcProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly jwksUri: string;
  stop(): Promise<void>;
}

export async function startOidcProvider(options: {
  /** The console's callback, `publicUrl/auth/callback` (several consoles: one each). */
  redirectUri: string | readonly string[];
  /** Each account's groups, by login name. */
  groups: Record<string, readonly string[]>;
}): Promise<TestOidcProvider> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-idp', alg: 'RS256', use: 'sig' };
  const clientId = 'agentgate-console';
  const clientSecret = 'console-client-secret-for-tests';
  // The library says, rightly, that devInteractions are for development: the test wants exactly that; keep the log clean.
  const warn = console.warn;
  console.warn = () => undefined;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris:
          typeof options.redirectUri === 'string' ? [options.redirectUri] : [...options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [signingKey as never] },
    cookies: { keys: ['agentgate-test-oidc-cookie-key'] },
    claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'groups'],
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 3600, IdToken: 3600 },
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, name: id, groups: [...(options.groups[id] ?? [])] }),
    }),
  });
  console.warn = warn;
  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    issuer,
    clientId,
    clientSecret,
    jwksUri: `${issuer}/jwks`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
