import { authFailed } from './auth-failure.js';

/** A compact JWS split and decoded, nothing verified yet (RFC 7515 §7.1). */
export interface DecodedJwt {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  /** `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

const base64url = /^[A-Za-z0-9_-]*$/;

/** True when the text has the shape of a compact JWS: three base64url parts, the first two non-empty. */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split('.');
  return parts.length === 3 && parts.every((p) => base64url.test(p)) && parts[0] !== '' && parts[1] !== '';
}

export function decodeJwt(token: string): DecodedJwt {
  const [headerB64 = '', payloadB64 = '', signatureB64 = ''] = token.split('.');
  const header = decodeJsonObject(headerB64, 'header');
  const claims = decodeJsonObject(payloadB64, 'payload');
  return {
    header,
    claims,
    signingInput: `${headerB64}.${payloadB64}`,
    signature: Buffer.from(signatureB64, 'base64url'),
  };
}

function decodeJsonObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw authFailed('malformed', `JWT ${what} is not base64url JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw authFailed('malformed', `JWT ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
