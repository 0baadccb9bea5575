/**
 * Public keys for checking what the gateway signed (checkpoints, prune records) without its private key: from a
 * JWKS the auditor trusts (`--jwks`), from the signing key file, or as recorded in the store itself. Each key
 * remembers where it came from, so a report can say what its signatures were checked against.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AgentgateError } from '@agentgate/core';

/** Where a verification key came from. */
export type KeySource = 'jwks' | 'signingKey' | 'store' | 'fleet';

export interface KeyInfo {
  readonly kid: string;
  readonly source: KeySource;
  /** signatures this key verified */
  verified: number;
}

/** A signature by a key that is not among the keys given: verify reports it as `unknown-key`, naming the kid. */
export class UnknownKeyError extends AgentgateError {
  readonly problemKind = 'unknown-key';
  constructor(
    readonly kid: string,
    message: string,
  ) {
    super('AUTH_FAILED', message);
  }
}

const maxJwksBytes = 1024 * 1024;

export class VerificationKeys {
  private readonly keys = new Map<string, { key: KeyObject; info: KeyInfo }>();

  /**
   * @param missingHint how the error for an unknown kid ends: where the keys were looked for
   *   (e.g. "which is not in --jwks keys.json")
   */
  constructor(private readonly missingHint: (kid: string) => string) {}

  /**
   * Add an EC P-256 public key (the only kind the gateway signs with); returns false for any other key. A key
   * without `kid` gets its RFC 7638 thumbprint, which is how the gateway names its keys. The first key added
   * under a kid wins.
   */
  add(jwk: unknown, source: KeySource): boolean {
    if (jwk === null || typeof jwk !== 'object') return false;
    const j = jwk as Record<string, unknown>;
    if (j['kty'] !== 'EC' || j['crv'] !== 'P-256' || typeof j['x'] !== 'string' || typeof j['y'] !== 'string')
      return false;
    if (j['use'] !== undefined && j['use'] !== 'sig') return false;
    if (j['alg'] !== undefined && j['alg'] !== 'ES256') return false;
    const kid = typeof j['kid'] === 'string' && j['kid'] !== '' ? j['kid'] : ecThumbprint(j['x'], j['y']);
    if (this.keys.has(kid)) return true;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: j['x'], y: j['y'] }, format: 'jwk' });
    } catch {
      return false;
    }
    this.keys.set(kid, { key, info: { kid, source, verified: 0 } });
    return true;
  }

  /** Add every usable key of a JWKS document; returns how many were added. */
  addJwks(doc: unknown, source: KeySource): number {
    const keys = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
    if (!Array.isArray(keys)) return this.add(doc, source) ? 1 : 0;
    return keys.filter((k) => this.add(k, source)).length;
  }

  has(kid: string): boolean {
    return this.keys.has(kid);
  }

  get size(): number {
    return this.keys.size;
  }

  /** Every key, with its source and how many signatures it verified so far. */
  list(): KeyInfo[] {
    return [...this.keys.values()].map((k) => ({ ...k.info }));
  }

  /**
   * Verify an ES256 compact JWS; returns the payload. Throws UnknownKeyError when its kid is not among the keys,
   * AgentgateError AUTH_FAILED when it is malformed, of another algorithm, or its signature does not verify.
   */
  verifyCompact(jws: string): Promise<Buffer> {
    return Promise.resolve().then(() => this.verifySync(jws));
  }

  private verifySync(jws: string): Buffer {
    const parts = jws.split('.');
    if (parts.length !== 3) throw badSignature('not a compact JWS');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw badSignature('the JWS header is not JSON');
    }
    if (header === null || typeof header !== 'object') throw badSignature('the JWS header is not an object');
    // Only our algorithm and nothing that changes how the JWS is read: no `none`, no HMAC, no critical extensions.
    if (header['alg'] !== 'ES256')
      throw badSignature(`algorithm ${JSON.stringify(header['alg'])} is not ES256`);
    if (header['crit'] !== undefined) throw badSignature('the JWS has critical header parameters');
    const kid = typeof header['kid'] === 'string' ? header['kid'] : '';
    const entry = this.keys.get(kid);
    if (!entry)
      throw new UnknownKeyError(
        kid,
        `signed by key ${kid === '' ? '(no kid)' : kid}, ${this.missingHint(kid)}`,
      );
    const ok = verify(
      'sha256',
      Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'),
      { key: entry.key, dsaEncoding: 'ieee-p1363' },
      Buffer.from(signaturePart, 'base64url'),
    );
    if (!ok) throw badSignature(`the signature does not verify with key ${kid}`);
    entry.info.verified++;
    return Buffer.from(payloadPart, 'base64url');
  }
}

function badSignature(why: string): AgentgateError {
  return new AgentgateError('AUTH_FAILED', `bad signature: ${why}`);
}

/** RFC 7638 thumbprint of an EC key: SHA-256 of `{"crv","kty","x","y"}` in that order, base64url. */
export function ecThumbprint(x: unknown, y: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify({ crv: 'P-256', kty: 'EC', x, y }))
    .digest('base64url');
}

/** Read a JWKS from an http(s) URL (10 s timeout, at most 1 MiB) or a file. */
export async function loadJwks(location: string): Promise<unknown> {
  let text: string;
  if (/^https?:\/\//i.test(location)) {
    let response: Response;
    try {
      response = await fetch(location, {
        signal: AbortSignal.timeout(10_000),
        headers: { accept: 'application/json, application/jwk-set+json' },
      });
    } catch (err) {
      const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : '';
      throw new AgentgateError('NOT_FOUND', `--jwks ${location}: ${cause || (err as Error).message}`);
    }
    if (!response.ok) throw new AgentgateError('NOT_FOUND', `--jwks ${location}: HTTP ${response.status}`);
    text = await response.text();
  } else {
    try {
      text = await readFile(location, 'utf8');
    } catch (err) {
      throw new AgentgateError('NOT_FOUND', `--jwks ${location}: ${(err as Error).message}`);
    }
  }
  if (text.length > maxJwksBytes)
    throw new AgentgateError('BAD_REQUEST', `--jwks ${location}: larger than 1 MiB`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AgentgateError('BAD_REQUEST', `--jwks ${location}: not JSON: ${(err as Error).message}`);
  }
}
