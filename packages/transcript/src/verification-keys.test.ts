import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Signer } from '@agentgate/core';
import {
  loadOrCreateSigningKey,
  loadSigningKey,
  readSigningKeyPublicJwks,
  rotateSigningKey,
} from './signing-key.js';
import { UnknownKeyError, VerificationKeys } from './verification-keys.js';

let dir: string;
let signer: Signer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-keys-'));
  signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('verification keys', () => {
  it('verifies the gateway signer with its public JWK alone, and names an unknown kid', async () => {
    const keys = new VerificationKeys((kid) => `which is not in test.jwks (${kid.length} chars)`);
    expect(keys.addJwks(signer.publicJwks(), 'jwks')).toBe(1);
    const jws = await signer.signCompact('{"a":1}');
    expect((await keys.verifyCompact(jws)).toString()).toBe('{"a":1}');
    expect(keys.list()).toEqual([{ kid: signer.kid, source: 'jwks', verified: 1 }]);

    const other = await loadOrCreateSigningKey(join(dir, 'other.json'));
    const foreign = await other.signCompact('{"a":1}');
    const error = await keys.verifyCompact(foreign).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UnknownKeyError);
    expect((error as UnknownKeyError).kid).toBe(other.kid);
    expect((error as Error).message).toBe(`signed by key ${other.kid}, which is not in test.jwks (43 chars)`);
  });

  it('refuses a changed payload, alg none and keys without the right shape', async () => {
    const keys = new VerificationKeys(() => 'unknown');
    keys.addJwks(signer.publicJwks(), 'store');
    const [header, , signature] = (await signer.signCompact('payload')).split('.');
    await expect(
      keys.verifyCompact(`${header}.${Buffer.from('payloaD').toString('base64url')}.${signature}`),
    ).rejects.toThrow(/does not verify/);
    const none = Buffer.from(JSON.stringify({ alg: 'none', kid: signer.kid })).toString('base64url');
    await expect(keys.verifyCompact(`${none}.${Buffer.from('x').toString('base64url')}.`)).rejects.toThrow(
      /algorithm "none" is not ES256/,
    );
    expect(keys.add({ kty: 'RSA', n: 'x', e: 'AQAB' }, 'jwks')).toBe(false);
    expect(keys.add({ ...signer.publicJwks().keys[0], use: 'enc' }, 'jwks')).toBe(false);
  });

  it('names a key without kid by its RFC 7638 thumbprint, as the gateway does', async () => {
    const { kid: _kid, ...withoutKid } = signer.publicJwks().keys[0]!;
    const keys = new VerificationKeys(() => 'unknown');
    keys.add(withoutKid, 'jwks');
    expect(keys.has(signer.kid)).toBe(true);
  });
});

describe('signing key rotation', () => {
  it('replaces the private key, keeps the old public key verifying, and never creates a missing file', async () => {
    const path = join(dir, 'rotate.json');
    const before = await loadOrCreateSigningKey(path);
    const old = await before.signCompact('old');
    const rotated = await rotateSigningKey(path);
    expect(rotated.previousKid).toBe(before.kid);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const after = await loadSigningKey(path);
    expect(after.kid).toBe(rotated.kid);
    expect(after.publicJwks().keys.map((k) => k['kid'])).toEqual([rotated.kid, before.kid]);
    expect((await after.verifyCompact(old)).toString()).toBe('old');
    const file = JSON.parse(await readFile(path, 'utf8')) as { keys: Record<string, unknown>[] };
    expect(file.keys.filter((k) => 'd' in k)).toHaveLength(1);
    expect((await readSigningKeyPublicJwks(path))?.keys).toHaveLength(2);

    const again = await rotateSigningKey(path);
    expect((await loadSigningKey(path)).publicJwks().keys.map((k) => k['kid'])).toEqual([
      again.kid,
      rotated.kid,
      before.kid,
    ]);

    const missing = join(dir, 'missing.json');
    await expect(loadSigningKey(missing)).rejects.toThrow(`signingKey ${missing} does not exist`);
    await expect(rotateSigningKey(missing)).rejects.toThrow(/does not exist/);
    expect(await readSigningKeyPublicJwks(missing)).toBeUndefined();
    await expect(stat(missing)).rejects.toThrow(/ENOENT/);
  });
});
