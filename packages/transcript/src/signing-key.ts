/**
 * The gateway's signing key (the `signingKey` setting): a private JWK file created on first start.
 *
 * node-jose 2.2 has no OKP (Ed25519) support, so the key is ES256 (P-256, RFC 7518 §3.4). The `kid` is the JWK
 * SHA-256 thumbprint (RFC 7638), so the same key always has the same id.
 *
 * The file holds either one private JWK, or (after `agentgate keys rotate`) a JWKS whose first key is the private
 * key in use and whose other keys are the public halves of the keys it replaced: those still verify checkpoints
 * and webhook signatures made before the rotation, and the JWKS endpoint serves them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import jose from 'node-jose';
import { AgentgateError, type Signer } from '@agentgate/core';

const signingAlgorithm = 'ES256';

export async function loadOrCreateSigningKey(path: string): Promise<Signer> {
  const text = await readKeyFile(path);
  return signerFromJwkText(text ?? (await createKeyFile(path)), path);
}

/** The signing key of an existing file; never creates one (a missing file is NOT_FOUND naming it). */
export async function loadSigningKey(path: string): Promise<Signer> {
  const text = await readKeyFile(path);
  if (text === undefined) throw missingKeyFile(path);
  return signerFromJwkText(text, path);
}

/**
 * The public keys of a signing key file (the key in use first, then the ones it replaced), for verifying without
 * being able to sign; undefined when the file does not exist.
 */
export async function readSigningKeyPublicJwks(
  path: string,
): Promise<{ keys: Record<string, unknown>[] } | undefined> {
  const text = await readKeyFile(path);
  if (text === undefined) return undefined;
  return (await signerFromJwkText(text, path)).publicJwks();
}

export interface RotatedKey {
  /** the new key's kid */
  readonly kid: string;
  /** the kid of the key it replaced, now kept as a public verification key */
  readonly previousKid: string;
  /** every kid still in the file, the new one first */
  readonly kids: readonly string[];
}

/**
 * Replace the private key in `path` with a new one, keeping the public halves of the old key (and of the keys it
 * had replaced) in the file. The file is replaced atomically (a new file renamed over it), mode 0600.
 */
export async function rotateSigningKey(path: string): Promise<RotatedKey> {
  const text = await readKeyFile(path);
  if (text === undefined) throw missingKeyFile(path);
  const current = await signerFromJwkText(text, path);
  const { privateJwk, kid } = await newPrivateJwk();
  const kept = current.publicJwks().keys.filter((k) => k['kid'] !== kid);
  const file = { keys: [privateJwk, ...kept] };
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: cannot write ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return { kid, previousKid: current.kid, kids: [kid, ...kept.map((k) => String(k['kid']))] };
}

function missingKeyFile(path: string): AgentgateError {
  return new AgentgateError('NOT_FOUND', `signingKey ${path} does not exist`);
}

/** The file's text, or undefined when it does not exist. */
async function readKeyFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AgentgateError('CONFIG_INVALID', `signingKey: cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

async function newPrivateJwk(): Promise<{ privateJwk: Record<string, unknown>; kid: string }> {
  const key = await jose.JWK.createKey('EC', 'P-256', { alg: signingAlgorithm, use: 'sig' });
  const kid = await thumbprint(key);
  return { privateJwk: { ...(key.toJSON(true) as Record<string, unknown>), kid }, kid };
}

async function createKeyFile(path: string): Promise<string> {
  const { privateJwk } = await newPrivateJwk();
  const text = JSON.stringify(privateJwk, null, 2) + '\n';
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // 'wx': never overwrite a key another process created meanwhile; 0600: the private half stays private.
    await writeFile(path, text, { mode: 0o600, flag: 'wx' });
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFile(path, 'utf8');
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: cannot create ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

async function signerFromJwkText(text: string, path: string): Promise<Signer> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new AgentgateError('CONFIG_INVALID', `signingKey: ${path} is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  // A bare private JWK, or a JWKS whose first key is the private key in use and the rest retired public keys.
  const entries = Array.isArray(parsed['keys']) ? (parsed['keys'] as unknown[]) : [parsed];
  const jwk = entries[0] as Record<string, unknown> | undefined;
  if (!jwk || typeof jwk !== 'object')
    throw new AgentgateError('CONFIG_INVALID', `signingKey: ${path} holds no key`);
  const key = await importEcKey(jwk, path);
  if (typeof (key.toJSON(true) as Record<string, unknown>)['d'] !== 'string') {
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: ${path}: expected an EC P-256 private JWK, found a public key first`,
    );
  }
  const kid = typeof jwk['kid'] === 'string' && jwk['kid'] ? jwk['kid'] : await thumbprint(key);
  const signingKey = kid === key.kid ? key : await jose.JWK.asKey({ ...(key.toJSON(true) as object), kid });
  const publicJwks = [publicJwkOf(signingKey)];
  for (const [index, entry] of entries.slice(1).entries()) {
    if (!entry || typeof entry !== 'object')
      throw new AgentgateError('CONFIG_INVALID', `signingKey: ${path}: keys[${index + 1}] is not a JWK`);
    const retired = await importEcKey(entry as Record<string, unknown>, path);
    // Only the public half of a retired key is ever used.
    const asPublic = await jose.JWK.asKey(retired.toJSON(false) as object);
    const retiredKid =
      typeof retired.kid === 'string' && retired.kid ? retired.kid : await thumbprint(asPublic);
    if (publicJwks.some((k) => k['kid'] === retiredKid)) continue;
    publicJwks.push(
      publicJwkOf(await jose.JWK.asKey({ ...(asPublic.toJSON(false) as object), kid: retiredKid })),
    );
  }
  const keystore = await jose.JWK.asKeyStore({ keys: publicJwks });
  return {
    kid,
    async signCompact(payload) {
      const content = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
      const jws = await jose.JWS.createSign(
        { format: 'compact', fields: { alg: signingAlgorithm, kid } },
        signingKey,
      )
        .update(content)
        .final();
      return jws as unknown as string;
    },
    verifyCompact: (jws) => verifyWithKeystore(jws, keystore),
    publicJwks: () => ({ keys: publicJwks.map((k) => ({ ...k })) }),
  };
}

async function importEcKey(jwk: Record<string, unknown>, path: string): Promise<jose.JWK.Key> {
  let key: jose.JWK.Key;
  try {
    key = await jose.JWK.asKey(jwk);
  } catch (err) {
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: ${path}: ${(err as Error).message} (expected EC P-256 JWKs)`,
      { cause: err },
    );
  }
  if (key.kty !== 'EC' || jwk['crv'] !== 'P-256') {
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: ${path}: expected an EC P-256 private JWK, found kty ${key.kty}${typeof jwk['crv'] === 'string' ? ` crv ${jwk['crv']}` : ''}`,
    );
  }
  return key;
}

function publicJwkOf(key: jose.JWK.Key): Record<string, unknown> {
  return { ...(key.toJSON(false) as Record<string, unknown>), alg: signingAlgorithm, use: 'sig' };
}

/** Verify a compact JWS against a public JWKS (offline verification, e.g. `agentgate verify`); returns the payload. */
export async function verifyWithJwks(
  jws: string,
  jwks: { keys: readonly Record<string, unknown>[] },
): Promise<Buffer> {
  const keystore = await jose.JWK.asKeyStore({ keys: [...jwks.keys] });
  return verifyWithKeystore(jws, keystore);
}

async function verifyWithKeystore(jws: string, keystore: jose.JWK.KeyStore): Promise<Buffer> {
  try {
    // Only our algorithm: no `none`, no HMAC with a public key as secret; never trust a key embedded in the header.
    const result = await jose.JWS.createVerify(keystore, {
      algorithms: [signingAlgorithm],
      allowEmbeddedKey: false,
    }).verify(jws);
    return Buffer.from(result.payload);
  } catch (err) {
    throw new AgentgateError('AUTH_FAILED', `bad signature: ${(err as Error).message}`, { cause: err });
  }
}

async function thumbprint(key: jose.JWK.Key): Promise<string> {
  const digest = await key.thumbprint('SHA-256');
  return Buffer.from(digest).toString('base64url');
}
