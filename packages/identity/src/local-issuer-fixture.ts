/**
 * For this package's tests: an identity service trusting one issuer, `local` (audience `agentgate`), whose JWKS is a
 * file in a directory of its own. Not exported from the package.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import { createIdentityService, type IdentityServiceOptions } from './identity-service.js';
import { generateSigningKeyPair, mintToken } from './local-idp.js';

export interface LocalIssuer {
  readonly service: Awaited<ReturnType<typeof createIdentityService>>;
  /** removes the JWKS file's directory */
  remove(): void;
}

export async function localIssuer(
  jwks: { keys: object[] },
  options?: IdentityServiceOptions,
): Promise<LocalIssuer> {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-local-issuer-'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
  const service = await createIdentityService(
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
    options,
  );
  return { service, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A test file's local issuer with one ES256 key, made before its tests and removed after them: its service, and
 * tokens it signs (10 minutes, `sub` and `groups`, and any other claims given).
 */
export function useLocalIssuer(): {
  readonly service: LocalIssuer['service'];
  mint(sub: string, groups: unknown, extraClaims?: object): Promise<string>;
} {
  let issuer: LocalIssuer | undefined;
  let privateJwk: object = {};
  beforeAll(async () => {
    const keys = await generateSigningKeyPair('ES256');
    privateJwk = keys.privateJwk;
    issuer = await localIssuer(keys.jwks);
  });
  afterAll(() => issuer?.remove());
  return {
    get service() {
      if (issuer === undefined) throw new Error('the local issuer is made in beforeAll');
      return issuer.service;
    },
    mint: (sub, groups, extraClaims = {}) =>
      mintToken({
        privateJwk,
        sub,
        groups: groups as string[],
        ttlSeconds: 600,
        issuer: 'local',
        audience: 'agentgate',
        extraClaims,
      }),
  };
}
