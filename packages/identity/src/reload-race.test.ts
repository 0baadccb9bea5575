import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IdentityConfig } from '@agentgate/core';
import { createIdentityService } from './identity-service.js';
import { generateSigningKeyPair, mintToken, type SigningKeyPair } from './local-idp.js';

// A token whose verification is still waiting for its issuer's JWKS when a reload removes (or changes) the issuer
// must be judged by the configuration in force when the verification ends, not by the one it began under.
const issuer = 'https://idp.race.test/';
let keys: SigningKeyPair;
let server: Server;
let jwksUrl: string;
/** JWKS responses held back until the test releases them. */
const held: ServerResponse[] = [];

beforeAll(async () => {
  keys = await generateSigningKeyPair('ES256');
  server = createServer((_req, res) => held.push(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
});

afterAll(async () => {
  for (const res of held.splice(0)) res.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function config(audience: string, withIssuer = true): IdentityConfig {
  return {
    oidc: withIssuer
      ? [{ issuer, audience, jwks: jwksUrl, groupsClaim: 'groups', clockSkewSeconds: 30 }]
      : [],
    tokens: [],
    sshKeys: [],
  };
}

async function releaseJwksWhenAsked(): Promise<void> {
  for (let waited = 0; held.length === 0 && waited < 3000; waited += 5)
    await new Promise((resolve) => setTimeout(resolve, 5));
  for (const res of held.splice(0))
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.jwks));
}

const mint = (audience: string): Promise<string> =>
  mintToken({
    privateJwk: keys.privateJwk,
    sub: 'mallory',
    groups: ['dba'],
    ttlSeconds: 600,
    issuer,
    audience,
  });

describe('a reload while a token is being verified', () => {
  it('refuses the token of an issuer the reload removed', async () => {
    const svc = await createIdentityService(config('agentgate'));
    const verifying = svc.verifyToken(await mint('agentgate'));
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await svc.prepare(config('agentgate', false)).apply();
    await releaseJwksWhenAsked();
    await expect(verifying).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'unknown-issuer' },
    });
    // Nor is the token remembered as verified for the next connection.
    await expect(svc.verifyToken(await mint('agentgate'))).rejects.toMatchObject({ code: 'AUTH_FAILED' });
  });

  it('checks the token against the issuer settings the reload put in force', async () => {
    const svc = await createIdentityService(config('agentgate'));
    const token = await mint('agentgate');
    const verifying = svc.verifyToken(token);
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await svc.prepare(config('other-audience')).apply();
    const release = releaseJwksWhenAsked();
    // The reloaded issuer has a JWKS source of its own: answer its fetch too.
    const again = (async () => {
      await release;
      await releaseJwksWhenAsked();
    })();
    await expect(verifying).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'wrong-audience' },
    });
    await again;
    await expect(svc.verifyToken(token)).rejects.toMatchObject({ detail: { reason: 'wrong-audience' } });
  });
});
