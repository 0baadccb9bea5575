import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jose from 'node-jose';
import { silentLogger } from '@agentgate/core';
import { JwksKeySource } from './jwks-key-source.js';

// The keys come from the URL the configuration names, which validation held to https (or loopback http): a redirect
// could lead anywhere, plain http included, so it is refused rather than followed.
let server: Server;
let base: string;
let served = 0;

beforeAll(async () => {
  const key = await jose.JWK.createKey('EC', 'P-256', { kid: 'k1', use: 'sig', alg: 'ES256' });
  const jwks = JSON.stringify({ keys: [key.toJSON()] });
  server = createServer((req, res) => {
    if (req.url === '/moved.json') {
      res.writeHead(302, { location: '/jwks.json' });
      res.end();
      return;
    }
    served++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(jwks);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const options = {
  now: Date.now,
  log: silentLogger,
  fetchTimeoutMs: 10_000,
  minRefetchIntervalMs: 0,
  maxAgeMs: 600_000,
};

describe('a JWKS over HTTP', () => {
  it('is read from the configured URL', async () => {
    const source = new JwksKeySource(`${base}/jwks.json`, options);
    expect(await source.keyFor('k1', 'ES256')).toMatchObject({ kid: 'k1', alg: 'ES256' });
  });

  it('is refused when that URL redirects, naming where to, without fetching the target', async () => {
    const before = served;
    const source = new JwksKeySource(`${base}/moved.json`, options);
    await expect(source.keyFor('k1', 'ES256')).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'jwks-unavailable' },
      message: expect.stringContaining('redirects to /jwks.json') as unknown,
    });
    expect(served).toBe(before);
  });
});
