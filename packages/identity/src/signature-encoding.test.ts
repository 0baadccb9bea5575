import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { localIssuer, type LocalIssuer } from './local-issuer-fixture.js';
import { generateSigningKeyPair, mintToken, type SigningKeyPair } from './local-idp.js';

// One signed token must have one encoding: a signature with extra octets is not the signature the key made
// (RFC 7518 §3.3, §3.4), even where a library would read only the octets it expects.
let issuer: LocalIssuer;
let service: LocalIssuer['service'];
const keys: Partial<Record<'ES256' | 'RS256' | 'EdDSA', SigningKeyPair>> = {};

beforeAll(async () => {
  for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) keys[alg] = await generateSigningKeyPair(alg);
  issuer = await localIssuer(
    { keys: Object.values(keys).flatMap((k) => k.jwks.keys) },
    { verifiedTokenCacheMs: 0 },
  );
  service = issuer.service;
});

afterAll(() => issuer.remove());

describe('signature encoding', () => {
  it.each(['ES256', 'RS256', 'EdDSA'] as const)(
    '%s: refuses a valid signature with an octet appended',
    async (alg) => {
      const token = await mintToken({
        privateJwk: keys[alg]!.privateJwk,
        sub: 'bob',
        groups: [],
        ttlSeconds: 600,
        issuer: 'local',
        audience: 'agentgate',
      });
      await expect(service.verifyToken(token)).resolves.toMatchObject({ name: 'bob' });
      const [header, payload, signature] = token.split('.');
      const longer = Buffer.concat([Buffer.from(signature!, 'base64url'), Buffer.from([0])]).toString(
        'base64url',
      );
      await expect(service.verifyToken(`${header}.${payload}.${longer}`)).rejects.toMatchObject({
        code: 'AUTH_FAILED',
        detail: { reason: 'bad-signature' },
      });
    },
  );
});
