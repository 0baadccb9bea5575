import { verify as cryptoVerify } from 'node:crypto';
import jose from 'node-jose';
import { CredentialLease, hasControlCharacters, type Identity, type OidcIssuerConfig } from '@agentgate/core';
import { authFailed } from './auth-failure.js';
import {
  acceptedAlgorithms,
  type AcceptedAlgorithm,
  type JwksKeySource,
  type VerificationKey,
} from './jwks-key-source.js';
import type { DecodedJwt } from './jwt.js';

/** Verifies JWTs of one configured OIDC issuer: signature against its JWKS, then the registered claims (RFC 7519 §4.1). */
export class OidcIssuerVerifier {
  constructor(
    readonly config: OidcIssuerConfig,
    readonly keys: JwksKeySource,
    private readonly now: () => number,
  ) {}

  async verify(token: string, jwt: DecodedJwt): Promise<Identity> {
    const alg = checkAlgorithm(jwt.header);
    if (jwt.header['crit'] !== undefined) {
      // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must reject the JWS.
      throw authFailed('malformed', 'JWT header has critical extensions agentgate does not understand');
    }
    const kid = jwt.header['kid'];
    if (kid !== undefined && typeof kid !== 'string')
      throw authFailed('malformed', 'JWT kid is not a string');
    const key = await this.keys.keyFor(kid, alg);
    if (!(await signatureValid(token, jwt, key))) {
      throw authFailed('bad-signature', `JWT signature does not verify with key ${kid ?? '(no kid)'}`, {
        issuer: this.config.issuer,
        kid,
      });
    }
    return this.checkClaims(jwt.claims);
  }

  private checkClaims(claims: Record<string, unknown>): Identity {
    const { issuer, audience, clockSkewSeconds: skew } = this.config;
    const nowSeconds = Math.floor(this.now() / 1000);
    if (claims['iss'] !== issuer) throw authFailed('unknown-issuer', `JWT iss is not ${issuer}`);
    const exp = claims['exp'];
    if (exp === undefined)
      throw authFailed('missing-exp', 'JWT has no exp claim; tokens without expiry are refused');
    if (typeof exp !== 'number' || !Number.isFinite(exp))
      throw authFailed('bad-claims', 'JWT exp is not a number');
    // The lease, logs and the record carry it as a date: a time no date can name is no expiry.
    if (!isDateSeconds(exp)) throw authFailed('bad-claims', 'JWT exp is not a time a date can name');
    // RFC 7519 §4.1.4: the token must not be accepted on or after exp (plus a small allowance for clock skew).
    if (nowSeconds >= exp + skew)
      throw authFailed('expired', `JWT expired at ${new Date(exp * 1000).toISOString()}`, { exp });
    const nbf = claims['nbf'];
    if (nbf !== undefined) {
      if (typeof nbf !== 'number' || !isDateSeconds(nbf))
        throw authFailed('bad-claims', 'JWT nbf is not a time a date can name');
      if (nowSeconds + skew < nbf)
        throw authFailed('not-yet-valid', `JWT not valid before ${new Date(nbf * 1000).toISOString()}`, {
          nbf,
        });
    }
    const aud = claims['aud'];
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(audience))
      throw authFailed('wrong-audience', `JWT audience does not include ${audience}`, { aud });
    const sub = claims['sub'];
    if (typeof sub !== 'string' || sub === '') throw authFailed('bad-claims', 'JWT has no sub claim');
    // The name is written to logs, the record and the CLI's tables as is: a line break or terminal escape in it
    // would forge lines there.
    if (hasControlCharacters(sub)) throw authFailed('bad-claims', 'JWT sub contains control characters');
    // The token's `exp` is the session's lease: connections made with it end then (a token cannot be revoked).
    return {
      name: sub,
      groups: this.groups(claims),
      source: 'oidc',
      issuer,
      lease: new CredentialLease(exp * 1000),
    };
  }

  /** Groups from `groupsClaim`: a top-level claim, or a dotted path such as `realm_access.roles`. Absent → none. */
  private groups(claims: Record<string, unknown>): string[] {
    const name = this.config.groupsClaim;
    let value: unknown = claims[name];
    if (value === undefined && name.includes('.')) {
      value = name
        .split('.')
        .reduce<unknown>(
          (node, part) =>
            typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined,
          claims,
        );
    }
    if (value === undefined || value === null) return [];
    if (typeof value === 'string' && !hasControlCharacters(value)) return [value];
    if (Array.isArray(value) && value.every((g) => typeof g === 'string' && !hasControlCharacters(g)))
      return [...value];
    throw authFailed('bad-claims', `JWT claim ${name} is not an array of strings without control characters`);
  }
}

/** Only RS256, ES256 and EdDSA; `none` and HMAC are refused before any key is touched (RFC 8725 §3.1, §3.2). */
function checkAlgorithm(header: Record<string, unknown>): AcceptedAlgorithm {
  const alg = header['alg'];
  if (typeof alg !== 'string') throw authFailed('malformed', 'JWT header has no alg');
  if (alg.toLowerCase() === 'none') throw authFailed('alg-refused', 'unsigned JWT (alg none) refused');
  if (/^HS/i.test(alg))
    throw authFailed('alg-refused', `HMAC JWT (${alg}) refused: only public-key signatures are accepted`);
  if (!(acceptedAlgorithms as readonly string[]).includes(alg))
    throw authFailed('alg-refused', `JWT alg ${alg} not accepted (RS256, ES256, EdDSA)`);
  return alg as AcceptedAlgorithm;
}

async function signatureValid(token: string, jwt: DecodedJwt, key: VerificationKey): Promise<boolean> {
  if (key.alg === 'EdDSA') {
    // RFC 8037 §3.1: Ed25519 signs the JWS signing input directly (no pre-hash), hence algorithm null.
    return (
      key.nodeKey !== undefined &&
      jwt.signature.length === 64 &&
      cryptoVerify(null, Buffer.from(jwt.signingInput, 'ascii'), key.nodeKey, jwt.signature)
    );
  }
  if (key.joseKey === undefined) return false;
  // RFC 7518 §3.4: an ES256 signature is exactly R || S, 64 octets; node-jose reads the first 64 and ignores the
  // rest, so one token could be re-encoded into many that all verify.
  if (key.alg === 'ES256' && jwt.signature.length !== 64) return false;
  try {
    await jose.JWS.createVerify(key.joseKey, { algorithms: [key.alg] }).verify(token);
    return true;
  } catch {
    return false;
  }
}

/** JavaScript dates reach ±8.64e15 ms (±100,000,000 days from 1970). */
const MAX_DATE_SECONDS = 8.64e12;

function isDateSeconds(seconds: number): boolean {
  return Number.isFinite(seconds) && Math.abs(seconds) <= MAX_DATE_SECONDS;
}
