/**
 * The gateway's signing key (the `signingKey` setting): a private JWK file created on first start.
 *
 * node-jose 2.2 has no OKP (Ed25519) support, so the key is ES256 (P-256, RFC 7518 §3.4). The `kid` is the JWK
 * SHA-256 thumbprint (RFC 7638), so the same key always has the same id.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import jose from 'node-jose';
import { AgentgateError, type Signer } from '@agentgate/core';

const signingAlgorithm = 'ES256';

export async function loadOrCreateSigningKey(path: string): Promise<Signer> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AgentgateError(
        'CONFIG_INVALID',
        `signingKey: cannot read ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    text = await createKeyFile(path);
  }
  return signerFromJwkText(text, path);
}

async function createKeyFile(path: string): Promise<string> {
  const key = await jose.JWK.createKey('EC', 'P-256', { alg: signingAlgorithm, use: 'sig' });
  const kid = await thumbprint(key);
  const privateJwk = { ...(key.toJSON(true) as Record<string, unknown>), kid };
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
  // Accept a bare private JWK or a JWKS whose first key is private.
  const jwk = Array.isArray(parsed['keys'])
    ? (parsed['keys'][0] as Record<string, unknown> | undefined)
    : parsed;
  if (!jwk || typeof jwk !== 'object')
    throw new AgentgateError('CONFIG_INVALID', `signingKey: ${path} holds no key`);
  let key: jose.JWK.Key;
  try {
    key = await jose.JWK.asKey(jwk);
  } catch (err) {
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: ${path}: ${(err as Error).message} (expected an EC P-256 private JWK)`,
      {
        cause: err,
      },
    );
  }
  if (key.kty !== 'EC' || typeof (key.toJSON(true) as Record<string, unknown>)['d'] !== 'string') {
    throw new AgentgateError(
      'CONFIG_INVALID',
      `signingKey: ${path}: expected an EC P-256 private JWK, found kty ${key.kty}`,
    );
  }
  const kid = typeof jwk['kid'] === 'string' && jwk['kid'] ? jwk['kid'] : await thumbprint(key);
  const signingKey = kid === key.kid ? key : await jose.JWK.asKey({ ...(key.toJSON(true) as object), kid });
  const publicJwk = {
    ...(signingKey.toJSON() as Record<string, unknown>),
    alg: signingAlgorithm,
    use: 'sig',
  };
  const keystore = await jose.JWK.asKeyStore({ keys: [publicJwk] });
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
    publicJwks: () => ({ keys: [{ ...publicJwk }] }),
  };
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
