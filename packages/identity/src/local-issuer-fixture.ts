/**
 * For this package's tests: an identity service trusting one issuer, `local` (audience `agentgate`), whose JWKS is a
 * file in a directory of its own. Not exported from the package.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdentityService, type IdentityServiceOptions } from './identity-service.js';

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
