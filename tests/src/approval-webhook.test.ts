/**
 * The approval webhook through a running gateway: every step of a request's life (requested, then approved,
 * rejected, expired or cancelled) is POSTed, each body a compact JWS that a receiver verifies the way
 * docs/configuration.md says — fetch the gateway's JWKS, pick the key by `kid`, check the ES256 signature over the
 * exact bytes — with node:crypto alone, nothing of agentgate's. A held command's client is told it waits.
 */
import { createPublicKey, verify as verifySignature, type JsonWebKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { LineClient } from './harness/line-client.js';

const CONSOLE = 'https://agentgate.example.test';

interface Delivery {
  readonly event: string;
  readonly body: Record<string, unknown>;
}

let gw: TestGateway;
let hook: Server;
const deliveries: Delivery[] = [];
const refused: string[] = [];

/** A receiver: JWKS from the gateway's admin listener, the key by kid, ES256 over `header.payload`. */
async function verifyDelivery(signature: string, rawBody: string): Promise<Record<string, unknown>> {
  const [header64, payload64, signature64] = signature.split('.');
  if (header64 === undefined || payload64 === undefined || signature64 === undefined)
    throw new Error('not a compact JWS');
  const header = JSON.parse(Buffer.from(header64, 'base64url').toString('utf8')) as {
    alg: string;
    kid: string;
  };
  if (header.alg !== 'ES256') throw new Error(`unexpected alg ${header.alg}`);
  const jwks = (await (await fetch(`${gw.adminUrl}/.well-known/jwks.json`)).json()) as {
    keys: (JsonWebKey & { kid: string })[];
  };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (jwk === undefined) throw new Error(`no key ${header.kid} in the JWKS`);
  const ok = verifySignature(
    'sha256',
    Buffer.from(`${header64}.${payload64}`),
    { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature64, 'base64url'),
  );
  if (!ok) throw new Error('bad signature');
  const payload = Buffer.from(payload64, 'base64url').toString('utf8');
  if (payload !== rawBody) throw new Error('the signed payload is not the body');
  return JSON.parse(rawBody) as Record<string, unknown>;
}

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      verifyDelivery(String(req.headers['x-agentgate-signature']), raw).then(
        (body) => {
          deliveries.push({ event: String(req.headers['x-agentgate-event']), body });
          res.writeHead(204).end();
        },
        (err: Error) => {
          refused.push(err.message);
          res.writeHead(401).end();
        },
      );
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/agentgate`;
  gw = await startTestGateway(
    `
approvals:
  timeout: 5s
  approvers: ["group:dba"]
  webhook: { url: "${hookUrl}", timeout: 2s, retries: 1 }
console: { publicUrl: "${CONSOLE}", auditors: ["group:dba"] }
rules:
  - { name: review-deletes, match: { pattern: "^delete" }, action: approve }
  - { name: review-truncates, match: { pattern: "^truncate" }, action: approve }
`,
    { testListeners: [{ name: 'line', allow: ['group:agents'] }] },
  );
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await new Promise((resolve) => hook?.close(resolve));
});

async function login(): Promise<LineClient> {
  const client = await LineClient.connect(gw.address('line'));
  expect(await client.send(`AUTH ${await gw.token('devin', ['agents'])}`)).toMatch(/^OK /);
  return client;
}

/** The deliveries for approval `id`, once `count` of them arrived. */
async function deliveriesFor(id: string, count: number): Promise<Delivery[]> {
  for (let i = 0; i < 300; i++) {
    const mine = deliveries.filter((d) => d.body['id'] === id);
    if (mine.length >= count) return mine;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`expected ${count} deliveries for ${id}; got ${JSON.stringify(deliveries)}`);
}

/** The id of the next request the webhook hears about (`approval.requested`). */
async function nextRequested(seen: Set<string>): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const fresh = deliveries.find((d) => d.event === 'approval.requested' && !seen.has(String(d.body['id'])));
    if (fresh !== undefined) {
      const id = String(fresh.body['id']);
      seen.add(id);
      return id;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no approval.requested delivery');
}

async function decide(id: string, verb: 'approve' | 'deny', reason: string): Promise<void> {
  const res = await fetch(`${gw.adminUrl}/api/approvals/${id}/${verb}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await gw.token('alice', ['dba'])}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ reason }),
  });
  expect(res.status).toBe(200);
}

describe('approval webhook lifecycle', () => {
  it('delivers requested and each outcome, each signed and verifiable with the JWKS, with the links', async () => {
    const seen = new Set<string>();
    const client = await login();

    const approved = client.send('delete from users where id = 1');
    const approvedId = await nextRequested(seen);
    await decide(approvedId, 'approve', 'ticket 42');
    expect(await approved).toBe('ECHO delete from users where id = 1');

    const rejected = client.send('delete from users');
    const rejectedId = await nextRequested(seen);
    await decide(rejectedId, 'deny', 'too broad');
    expect(await rejected).toMatch(/^DENIED APPROVAL_REJECTED /);

    const expired = client.send('truncate users');
    const expiredId = await nextRequested(seen);
    expect(await expired).toMatch(/^DENIED APPROVAL_EXPIRED /);

    const leaving = await login();
    void leaving.send('delete from orders').catch(() => undefined);
    const cancelledId = await nextRequested(seen);
    await leaving.close();

    const expectations: [string, string, Record<string, unknown>][] = [
      [approvedId, 'approval.approved', { outcome: 'approved', by: 'alice', reason: 'ticket 42' }],
      [rejectedId, 'approval.rejected', { outcome: 'rejected', by: 'alice', reason: 'too broad' }],
      [expiredId, 'approval.expired', { outcome: 'expired', by: null, rule: 'review-truncates' }],
      [cancelledId, 'approval.cancelled', { outcome: 'cancelled', cause: 'client-left' }],
    ];
    for (const [id, type, fields] of expectations) {
      const [requested, settled] = await deliveriesFor(id, 2);
      expect(requested).toMatchObject({
        event: 'approval.requested',
        body: {
          type: 'approval.requested',
          id,
          listener: 'line',
          identity: { name: 'devin', groups: ['agents'] },
          approvers: ['group:dba'],
          apiUrl: `${gw.adminUrl}/api/approvals/${id}`,
          consoleUrl: `${CONSOLE}/approvals/${id}`,
        },
      });
      expect(requested!.body['outcome']).toBeUndefined();
      expect(settled).toMatchObject({
        event: type,
        body: { type, id, ...fields, consoleUrl: `${CONSOLE}/approvals/${id}` },
      });
      expect(typeof settled!.body['settledAt']).toBe('string');
      expect(typeof settled!.body['waitedMs']).toBe('number');
    }
    expect(refused).toEqual([]);
    await client.close();
  }, 60_000);

  it('a settled request stays readable at its API link', async () => {
    const id = String(deliveries.find((d) => d.event === 'approval.rejected')!.body['id']);
    const res = await fetch(`${gw.adminUrl}/api/approvals/${id}`, {
      headers: { authorization: `Bearer ${await gw.token('alice', ['dba'])}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: 'rejected', by: 'alice', reason: 'too broad' });
  });
});
