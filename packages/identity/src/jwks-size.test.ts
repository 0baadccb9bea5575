import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '@agentgate/core';
import { JwksKeySource } from './jwks-key-source.js';

// A JWKS answer without Content-Length that goes on and on (a broken or hostile endpoint) must be given up at the
// 1 MiB limit, not held in memory until the fetch times out.
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const more = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('a JWKS over HTTP', () => {
  it('is refused once its endless chunked body passes 1 MiB, long before the fetch timeout', async () => {
    const source = new JwksKeySource(url, {
      now: Date.now,
      log: silentLogger,
      fetchTimeoutMs: 30_000,
      minRefetchIntervalMs: 30_000,
      maxAgeMs: 600_000,
    });
    const started = Date.now();
    await expect(source.keyFor('any', 'ES256')).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'jwks-unavailable' },
      message: expect.stringContaining('larger than 1 MiB'),
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 40_000);
});
