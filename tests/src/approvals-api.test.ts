/**
 * The approvals broker wired to the real pieces: the identity service (static service tokens), the gateway's
 * signing key from `@agentgate/transcript`, a local webhook receiver verifying the JWS against the published JWKS,
 * and the `agentgate approvals` CLI talking to the admin API over HTTP.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createApprovalBroker, type ApprovalBrokerImpl } from '@agentgate/approvals';
import { main } from '@agentgate/cli';
import { silentLogger, type ApprovalRequestInput, type Signer, type TranscriptEvent } from '@agentgate/core';
import { createIdentityService, hashStaticToken, type IdentityServiceImpl } from '@agentgate/identity';
import { loadOrCreateSigningKey, verifyWithJwks } from '@agentgate/transcript';

let dir: string;
let signer: Signer;
let identity: IdentityServiceImpl;
const servers: Server[] = [];

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Serve a broker's admin API the way the admin listener does. */
async function serveBroker(broker: ApprovalBrokerImpl): Promise<string> {
  return listen((req, res) => {
    broker.handleHttp(req, res, new URL(req.url ?? '/', 'http://x').pathname).then(
      (handled) => void (handled || res.writeHead(404).end()),
      () => res.destroy(),
    );
  });
}

function input(
  requester: 'devin' | 'alice',
  text: string,
): ApprovalRequestInput & { events: { type: string; body: Record<string, unknown> }[] } {
  const events: { type: string; body: Record<string, unknown> }[] = [];
  return {
    events,
    session: {
      id: `S-${requester}`,
      listener: 'prod-db',
      protocol: 'postgres',
      identity: { name: requester, groups: requester === 'alice' ? ['dba'] : ['agents'], source: 'token' },
      client: { address: '127.0.0.1', local: true, tls: false },
      startedAt: Date.now(),
    },
    recorder: {
      sessionId: `S-${requester}`,
      append(type, body) {
        events.push({ type, body });
        return {
          session: `S-${requester}`,
          seq: events.length,
          ts: Date.now(),
          type,
          prev: '',
          hash: '',
        } as TranscriptEvent;
      },
      io() {},
      end() {},
    },
    command: { protocol: 'postgres', text, statements: [] },
    rule: 'deletes-need-review',
    approvers: [],
  };
}

/** Run `agentgate …` in-process, capturing stdout and stderr. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => (
    (stdout += String(chunk)),
    true
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (
    (stderr += String(chunk)),
    true
  )) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-approvals-'));
  signer = await loadOrCreateSigningKey(join(dir, 'signing-key.json'));
  identity = await createIdentityService({
    oidc: [],
    tokens: [
      { name: 'devin', sha256: hashStaticToken('devin-token'), groups: ['agents'] },
      { name: 'alice', sha256: hashStaticToken('alice-token'), groups: ['dba'] },
    ],
    sshKeys: [],
  });
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('approvals CLI against the admin API', () => {
  it('lists, refuses a non-approver, approves and denies', async () => {
    const broker = createApprovalBroker({
      config: { timeoutMs: 60_000, approvers: ['group:dba'] },
      signer,
      identity,
      log: silentLogger,
    });
    const admin = await serveBroker(broker);
    const first = input('devin', 'DELETE FROM users WHERE id = 7');
    const second = input('devin', 'UPDATE users SET email = NULL');
    const held1 = broker.request(first);
    const held2 = broker.request(second);
    const [p1, p2] = broker.list();

    const table = await cli(['approvals', 'list', '--admin', admin, '--token', 'alice-token']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+IDENTITY\s+LISTENER\s+RULE\s+EXPIRES IN\s+COMMAND\n/);
    expect(table.stdout).toContain(`${p1!.id}  devin`);
    expect(table.stdout).toContain('DELETE FROM users WHERE id = 7');
    const json = await cli(['approvals', 'list', '--admin', admin, '--token', 'alice-token', '--json']);
    expect(JSON.parse(json.stdout)).toEqual([p1, p2]);

    const refused = await cli(['approvals', 'approve', p1!.id, '--admin', admin, '--token', 'devin-token']);
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toContain('HTTP 403');
    const badToken = await cli(['approvals', 'list', '--admin', admin, '--token', 'nope']);
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain('HTTP 401');

    const approved = await cli([
      'approvals',
      'approve',
      p1!.id,
      '--admin',
      admin,
      '--token',
      'alice-token',
      '--reason',
      'ticket 42',
    ]);
    expect(approved).toMatchObject({ code: 0, stdout: `${p1!.id} approved by alice\n` });
    await expect(held1).resolves.toEqual({
      id: p1!.id,
      outcome: 'approved',
      by: 'alice',
      reason: 'ticket 42',
    });
    expect(first.events[1]!.body).toMatchObject({ outcome: 'approved', by: 'alice', reason: 'ticket 42' });

    const denied = await cli([
      'approvals',
      'deny',
      p2!.id,
      '--admin',
      admin,
      '--token',
      'alice-token',
      '--json',
    ]);
    expect(denied.code).toBe(0);
    expect(JSON.parse(denied.stdout)).toEqual({ id: p2!.id, outcome: 'rejected', by: 'alice' });
    await expect(held2).resolves.toMatchObject({ outcome: 'rejected' });

    const again = await cli(['approvals', 'deny', p2!.id, '--admin', admin, '--token', 'alice-token']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('HTTP 409');
    expect((await cli(['approvals', 'list', '--admin', admin, '--token', 'alice-token'])).stdout).toBe(
      'no pending approvals\n',
    );
    broker.close();
  });

  it('the webhook body verifies against the gateway JWKS and an auto-approval settles the request', async () => {
    const bodies: string[] = [];
    const hook = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        verifyWithJwks(String(req.headers['x-agentgate-signature']), signer.publicJwks()).then(
          (payload) => {
            expect(payload.toString('utf8')).toBe(body);
            bodies.push(body);
            res
              .writeHead(200, { 'content-type': 'application/json' })
              .end('{"decision":"approve","reason":"change window open"}');
          },
          () => res.writeHead(401).end(),
        );
      });
    });
    const broker = createApprovalBroker({
      config: {
        timeoutMs: 60_000,
        approvers: ['group:dba'],
        webhook: { url: hook, timeoutMs: 2000, retries: 1, format: 'agentgate' },
      },
      signer,
      identity,
      log: silentLogger,
    });
    const settlement = await broker.request(input('devin', 'DELETE FROM users WHERE id = 8'));
    expect(settlement).toMatchObject({ outcome: 'approved', by: 'webhook', reason: 'change window open' });
    expect(JSON.parse(bodies[0]!)).toMatchObject({
      id: settlement.id,
      command: 'DELETE FROM users WHERE id = 8',
    });
    broker.close();
  });
});
