import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomUUID,
  sign as cryptoSign,
} from 'node:crypto';
import jose from 'node-jose';
import { AgentgateError } from '@agentgate/core';

/**
 * A local test identity provider (`agentgate keys generate`, `agentgate token mint`): a private JWK, its public
 * JWKS to point `identity.oidc[].jwks` at, and tokens signed with it.
 */
export type SigningAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

export interface SigningKeyPair {
  /** The private JWK, with `kid` (RFC 7638 thumbprint), `alg` and `use: sig`. Keep it secret. */
  privateJwk: Record<string, unknown>;
  /** The public JWKS: `{ keys: [publicJwk] }`. */
  jwks: { keys: Record<string, unknown>[] };
}

export async function generateSigningKeyPair(alg: SigningAlgorithm = 'ES256'): Promise<SigningKeyPair> {
  if (alg === 'EdDSA') {
    // node-jose 2.2.0 has no OKP key type (RFC 8037), so Ed25519 keys come from node:crypto.
    const { privateKey } = generateKeyPairSync('ed25519');
    const jwk = privateKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string; d: string };
    const kid = okpThumbprint(jwk.crv, jwk.x);
    const publicJwk = { kty: 'OKP', crv: jwk.crv, x: jwk.x, kid, alg, use: 'sig' };
    return { privateJwk: { ...publicJwk, d: jwk.d }, jwks: { keys: [publicJwk] } };
  }
  const key =
    alg === 'RS256'
      ? await jose.JWK.createKey('RSA', 2048, { alg, use: 'sig' })
      : await jose.JWK.createKey('EC', 'P-256', { alg, use: 'sig' });
  // node-jose resolves thumbprint() to a Buffer although its typings say string.
  const kid = Buffer.from((await key.thumbprint('SHA-256')) as unknown as Buffer).toString('base64url');
  const withKid = await jose.JWK.asKey({ ...key.toJSON(true), kid });
  return {
    privateJwk: withKid.toJSON(true) as Record<string, unknown>,
    jwks: { keys: [withKid.toJSON(false) as Record<string, unknown>] },
  };
}

/** RFC 7638 §3.2 / RFC 8037 §2: the thumbprint of an OKP key hashes the JSON of crv, kty, x in that order. */
function okpThumbprint(crv: string, x: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ crv, kty: 'OKP', x }))
    .digest('base64url');
}

export interface MintTokenOptions {
  privateJwk: object;
  sub: string;
  groups: string[];
  ttlSeconds: number;
  issuer: string;
  audience: string;
  /** Claim that carries the groups (default `groups`). */
  groupsClaim?: string;
  /** Merged last, so they can override standard claims; a value of `undefined` removes a claim (e.g. `exp`). */
  extraClaims?: object;
  /** Milliseconds since the epoch (default now). */
  now?: number;
}

export async function mintToken(opts: MintTokenOptions): Promise<string> {
  const jwk = opts.privateJwk as Record<string, unknown>;
  if (typeof jwk['d'] !== 'string')
    throw new AgentgateError('BAD_REQUEST', 'mintToken needs a private JWK (it has no "d")');
  const alg = signingAlgorithmOf(jwk);
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const claims = {
    iss: opts.issuer,
    aud: opts.audience,
    sub: opts.sub,
    [opts.groupsClaim ?? 'groups']: opts.groups,
    iat,
    nbf: iat,
    exp: iat + opts.ttlSeconds,
    jti: randomUUID(),
    ...opts.extraClaims,
  };
  const header = { alg, typ: 'JWT', ...(typeof jwk['kid'] === 'string' ? { kid: jwk['kid'] } : {}) };
  return signJwt(header, claims, jwk);
}

/**
 * Sign arbitrary header and claims with a private JWK (compact JWS). `header.alg` must fit the key.
 * Exported for tests that need tokens a well-behaved IdP would never issue.
 */
export async function signJwt(
  header: Record<string, unknown>,
  claims: object,
  privateJwk: object,
): Promise<string> {
  const jwk = privateJwk as Record<string, unknown>;
  const alg = header['alg'];
  if (alg === 'EdDSA') {
    const signingInput = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
    const key = createPrivateKey({ key: jwk as never, format: 'jwk' });
    return `${signingInput}.${cryptoSign(null, Buffer.from(signingInput, 'ascii'), key).toString('base64url')}`;
  }
  const key = await jose.JWK.asKey(jwk);
  const signed = await jose.JWS.createSign({ format: 'compact', fields: header as never }, {
    key,
    reference: false,
  } as never)
    .update(JSON.stringify(claims), 'utf8')
    .final();
  return signed as unknown as string;
}

function signingAlgorithmOf(jwk: Record<string, unknown>): SigningAlgorithm {
  if (jwk['kty'] === 'OKP' && jwk['crv'] === 'Ed25519') return 'EdDSA';
  if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256') return 'ES256';
  if (jwk['kty'] === 'RSA') return 'RS256';
  throw new AgentgateError(
    'BAD_REQUEST',
    `unsupported signing key (kty ${String(jwk['kty'])}, crv ${String(jwk['crv'])})`,
  );
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
