/**
 * OIDC JWT verification against real keys and a JWKS served over HTTP on 127.0.0.1 (node:http), plus a JWKS file.
 * Time is driven by an injected clock so expiry and the re-fetch rate limit are tested without sleeping.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdentityConfig } from '@agentgate/core';
import {
  createIdentityService,
  generateSigningKeyPair,
  mintToken,
  signJwt,
  type IdentityServiceImpl,
  type SigningKeyPair,
} from '@agentgate/identity';

const issuer = 'https://idp.test.agentgate/';
const fileIssuer = 'https://file-idp.test.agentgate/';
const audience = 'agentgate';

interface JwksServer {
  url: string;
  keys: Record<string, unknown>[];
  requests: number;
  failWith: number | undefined;
  close(): Promise<void>;
}

async function startJwksServer(): Promise<JwksServer> {
  const state: JwksServer = { url: '', keys: [], requests: 0, failWith: undefined, close: async () => {} };
  const server: Server = createServer((req, res) => {
    state.requests++;
    if (state.failWith !== undefined) {
      res.writeHead(state.failWith).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  state.close = () => new Promise((resolve) => server.close(() => resolve()));
  return state;
}

let jwks: JwksServer;
let dir: string;
let rsa: SigningKeyPair;
let ec: SigningKeyPair;
let ed: SigningKeyPair;
let fileKey: SigningKeyPair;
let clock: number;

function identityConfig(): IdentityConfig {
  return {
    oidc: [
      { issuer, audience, jwks: jwks.url, groupsClaim: 'groups', clockSkewSeconds: 30 },
      {
        issuer: fileIssuer,
        audience,
        jwks: join(dir, 'jwks.json'),
        groupsClaim: 'realm_access.roles',
        clockSkewSeconds: 30,
      },
    ],
    tokens: [],
    sshKeys: [],
  };
}

async function service(): Promise<IdentityServiceImpl> {
  return createIdentityService(identityConfig(), { now: () => clock, fetchTimeoutMs: 2000 });
}

function mint(
  key: SigningKeyPair,
  overrides: Partial<Parameters<typeof mintToken>[0]> = {},
): Promise<string> {
  return mintToken({
    privateJwk: key.privateJwk,
    sub: 'devin',
    groups: ['agents'],
    ttlSeconds: 600,
    issuer,
    audience,
    now: clock,
    ...overrides,
  });
}

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code?: string; detail?: { reason?: string } };
    expect(e.code).toBe('AUTH_FAILED');
    return e.detail?.reason ?? 'no reason';
  }
  return 'accepted';
}

beforeAll(async () => {
  clock = Date.now();
  [rsa, ec, ed, fileKey] = await Promise.all([
    generateSigningKeyPair('RS256'),
    generateSigningKeyPair('ES256'),
    generateSigningKeyPair('EdDSA'),
    generateSigningKeyPair('ES256'),
  ]);
  jwks = await startJwksServer();
  jwks.keys = [...rsa.jwks.keys, ...ec.jwks.keys, ...ed.jwks.keys];
  dir = await mkdtemp(join(tmpdir(), 'agentgate-identity-'));
  await writeFile(join(dir, 'jwks.json'), JSON.stringify(fileKey.jwks));
});

afterAll(async () => {
  await jwks.close();
  await rm(dir, { recursive: true, force: true });
});

describe('OIDC verification with a JWKS over HTTP', () => {
  it('accepts valid RS256, ES256 and EdDSA tokens and maps sub and groups', async () => {
    const svc = await service();
    for (const key of [rsa, ec, ed]) {
      const token = await mint(key, { groups: ['agents', 'dba'] });
      const identity = await svc.verifyToken(token);
      const { lease, ...rest } = identity;
      expect(rest).toEqual({ name: 'devin', groups: ['agents', 'dba'], source: 'oidc', issuer });
      // The token's exp is its lease: sessions made with it end then.
      expect(lease?.expiresAtMs).toBe((Math.floor(clock / 1000) + 600) * 1000);
      expect(svc.isAllowed(identity, ['group:dba'])).toBe(true);
    }
    expect(jwks.requests).toBeGreaterThanOrEqual(1);
  });

  it('accepts an audience array that contains the audience, refuses one that does not', async () => {
    const svc = await service();
    await expect(
      svc.verifyToken(await mint(ec, { extraClaims: { aud: ['other', audience] } })),
    ).resolves.toMatchObject({ name: 'devin' });
    expect(await reasonOf(svc.verifyToken(await mint(ec, { audience: 'someone-else' })))).toBe(
      'wrong-audience',
    );
    expect(await reasonOf(svc.verifyToken(await mint(ec, { extraClaims: { aud: ['a', 'b'] } })))).toBe(
      'wrong-audience',
    );
  });

  it('refuses expired tokens, allowing the configured clock skew', async () => {
    const svc = await service();
    const expiredLongAgo = await mint(rsa, { now: clock - 3_600_000, ttlSeconds: 60 });
    expect(await reasonOf(svc.verifyToken(expiredLongAgo))).toBe('expired');
    const expiredWithinSkew = await mint(rsa, { now: clock - 70_000, ttlSeconds: 60 }); // expired 10 s ago, skew 30 s
    await expect(svc.verifyToken(expiredWithinSkew)).resolves.toMatchObject({ name: 'devin' });
  });

  it('refuses tokens whose nbf lies in the future beyond the skew', async () => {
    const svc = await service();
    const later = Math.floor(clock / 1000) + 300;
    expect(await reasonOf(svc.verifyToken(await mint(ed, { extraClaims: { nbf: later } })))).toBe(
      'not-yet-valid',
    );
    await expect(
      svc.verifyToken(await mint(ed, { extraClaims: { nbf: Math.floor(clock / 1000) + 10 } })),
    ).resolves.toMatchObject({ name: 'devin' });
  });

  it('refuses tokens without exp', async () => {
    const svc = await service();
    expect(await reasonOf(svc.verifyToken(await mint(ec, { extraClaims: { exp: undefined } })))).toBe(
      'missing-exp',
    );
  });

  it('refuses unknown issuers, and a key of one issuer used under another issuer name', async () => {
    const svc = await service();
    expect(await reasonOf(svc.verifyToken(await mint(ec, { issuer: 'https://evil.example/' })))).toBe(
      'unknown-issuer',
    );
    // Signed by the HTTP issuer's key but claiming the file issuer: that issuer's JWKS has no such kid.
    expect(await reasonOf(svc.verifyToken(await mint(ec, { issuer: fileIssuer })))).toBe('unknown-kid');
  });

  it('refuses bad signatures: altered claims, or a different key under a known kid', async () => {
    const svc = await service();
    const token = await mint(rsa);
    const [h, , s] = token.split('.');
    const forgedClaims = Buffer.from(
      JSON.stringify({
        iss: issuer,
        aud: audience,
        sub: 'root',
        groups: ['admin'],
        exp: Math.floor(clock / 1000) + 600,
      }),
    ).toString('base64url');
    expect(await reasonOf(svc.verifyToken(`${h}.${forgedClaims}.${s}`))).toBe('bad-signature');

    for (const [real, alg] of [
      [ec, 'ES256'],
      [ed, 'EdDSA'],
    ] as const) {
      const impostor = await generateSigningKeyPair(alg);
      const forged = await mint({
        ...impostor,
        privateJwk: { ...impostor.privateJwk, kid: real.privateJwk['kid'] },
      });
      expect(await reasonOf(svc.verifyToken(forged))).toBe('bad-signature');
    }
  });

  it('refuses alg none and HS256 signed with the public key as the HMAC secret', async () => {
    const svc = await service();
    const claims = {
      iss: issuer,
      aud: audience,
      sub: 'devin',
      groups: ['agents'],
      exp: Math.floor(clock / 1000) + 600,
    };
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    expect(await reasonOf(svc.verifyToken(unsigned))).toBe('alg-refused');
    const unsignedWithKid = `${b64({ alg: 'none', kid: rsa.privateJwk['kid'] })}.${b64(claims)}.`;
    expect(await reasonOf(svc.verifyToken(unsignedWithKid))).toBe('alg-refused');

    // The classic key-confusion attack (RFC 8725 §2.1): HMAC keyed with the RSA public key, as PEM and as JWK text.
    const publicPem = createPublicKey({ key: rsa.jwks.keys[0] as JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    for (const secret of [publicPem, JSON.stringify(rsa.jwks.keys[0])]) {
      const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: rsa.privateJwk['kid'] })}.${b64(claims)}`;
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      expect(await reasonOf(svc.verifyToken(token))).toBe('alg-refused');
    }
  });

  it('refuses an accepted alg that does not fit the key type', async () => {
    const svc = await service();
    // Header says RS256, kid names the EC key: refused before any signature check.
    const token = await signJwt(
      { alg: 'RS256', kid: ec.privateJwk['kid'] },
      { iss: issuer, aud: audience, sub: 'devin', exp: Math.floor(clock / 1000) + 600 },
      rsa.privateJwk,
    );
    expect(await reasonOf(svc.verifyToken(token))).toBe('alg-refused');
  });

  it('gives no groups when the claim is absent, so group checks fail', async () => {
    const svc = await service();
    const identity = await svc.verifyToken(await mint(ec, { extraClaims: { groups: undefined } }));
    expect(identity.groups).toEqual([]);
    expect(svc.isAllowed(identity, ['group:agents'])).toBe(false);
    expect(svc.isAllowed(identity, ['identity:devin'])).toBe(true);
    expect(await reasonOf(svc.verifyToken(await mint(ec, { extraClaims: { groups: [1, 2] } })))).toBe(
      'bad-claims',
    );
  });

  it('caches a verified token, but never past its exp', async () => {
    const svc = await service();
    const token = await mint(ec, { ttlSeconds: 40 });
    await svc.verifyToken(token);
    const before = jwks.requests;
    jwks.failWith = 500; // a cache hit must not touch the JWKS at all
    try {
      await expect(svc.verifyToken(token)).resolves.toMatchObject({ name: 'devin' });
      const saved = clock;
      clock += 71_000; // past exp + 30 s skew
      try {
        expect(await reasonOf(svc.verifyToken(token))).toBe('expired');
      } finally {
        clock = saved;
      }
    } finally {
      jwks.failWith = undefined;
    }
    expect(jwks.requests).toBe(before);
  });

  it('picks up rotated keys after a re-fetch, and rate-limits re-fetches on unknown kids', async () => {
    const svc = await service();
    await svc.verifyToken(await mint(rsa));
    const afterFirstLoad = jwks.requests;

    // An unknown kid right after the load does not re-fetch (rate limit), and is refused.
    const rotated = await generateSigningKeyPair('ES256');
    const rotatedToken = await mint(rotated);
    jwks.keys = [...jwks.keys, ...rotated.jwks.keys];
    expect(await reasonOf(svc.verifyToken(rotatedToken))).toBe('unknown-kid');
    expect(jwks.requests).toBe(afterFirstLoad);

    // 30 s later an unknown kid re-fetches once; concurrent verifications share that one fetch.
    clock += 30_000;
    const results = await Promise.all(Array.from({ length: 5 }, () => svc.verifyToken(rotatedToken)));
    expect(results.every((r) => r.name === 'devin')).toBe(true);
    expect(jwks.requests).toBe(afterFirstLoad + 1);

    // Random kids in a burst cost at most one fetch per interval.
    const bogus = await generateSigningKeyPair('ES256');
    clock += 30_000;
    for (let i = 0; i < 5; i++) {
      const t = await mint({ ...bogus, privateJwk: { ...bogus.privateJwk, kid: `bogus-${i}` } });
      expect(await reasonOf(svc.verifyToken(t))).toBe('unknown-kid');
    }
    expect(jwks.requests).toBe(afterFirstLoad + 2);
    clock -= 60_000;
  });

  it('reports an unreachable JWKS and keeps serving cached keys when a refresh fails', async () => {
    const svc = await service();
    jwks.failWith = 503;
    try {
      expect(await reasonOf(svc.verifyToken(await mint(ec)))).toBe('jwks-unavailable');
    } finally {
      jwks.failWith = undefined;
    }
    clock += 5_000; // failure backoff over
    const fresh = await service();
    await fresh.verifyToken(await mint(ec));
    jwks.failWith = 503;
    try {
      clock += 11 * 60_000; // cache older than the 10 min max age: refresh fails, stale keys still verify
      await expect(fresh.verifyToken(await mint(ed))).resolves.toMatchObject({ name: 'devin' });
    } finally {
      jwks.failWith = undefined;
      clock -= 11 * 60_000 + 5_000;
    }
  });
});

describe('OIDC verification with a JWKS file', () => {
  it('verifies against the file, reads groups from a nested claim, and re-reads the file on an unknown kid', async () => {
    const svc = await service();
    const token = await mint(fileKey, {
      issuer: fileIssuer,
      groupsClaim: 'ignored',
      extraClaims: { realm_access: { roles: ['ops'] } },
    });
    await expect(svc.verifyToken(token)).resolves.toMatchObject({
      name: 'devin',
      groups: ['ops'],
      issuer: fileIssuer,
    });

    const next = await generateSigningKeyPair('EdDSA');
    await writeFile(
      join(dir, 'jwks.json'),
      JSON.stringify({ keys: [...fileKey.jwks.keys, ...next.jwks.keys] }),
    );
    clock += 1_000;
    try {
      await expect(svc.verifyToken(await mint(next, { issuer: fileIssuer }))).resolves.toMatchObject({
        name: 'devin',
        groups: [],
      });
    } finally {
      clock -= 1_000;
    }
  });
});
