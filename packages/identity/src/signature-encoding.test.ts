import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdentityService } from './identity-service.js';
import { generateSigningKeyPair, mintToken, type SigningKeyPair } from './local-idp.js';

// One signed token must have one encoding: a signature with extra octets is not the signature the key made
// (RFC 7518 §3.3, §3.4), even where a library would read only the octets it expects.
let dir: string;
let service: Awaited<ReturnType<typeof createIdentityService>>;
const keys: Partial<Record<'ES256' | 'RS256' | 'EdDSA', SigningKeyPair>> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-sigenc-'));
  for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) keys[alg] = await generateSigningKeyPair(alg);
  const all = Object.values(keys).flatMap((k) => k.jwks.keys);
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: all }));
  service = await createIdentityService(
    {
      oidc: [
        {
          issuer: 'local',
          audience: 'agentgate',
          jwks: join(dir, 'jwks.json'),
          groupsClaim: 'groups',
          clockSkewSeconds: 30,
        },
      ],
      tokens: [],
      sshKeys: [],
    },
    { verifiedTokenCacheMs: 0 },
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
