import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { isAgentgateError } from '@agentgate/core';
import { canonicalJson } from './canonical-json.js';
import { loadOrCreateSigningKey, verifyWithJwks } from './signing-key.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-key-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return isAgentgateError(err) ? err.code : String(err);
  }
}

describe('signing key', () => {
  it('creates a private ES256 JWK with mode 0600 and a thumbprint kid, and reloads the same key', async () => {
    const path = join(dir, 'nested', 'signing-key.json');
    const signer = await loadOrCreateSigningKey(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const jwk = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', kid: signer.kid });
    expect(typeof jwk['d']).toBe('string');
    expect(signer.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const jwks = signer.publicJwks();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).not.toHaveProperty('d');

    const again = await loadOrCreateSigningKey(path);
    expect(again.kid).toBe(signer.kid);
    const jws = await signer.signCompact('{"a":1}');
    expect(JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString())).toEqual({
      alg: 'ES256',
      kid: signer.kid,
    });
    expect((await again.verifyCompact(jws)).toString()).toBe('{"a":1}');
    expect((await verifyWithJwks(jws, jwks)).toString()).toBe('{"a":1}');
  });

  it('rejects tampered payloads, other keys, alg none and HMAC with the public key', async () => {
    const signer = await loadOrCreateSigningKey(join(dir, 'a.json'));
    const other = await loadOrCreateSigningKey(join(dir, 'b.json'));
    const jws = await signer.signCompact('payload');
    const [header, , signature] = jws.split('.');
    const tampered = `${header}.${Buffer.from('payloaD').toString('base64url')}.${signature}`;
    expect(await codeOf(signer.verifyCompact(tampered))).toBe('AUTH_FAILED');
    expect(await codeOf(verifyWithJwks(await other.signCompact('payload'), signer.publicJwks()))).toBe(
      'AUTH_FAILED',
    );
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: signer.kid })).toString('base64url')}.${Buffer.from('payload').toString('base64url')}.`;
    expect(await codeOf(signer.verifyCompact(none))).toBe('AUTH_FAILED');
    const hsHeader = Buffer.from(JSON.stringify({ alg: 'HS256', kid: signer.kid })).toString('base64url');
    const body = Buffer.from('payload').toString('base64url');
    const mac = createHmac('sha256', JSON.stringify(signer.publicJwks().keys[0]))
      .update(`${hsHeader}.${body}`)
      .digest('base64url');
    expect(await codeOf(signer.verifyCompact(`${hsHeader}.${body}.${mac}`))).toBe('AUTH_FAILED');
  });

  it('refuses a key file that is not a private EC key', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, 'not json');
    expect(await codeOf(loadOrCreateSigningKey(path))).toBe('CONFIG_INVALID');
    const signer = await loadOrCreateSigningKey(join(dir, 'c.json'));
    await writeFile(path, JSON.stringify(signer.publicJwks().keys[0]));
    expect(await codeOf(loadOrCreateSigningKey(path))).toBe('CONFIG_INVALID');
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every depth, drops undefined, and is stable through JSON.parse', () => {
    const value = {
      b: 1,
      a: { d: [3, { z: true, y: null }], c: 'é\u2028"' },
      u: undefined,
      big: 10n,
      nan: NaN,
      buf: Buffer.from('x'),
    };
    const text = canonicalJson(value);
    expect(text).toBe(
      '{"a":{"c":"é\u2028\\"","d":[3,{"y":null,"z":true}]},"b":1,"big":"10","buf":"eA==","nan":null}',
    );
    expect(canonicalJson(JSON.parse(text))).toBe(text);
  });
});
