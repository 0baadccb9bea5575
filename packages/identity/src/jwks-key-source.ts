import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import jose from 'node-jose';
import { responseTextUpTo, type Logger } from '@agentgate/core';
import { authFailed } from './auth-failure.js';

/** The JWS algorithms agentgate accepts (RFC 7518 §3.3, §3.4; RFC 8037 §3.1). Everything else is refused. */
export type AcceptedAlgorithm = 'RS256' | 'ES256' | 'EdDSA';
export const acceptedAlgorithms: readonly AcceptedAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

/** A public key from a JWKS, usable for exactly one algorithm. */
export interface VerificationKey {
  readonly kid: string | undefined;
  readonly alg: AcceptedAlgorithm;
  /** node-jose key for RS256/ES256. */
  readonly joseKey?: jose.JWK.Key;
  /** node:crypto key for EdDSA: node-jose 2.2.0 has no OKP (RFC 8037) key type, so Ed25519 goes through node:crypto. */
  readonly nodeKey?: KeyObject;
}

export interface JwksKeySourceOptions {
  readonly now: () => number;
  readonly log: Logger;
  readonly fetchTimeoutMs: number;
  /** An unknown kid triggers a re-fetch at most this often (URL sources). */
  readonly minRefetchIntervalMs: number;
  /** Keys older than this are refreshed on next use, so keys removed at the IdP stop verifying. */
  readonly maxAgeMs: number;
}

/** A failed fetch is not retried sooner than this, so a down IdP is not hammered by every login attempt. */
const failureBackoffMs = 5_000;
/** Re-reading a local file is cheap; a short limit still stops a flood of random kids from spinning on the disk. */
const fileRefetchIntervalMs = 1_000;
const maxJwksBytes = 1024 * 1024;

type Lookup = { key: VerificationKey } | { mismatch: string } | undefined;

/** One issuer's JWKS (http(s) URL or file path): cached, refreshed on an unknown kid (rate-limited, coalesced). */
export class JwksKeySource {
  private keys: VerificationKey[] | undefined;
  private fetchedAt = 0;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastError: string | undefined;
  private inflight: Promise<void> | undefined;
  private readonly isUrl: boolean;

  constructor(
    readonly location: string,
    private readonly opts: JwksKeySourceOptions,
  ) {
    this.isUrl = /^https?:\/\//i.test(location);
  }

  /** Number of completed or failed loads (for tests and metrics). */
  loads = 0;

  async keyFor(kid: string | undefined, alg: AcceptedAlgorithm): Promise<VerificationKey> {
    const now = this.opts.now();
    const sinceAttempt = now - this.lastAttemptAt;
    if (this.keys === undefined) {
      if (sinceAttempt < failureBackoffMs && this.inflight === undefined) {
        throw authFailed(
          'jwks-unavailable',
          `JWKS ${this.location} unavailable: ${this.lastError ?? 'not loaded'}`,
        );
      }
      await this.refresh();
    } else if (now - this.fetchedAt > this.opts.maxAgeMs && sinceAttempt >= failureBackoffMs) {
      await this.refresh();
    }
    let found = this.lookup(kid, alg);
    const refetchInterval = this.isUrl ? this.opts.minRefetchIntervalMs : fileRefetchIntervalMs;
    if (
      found === undefined &&
      (this.inflight !== undefined || this.opts.now() - this.lastAttemptAt >= refetchInterval)
    ) {
      await this.refresh();
      found = this.lookup(kid, alg);
    }
    if (found === undefined)
      throw authFailed(
        'unknown-kid',
        `no key with kid ${JSON.stringify(kid ?? null)} in JWKS ${this.location}`,
        { kid },
      );
    if ('mismatch' in found) throw authFailed('alg-refused', found.mismatch, { kid });
    return found.key;
  }

  private lookup(kid: string | undefined, alg: AcceptedAlgorithm): Lookup {
    const keys = this.keys ?? [];
    if (kid === undefined) {
      // RFC 7515 §4.1.4 makes kid optional; without it only an unambiguous key set can be used.
      const fitting = keys.filter((k) => k.alg === alg);
      return fitting.length === 1 && fitting[0] !== undefined ? { key: fitting[0] } : undefined;
    }
    const withKid = keys.filter((k) => k.kid === kid);
    if (withKid.length === 0) return undefined;
    const fitting = withKid.find((k) => k.alg === alg);
    if (fitting !== undefined) return { key: fitting };
    return { mismatch: `token alg ${alg} does not fit key ${kid} (${withKid.map((k) => k.alg).join(', ')})` };
  }

  /** Coalesced: concurrent callers share one fetch. Keeps the previous keys when a refresh fails. */
  private refresh(): Promise<void> {
    if (this.inflight !== undefined) return this.inflight;
    this.lastAttemptAt = this.opts.now();
    this.inflight = this.load()
      .then(
        (keys) => {
          this.keys = keys;
          this.fetchedAt = this.opts.now();
          this.lastError = undefined;
        },
        (err: unknown) => {
          this.lastError = err instanceof Error ? err.message : String(err);
          this.opts.log.warn('JWKS load failed', { jwks: this.location, error: this.lastError });
          if (this.keys === undefined) {
            throw authFailed('jwks-unavailable', `JWKS ${this.location} unavailable: ${this.lastError}`);
          }
        },
      )
      .finally(() => {
        this.loads++;
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async load(): Promise<VerificationKey[]> {
    const text = this.isUrl ? await this.fetchText() : await readFile(this.filePath(), 'utf8');
    if (text.length > maxJwksBytes) throw new Error('JWKS larger than 1 MiB');
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
      throw new Error('JWKS has no "keys" array');
    }
    const keys: VerificationKey[] = [];
    for (const jwk of (doc as { keys: unknown[] }).keys) {
      try {
        const key = await importVerificationKey(jwk);
        if (key !== undefined) keys.push(key);
      } catch (err) {
        this.opts.log.warn('JWKS key skipped', {
          jwks: this.location,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    return keys;
  }

  private filePath(): string {
    return this.location.startsWith('file:') ? fileURLToPath(this.location) : this.location;
  }

  private async fetchText(): Promise<string> {
    const res = await fetch(this.location, {
      signal: AbortSignal.timeout(this.opts.fetchTimeoutMs),
      headers: { accept: 'application/json, application/jwk-set+json' },
      // A redirect could lead to plain http or to another host than the one configured (and checked) for the keys.
      redirect: 'manual',
    });
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      throw new Error(
        `HTTP ${res.status} from ${this.location} redirects to ${res.headers.get('location') ?? '(no Location)'}: ` +
          'keys are fetched only from the configured URL; configure the one it redirects to',
      );
    }
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${this.location}`);
    if (Number(res.headers.get('content-length') ?? 0) > maxJwksBytes)
      throw new Error('JWKS larger than 1 MiB');
    const { text, whole } = await responseTextUpTo(res, maxJwksBytes);
    if (!whole) throw new Error('JWKS larger than 1 MiB');
    return text;
  }
}

/**
 * Import one JWK for signature verification, or undefined when it is not a signing key of an accepted kind.
 * Only public members are taken: a JWKS that leaks private parts must not make agentgate hold them.
 */
export async function importVerificationKey(jwk: unknown): Promise<VerificationKey | undefined> {
  if (typeof jwk !== 'object' || jwk === null) return undefined;
  const j = jwk as Record<string, unknown>;
  if (j['use'] !== undefined && j['use'] !== 'sig') return undefined;
  const kid = typeof j['kid'] === 'string' ? j['kid'] : undefined;
  const declaredAlg = j['alg'];
  const fits = (alg: AcceptedAlgorithm): boolean => declaredAlg === undefined || declaredAlg === alg;
  if (j['kty'] === 'RSA' && fits('RS256')) {
    const joseKey = await jose.JWK.asKey({
      kty: 'RSA',
      n: j['n'],
      e: j['e'],
      ...(kid === undefined ? {} : { kid }),
    });
    // RFC 7518 §3.3: keys of 2048 bits or larger MUST be used.
    if (joseKey.length < 2048) throw new Error(`RSA key ${kid ?? ''} shorter than 2048 bits`);
    return { kid, alg: 'RS256', joseKey };
  }
  if (j['kty'] === 'EC' && j['crv'] === 'P-256' && fits('ES256')) {
    const joseKey = await jose.JWK.asKey({
      kty: 'EC',
      crv: 'P-256',
      x: j['x'],
      y: j['y'],
      ...(kid === undefined ? {} : { kid }),
    });
    return { kid, alg: 'ES256', joseKey };
  }
  if (j['kty'] === 'OKP' && j['crv'] === 'Ed25519' && fits('EdDSA') && typeof j['x'] === 'string') {
    const nodeKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: j['x'] }, format: 'jwk' });
    return { kid, alg: 'EdDSA', nodeKey };
  }
  return undefined;
}
