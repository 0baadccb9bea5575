/**
 * Which public keys `verify` (and `backup`'s check of its copy) trusts:
 * - `--jwks FILE|URL`: those keys only (what the auditor holds from the gateway's `/.well-known/jwks.json`);
 * - else with `--config`: the public keys of its `signingKey` file (the key in use and the ones it replaced), which
 *   must exist: verify never creates a key;
 * - else (`--store` alone): the keys recorded in the store itself, which the report says.
 */
import {
  readSigningKeyPublicJwks,
  loadJwks,
  VerificationKeys,
  type RecordedKey,
} from '@agentgate/transcript';
import { CliError } from './cli-util.js';
import type { LocatedStore } from './store-access.js';

export async function trustedKeys(
  jwks: string | undefined,
  located: LocatedStore,
  recorded: readonly RecordedKey[],
): Promise<VerificationKeys> {
  const recordedNote = (kid: string): string => {
    const found = recorded.find((k) => k.kid === kid);
    return found
      ? `; the store records it (since ${new Date(found.recordedAt).toISOString()}): --store ${located.path} checks against the store's own record`
      : '';
  };
  if (jwks !== undefined) {
    const keys = new VerificationKeys((kid) => `which is not in --jwks ${jwks}${recordedNote(kid)}`);
    if (keys.addJwks(await loadJwks(jwks), 'jwks') === 0)
      throw new CliError(`--jwks ${jwks} holds no EC P-256 signing key (the kind the gateway signs with)`);
    return keys;
  }
  if (located.config !== undefined) {
    const path = located.config.signingKey;
    const kids =
      recorded.length > 0
        ? ` (the store records key${recorded.length > 1 ? 's' : ''} ${recorded.map((k) => k.kid).join(', ')})`
        : '';
    const alternatives = `give --jwks FILE|URL with the gateway's public keys, or --store ${located.path} to check against the keys recorded in the store${kids}`;
    if (path === undefined) throw new CliError(`${located.config.file} names no signingKey: ${alternatives}`);
    let publicJwks: Awaited<ReturnType<typeof readSigningKeyPublicJwks>>;
    try {
      publicJwks = await readSigningKeyPublicJwks(path);
    } catch (err) {
      // Typically an auditor who may not read the gateway's private key file.
      throw new CliError(`${(err as Error).message}: ${alternatives}`);
    }
    if (publicJwks === undefined)
      throw new CliError(`signingKey ${path} does not exist (verify never creates a key): ${alternatives}`);
    const keys = new VerificationKeys((kid) => `which is not in signingKey ${path}${recordedNote(kid)}`);
    keys.addJwks(publicJwks, 'signingKey');
    return keys;
  }
  const keys = new VerificationKeys(
    () => "which is not recorded in the store: give --jwks FILE|URL with the gateway's public keys",
  );
  for (const key of recorded) keys.add(key.jwk, 'store');
  return keys;
}
