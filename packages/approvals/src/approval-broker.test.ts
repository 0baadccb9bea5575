import { createPublicKey, generateKeyPairSync, sign, verify, type JsonWebKey } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import {
  AgentgateError,
  matchesPrincipal,
  silentLogger,
  type ApprovalOutcome,
  type ApprovalRequestInput,
  type ApprovalsConfig,
  type ApprovalWait,
  type Identity,
  type IdentityService,
  type SessionRecorder,
  type Signer,
  type TranscriptEvent,
  type WithdrawCause,
} from '@agentgate/core';
import { formatRemaining } from './approval-views.js';
import {
  createApprovalBroker,
  type ApprovalBrokerImpl,
  type ApprovalBrokerOptions,
  type ApprovalSharing,
  type HeldApproval,
  type PendingApproval,
  type SharedApproval,
  type SharedDecision,
} from './index.js';

// ---- test doubles for the broker's collaborators (interfaces, not upstream servers) ----

/** An ES256 signer (RFC 7515 compact serialization, RFC 7518 §3.4 raw r||s signature), like the gateway's. */
function es256Signer(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'test-key';
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  return {
    kid,
    async signCompact(payload) {
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid })).toString('base64url');
      const body = Buffer.from(payload).toString('base64url');
      const signature = sign('sha256', Buffer.from(`${header}.${body}`), {
        key: privateKey,
        dsaEncoding: 'ieee-p1363',
      });
      return `${header}.${body}.${signature.toString('base64url')}`;
    },
    async verifyCompact(jws) {
      return verifyJws(jws, { keys: [jwk] });
    },
    publicJwks: () => ({ keys: [jwk] }),
  };
}

/** What a webhook receiver does: verify the compact JWS against the published JWKS, return the payload. */
function verifyJws(jws: string, jwks: { keys: Record<string, unknown>[] }): Buffer {
  const [header, body, signature] = jws.split('.') as [string, string, string];
  const { kid, alg } = JSON.parse(Buffer.from(header, 'base64url').toString()) as {
    kid: string;
    alg: string;
  };
  const jwk = jwks.keys.find((k) => k['kid'] === kid);
  if (alg !== 'ES256' || jwk === undefined) throw new Error('unknown key');
  const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  const ok = verify(
    'sha256',
    Buffer.from(`${header}.${body}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  if (!ok) throw new Error('bad signature');
  return Buffer.from(body, 'base64url');
}

const people: Record<string, Identity> = {
  'tok-devin': { name: 'devin', groups: ['agents', 'dba'], source: 'token' },
  'tok-alice': { name: 'alice', groups: ['dba'], source: 'token' },
  'tok-bob': { name: 'bob', groups: ['security'], source: 'token' },
  'tok-carol': { name: 'carol', groups: ['dev'], source: 'token' },
};
const identityService: IdentityService = {
  async verifyToken(token) {
    const who = people[token];
    if (who === undefined) throw new AgentgateError('AUTH_FAILED', 'bad token');
    return who;
  },
  findSshKey: () => undefined,
  isAllowed: (identity, refs) => matchesPrincipal(identity, refs),
};

class MemoryRecorder implements SessionRecorder {
  readonly events: { type: string; body: Record<string, unknown> }[] = [];
  constructor(readonly sessionId: string) {}
  append(type: TranscriptEvent['type'], body: Record<string, unknown>): TranscriptEvent {
    this.events.push({ type, body });
    return { session: this.sessionId, seq: this.events.length - 1, ts: Date.now(), type, prev: '', hash: '' };
  }
  io(): void {}
  end(): void {}
}

function requestInput(
  requester = 'devin',
  approvers: string[] = [],
  text = 'DELETE FROM users WHERE id = 1',
): ApprovalRequestInput & { recorder: MemoryRecorder } {
  const identity = Object.values(people).find((p) => p.name === requester)!;
  return {
    session: {
      id: `S-${requester}`,
      listener: 'prod-db',
      protocol: 'postgres',
      identity,
      client: { address: '127.0.0.1', local: true, tls: false },
      startedAt: Date.now(),
    },
    recorder: new MemoryRecorder(`S-${requester}`),
    command: { protocol: 'postgres', text, statements: [] },
    rule: 'deletes-need-review',
    approvers,
  };
}

interface Harness {
  broker: ApprovalBrokerImpl;
  url: string;
  metrics: { pending: number[]; settled: [ApprovalOutcome, number][] };
  signer: Signer;
}
const servers: Server[] = [];
const brokers: ApprovalBrokerImpl[] = [];

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function harness(
  config: Partial<ApprovalsConfig> = {},
  consoleUrl?: (id: string) => string,
  fleet: Pick<ApprovalBrokerOptions, 'sharing' | 'whenSharingDown' | 'liveApprovers'> = {},
): Promise<Harness> {
  const metrics: Harness['metrics'] = { pending: [], settled: [] };
  const signer = es256Signer();
  const broker = createApprovalBroker({
    config: { timeoutMs: 60_000, approvers: ['group:dba'], ...config },
    signer,
    identity: identityService,
    log: silentLogger,
    metrics: { pending: (n) => metrics.pending.push(n), settled: (o, s) => metrics.settled.push([o, s]) },
    ...(consoleUrl === undefined ? {} : { consoleUrl }),
    ...fleet,
  });
  brokers.push(broker);
  const { url } = await listen((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    broker.handleHttp(req, res, pathname).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      () => res.destroy(),
    );
  });
  return { broker, url, metrics, signer };
}

async function api(
  h: Harness,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${h.url}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      'content-type': 'application/json',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: await response.json() };
}

/** The pending entry for a request once the broker has registered it. */
async function pendingFor(h: Harness, n = 1): Promise<PendingApproval[]> {
  for (let i = 0; i < 100 && h.broker.list().length < n; i++) await new Promise((r) => setTimeout(r, 5));
  return h.broker.list();
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

describe('approval broker', () => {
  it('shows a request only to its approvers and its requester, pending or settled', async () => {
    const h = await harness();
    const settled = h.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(h);
    const one = `/api/approvals/${pending!.id}`;
    // carol's own wait, and alice may decide it (group:dba); bob is neither, so nothing of it reaches him.
    expect(await api(h, 'GET', '/api/approvals', 'tok-carol')).toEqual({ status: 200, json: [pending] });
    expect(await api(h, 'GET', '/api/approvals', 'tok-alice')).toEqual({ status: 200, json: [pending] });
    expect(await api(h, 'GET', '/api/approvals', 'tok-bob')).toEqual({ status: 200, json: [] });
    expect((await api(h, 'GET', one, 'tok-carol')).json).toMatchObject({
      id: pending!.id,
      status: 'pending',
    });
    expect(await api(h, 'GET', one, 'tok-bob')).toMatchObject({ status: 404, json: { code: 'NOT_FOUND' } });

    await api(h, 'POST', `${one}/deny`, 'tok-alice', { reason: 'not on prod' });
    await expect(settled).resolves.toMatchObject({ outcome: 'rejected' });
    expect((await api(h, 'GET', one, 'tok-carol')).json).toMatchObject({
      status: 'rejected',
      by: 'alice',
      reason: 'not on prod',
      identity: 'carol',
      approvers: ['group:dba'],
    });
    expect(await api(h, 'GET', one, 'tok-bob')).toMatchObject({ status: 404, json: { code: 'NOT_FOUND' } });
  });

  it('approves through the API, records both events and counts metrics', async () => {
    const h = await harness();
    const input = requestInput('devin');
    const settled = h.broker.request(input);
    const [pending] = await pendingFor(h);
    expect(pending).toMatchObject({
      listener: 'prod-db',
      protocol: 'postgres',
      identity: 'devin',
      command: 'DELETE FROM users WHERE id = 1',
      rule: 'deletes-need-review',
      approvers: ['group:dba'],
    });
    expect(Date.parse(pending!.expiresAt) - Date.parse(pending!.requestedAt)).toBe(60_000);

    const list = await api(h, 'GET', '/api/approvals', 'tok-alice');
    expect(list).toEqual({ status: 200, json: [pending] });
    const answer = await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-alice', {
      reason: 'looks fine',
    });
    expect(answer).toEqual({
      status: 200,
      json: { id: pending!.id, outcome: 'approved', by: 'alice', reason: 'looks fine' },
    });
    await expect(settled).resolves.toEqual({
      id: pending!.id,
      outcome: 'approved',
      by: 'alice',
      reason: 'looks fine',
    });

    expect(input.recorder.events.map((e) => e.type)).toEqual(['approval.requested', 'approval.decided']);
    expect(input.recorder.events[0]!.body).toMatchObject({
      approvalId: pending!.id,
      rule: 'deletes-need-review',
      command: 'DELETE FROM users WHERE id = 1',
      approvers: ['group:dba'],
      expiresAt: Date.parse(pending!.expiresAt),
    });
    expect(input.recorder.events[1]!.body).toMatchObject({
      approvalId: pending!.id,
      outcome: 'approved',
      by: 'alice',
      reason: 'looks fine',
    });
    expect(typeof input.recorder.events[1]!.body['waitedMs']).toBe('number');
    expect(h.metrics.pending).toEqual([1, 0]);
    expect(h.metrics.settled.map(([o]) => o)).toEqual(['approved']);
    expect(h.broker.list()).toEqual([]);
  });

  it('denies with a reason', async () => {
    const h = await harness();
    const settled = h.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(h);
    expect(
      (await api(h, 'POST', `/api/approvals/${pending!.id}/deny`, 'tok-alice', { reason: 'not in prod' }))
        .status,
    ).toBe(200);
    await expect(settled).resolves.toEqual({
      id: pending!.id,
      outcome: 'rejected',
      by: 'alice',
      reason: 'not in prod',
    });
  });

  it('expires at the timeout', async () => {
    const h = await harness({ timeoutMs: 80 });
    const input = requestInput('carol');
    const started = Date.now();
    const settlement = await h.broker.request(input);
    expect(settlement).toMatchObject({ outcome: 'expired', reason: 'no decision within 80ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
    expect(input.recorder.events[1]!.body).toMatchObject({ outcome: 'expired', by: null });
    expect(h.metrics.settled[0]![0]).toBe('expired');
  });

  it('is cancelled when the client leaves, and a late decision gets 409', async () => {
    const h = await harness();
    const controller = new AbortController();
    const input = requestInput('carol');
    const settled = h.broker.request(input, controller.signal);
    const [pending] = await pendingFor(h);
    controller.abort();
    await expect(settled).resolves.toMatchObject({
      id: pending!.id,
      outcome: 'cancelled',
      reason: 'the client left',
    });
    expect(input.recorder.events[1]!.body).toMatchObject({ outcome: 'cancelled', cause: 'client-left' });
    const late = await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-alice');
    expect(late).toMatchObject({ status: 409, json: { code: 'CONFLICT' } });
  });

  it('records the cause a withdrawn request names: shutdown, an expired credential, a cancel', async () => {
    const h = await harness();
    const causes: [WithdrawCause, string][] = [
      [{ kind: 'shutdown' }, 'the gateway is shutting down'],
      [
        { kind: 'credential-expired', expiredAt: '2026-11-26T12:00:00.000Z' },
        'the credential expired at 2026-11-26T12:00:00.000Z',
      ],
      [{ kind: 'cancelled' }, 'the client cancelled it'],
      [{ kind: 'terminated', by: 'alice' }, 'ended by admin alice'],
    ];
    for (const [cause, reason] of causes) {
      const controller = new AbortController();
      const input = requestInput('carol');
      const settled = h.broker.request(input, controller.signal);
      await pendingFor(h);
      controller.abort(cause);
      await expect(settled).resolves.toMatchObject({ outcome: 'cancelled', reason });
      expect(input.recorder.events[1]!.body).toMatchObject({
        outcome: 'cancelled',
        cause: cause.kind,
        reason,
      });
    }
    // Already withdrawn when asked: settled at once, with the same words.
    const gone = new AbortController();
    gone.abort({ kind: 'shutdown' });
    await expect(h.broker.request(requestInput('carol'), gone.signal)).resolves.toMatchObject({
      outcome: 'cancelled',
      reason: 'the gateway is shutting down',
    });
  });

  it('refuses self-approval (403) but keeps the request pending', async () => {
    const h = await harness();
    const settled = h.broker.request(requestInput('devin')); // devin is in group dba
    const [pending] = await pendingFor(h);
    const self = await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-devin');
    expect(self).toMatchObject({ status: 403, json: { code: 'FORBIDDEN' } });
    expect(h.broker.list()).toHaveLength(1);
    h.broker.approve(pending!.id, people['tok-alice']!);
    await expect(settled).resolves.toMatchObject({ outcome: 'approved', by: 'alice' });
  });

  it('refuses non-approvers (403) and honours a rule override of the approvers', async () => {
    const h = await harness();
    const byConfig = h.broker.request(requestInput('carol'));
    const byRule = h.broker.request(requestInput('carol', ['group:security'], 'DROP TABLE x'));
    const [first, second] = await pendingFor(h, 2);
    expect((await api(h, 'POST', `/api/approvals/${first!.id}/approve`, 'tok-bob')).status).toBe(403);
    expect((await api(h, 'POST', `/api/approvals/${second!.id}/approve`, 'tok-alice')).status).toBe(403);
    expect((await api(h, 'POST', `/api/approvals/${second!.id}/approve`, 'tok-bob')).status).toBe(200);
    expect((await api(h, 'POST', `/api/approvals/${first!.id}/approve`, 'tok-alice')).status).toBe(200);
    await expect(byRule).resolves.toMatchObject({ outcome: 'approved', by: 'bob' });
    await expect(byConfig).resolves.toMatchObject({ outcome: 'approved', by: 'alice' });
  });

  it('lets only approvers both as held and as in force now decide a request held before a reload', async () => {
    // What the gateway's configuration says now: the rule's approvers after a reload, or no such rule.
    let inForce: Record<string, string[]> = { 'deletes-need-review': ['group:dba', 'group:security'] };
    const h = await harness({}, undefined, { liveApprovers: (rule) => inForce[rule] });
    const held = h.broker.request(requestInput('carol', ['group:dba', 'group:security']));
    const [pending] = await pendingFor(h);
    inForce = { 'deletes-need-review': ['group:dba'] };
    const bob = await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-bob');
    expect(bob).toMatchObject({
      status: 403,
      json: {
        code: 'FORBIDDEN',
        message: expect.stringContaining(
          'a reload changed the approvers of rule deletes-need-review',
        ) as unknown,
      },
    });
    // Added by the reload but not among the approvers it was held with: not an approver of this request either.
    inForce = { 'deletes-need-review': ['group:dev'] };
    expect(() => h.broker.approve(pending!.id, people['tok-alice']!)).toThrow(
      'a reload changed the approvers',
    );
    inForce = { 'deletes-need-review': ['group:dba'] };
    expect((await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-alice')).status).toBe(200);
    await expect(held).resolves.toMatchObject({ outcome: 'approved', by: 'alice' });

    // The rule is gone from the configuration in force: the approvers it was held with decide.
    inForce = {};
    const orphan = h.broker.request(requestInput('carol', ['group:security']));
    const [second] = await pendingFor(h);
    expect((await api(h, 'POST', `/api/approvals/${second!.id}/deny`, 'tok-bob')).status).toBe(200);
    await expect(orphan).resolves.toMatchObject({ outcome: 'rejected', by: 'bob' });
  });

  it("in a fleet, the deciding replica's configuration in force applies", async () => {
    const store = new MemorySharing();
    const holder = await harness({}, undefined, { sharing: store.forNode('A') });
    const other = await harness({}, undefined, {
      sharing: store.forNode('B'),
      liveApprovers: () => ['group:dba'],
    });
    const settled = holder.broker.request(requestInput('carol', ['group:dba', 'group:security']));
    const [pending] = await pendingFor(holder);
    await expect(other.broker.decideAnywhere(pending!.id, people['tok-bob']!, 'approved')).rejects.toThrow(
      'a reload changed the approvers',
    );
    await expect(
      holder.broker.decideAnywhere(pending!.id, people['tok-bob']!, 'approved'),
    ).resolves.toMatchObject({ outcome: 'approved', by: 'bob' });
    await expect(settled).resolves.toMatchObject({ outcome: 'approved', by: 'bob' });
  });

  it('answers 401 for a bad or missing token, 404 for an unknown id, 400 for a bad body, 409 twice', async () => {
    const h = await harness();
    void h.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(h);
    expect((await api(h, 'GET', '/api/approvals')).status).toBe(401);
    expect((await api(h, 'GET', '/api/approvals', 'tok-nobody')).status).toBe(401);
    expect((await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-nobody')).status).toBe(401);
    expect(await api(h, 'POST', '/api/approvals/01NOSUCHID/approve', 'tok-alice')).toMatchObject({
      status: 404,
      json: { code: 'NOT_FOUND' },
    });
    expect(
      (await api(h, 'POST', `/api/approvals/${pending!.id}/approve`, 'tok-alice', { reason: 42 })).status,
    ).toBe(400);
    expect((await api(h, 'GET', `/api/approvals/${pending!.id}/approve`, 'tok-alice')).status).toBe(405);
    expect((await api(h, 'POST', `/api/approvals/${pending!.id}/deny`, 'tok-alice')).status).toBe(200);
    expect((await api(h, 'POST', `/api/approvals/${pending!.id}/deny`, 'tok-alice')).status).toBe(409);
    expect(() => h.broker.approve(pending!.id, people['tok-alice']!)).toThrow(
      expect.objectContaining({ code: 'CONFLICT' }),
    );
  });

  it('settles two requests decided in the opposite order, each exactly once', async () => {
    const h = await harness();
    const one = requestInput('carol', [], 'DELETE FROM users WHERE id = 1');
    const two = requestInput('devin', [], 'DELETE FROM users WHERE id = 2');
    const order: string[] = [];
    const first = h.broker.request(one).then((s) => (order.push('one'), s));
    const second = h.broker.request(two).then((s) => (order.push('two'), s));
    const [p1, p2] = await pendingFor(h, 2);
    h.broker.deny(p2!.id, people['tok-alice']!, 'second first');
    await second;
    h.broker.approve(p1!.id, people['tok-alice']!);
    await expect(first).resolves.toMatchObject({ id: p1!.id, outcome: 'approved' });
    await expect(second).resolves.toMatchObject({ id: p2!.id, outcome: 'rejected', reason: 'second first' });
    expect(order).toEqual(['two', 'one']);
    expect(one.recorder.events.filter((e) => e.type === 'approval.decided')).toHaveLength(1);
    expect(two.recorder.events.filter((e) => e.type === 'approval.decided')).toHaveLength(1);
  });

  it('rejects (and holds nothing) when the request cannot be recorded', async () => {
    const h = await harness();
    const input = requestInput('carol');
    input.recorder.append = () => {
      throw new AgentgateError('RECORDING_FAILED', 'store is read-only');
    };
    await expect(h.broker.request(input)).rejects.toMatchObject({ code: 'RECORDING_FAILED' });
    expect(h.broker.list()).toEqual([]);
    expect(h.metrics.pending).toEqual([]);
  });

  it('tells subscribers of each hold and each settlement, in order, and survives a throwing subscriber', async () => {
    const h = await harness();
    const seen: string[] = [];
    h.broker.subscribe(() => {
      throw new Error('a broken subscriber');
    });
    const unsubscribe = h.broker.subscribe((event) =>
      seen.push(
        event.type === 'requested'
          ? `requested ${event.approval.command} by ${event.input.session.identity.name}`
          : `settled ${event.settlement.outcome} by ${event.settlement.by ?? '-'}`,
      ),
    );
    const settled = h.broker.request(requestInput('carol'));
    expect(seen).toEqual(['requested DELETE FROM users WHERE id = 1 by carol']);
    const [pending] = await pendingFor(h);
    h.broker.deny(pending!.id, people['tok-alice']!, 'no');
    await expect(settled).resolves.toMatchObject({ outcome: 'rejected' });
    expect(seen).toEqual(['requested DELETE FROM users WHERE id = 1 by carol', 'settled rejected by alice']);
    unsubscribe();
    void h.broker.request(requestInput('carol'));
    expect(seen).toHaveLength(2);
  });

  it('cancels everything on close', async () => {
    const h = await harness();
    const settled = h.broker.request(requestInput('carol'));
    await pendingFor(h);
    h.broker.close();
    await expect(settled).resolves.toMatchObject({ outcome: 'cancelled' });
    // Asked once closed (draining): refused at once, no approver asked, and recorded with the cause.
    const late = requestInput('carol');
    await expect(h.broker.request(late)).resolves.toMatchObject({
      outcome: 'cancelled',
      reason: 'the gateway is shutting down',
    });
    expect(h.broker.list()).toEqual([]);
    expect(late.recorder.events.map((e) => e.type)).toEqual(['approval.requested', 'approval.decided']);
    expect(late.recorder.events[1]!.body).toMatchObject({
      outcome: 'cancelled',
      by: null,
      cause: 'shutdown',
      waitedMs: 0,
    });
  });
});

describe('telling the client it waits', () => {
  it('tells the waiting engine when held and at every reminder, with the link, and never after it settled', async () => {
    const broker = createApprovalBroker({
      config: { timeoutMs: 60_000, approvers: ['group:dba'] },
      signer: es256Signer(),
      identity: identityService,
      log: silentLogger,
      consoleUrl: (id) => `https://console.example/approvals/${id}`,
      apiUrl: (id) => `http://127.0.0.1:9090/api/approvals/${id}`,
      reminderIntervalMs: 40,
    });
    brokers.push(broker);
    const waits: ApprovalWait[] = [];
    const settled = broker.request({ ...requestInput('carol'), onWaiting: (w) => waits.push(w) });
    expect(waits).toHaveLength(1);
    const [first] = waits;
    expect(first).toMatchObject({
      rule: 'deletes-need-review',
      notice: 1,
      url: `https://console.example/approvals/${first!.approvalId}`,
      message:
        `agentgate: waiting for approval ${first!.approvalId} (rule deletes-need-review), expires in 60s — ` +
        `https://console.example/approvals/${first!.approvalId}`,
    });
    while (waits.length < 3) await new Promise((r) => setTimeout(r, 10));
    expect(waits.map((w) => w.notice).slice(0, 3)).toEqual([1, 2, 3]);
    broker.approve(first!.approvalId, people['tok-alice']!);
    await settled;
    const heard = waits.length;
    await new Promise((r) => setTimeout(r, 120));
    expect(waits).toHaveLength(heard);
  });

  it('links the admin API when no console is configured; a throwing hook does not disturb the request', async () => {
    const broker = createApprovalBroker({
      config: { timeoutMs: 1500, approvers: ['group:dba'] },
      signer: es256Signer(),
      identity: identityService,
      log: silentLogger,
      apiUrl: (id) => `http://127.0.0.1:9090/api/approvals/${id}`,
    });
    brokers.push(broker);
    let message = '';
    const settlement = await broker.request({
      ...requestInput('carol'),
      onWaiting: (w) => {
        message = w.message;
        throw new Error('the channel is gone');
      },
    });
    expect(settlement.outcome).toBe('expired');
    expect(message).toBe(
      `agentgate: waiting for approval ${settlement.id} (rule deletes-need-review), expires in 2s — ` +
        `http://127.0.0.1:9090/api/approvals/${settlement.id}`,
    );
  });

  it('formats the time left as a person reads it', () => {
    expect([120_000, 599_001, 600_000, 870_000, 7_200_000, 7_500_000].map(formatRemaining)).toEqual([
      '120s',
      '10m',
      '10m',
      '14m30s',
      '2h',
      '2h5m',
    ]);
  });
});

describe('approval webhook', () => {
  it('with format slack, posts text and blocks with the links, still signed', async () => {
    const bodies: Record<string, unknown>[] = [];
    const published: { jwks?: { keys: Record<string, unknown>[] } } = {};
    const hook = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        expect(verifyJws(String(req.headers['x-agentgate-signature']), published.jwks!).toString()).toBe(
          body,
        );
        bodies.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200).end('ok'); // what Slack answers
      });
    });
    const h = await harness(
      { webhook: { url: hook.url, timeoutMs: 2000, retries: 0, format: 'slack' } },
      (id) => `https://console.example/approvals/${id}`,
    );
    published.jwks = h.signer.publicJwks();
    const held = h.broker.request(requestInput('carol', [], "DELETE FROM users WHERE note = '<b>&'"));
    const [pending] = await pendingFor(h);
    await api(h, 'POST', `/api/approvals/${pending!.id}/deny`, 'tok-alice', { reason: 'not today' });
    await held;
    for (let i = 0; i < 200 && bodies.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    const link = `https://console.example/approvals/${pending!.id}`;
    expect(Object.keys(bodies[0]!)).toEqual(['text', 'blocks']);
    expect(bodies[0]!['text']).toBe(
      `agentgate: approval requested — approval ${pending!.id} for carol on prod-db (postgres), ` +
        `rule deletes-need-review ${link}`,
    );
    expect(JSON.stringify(bodies[0]!['blocks'])).toContain("DELETE FROM users WHERE note = '&lt;b&gt;&amp;'");
    expect(bodies[0]!['blocks']).toContainEqual({
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in console' }, url: link }],
    });
    expect(bodies[1]!['text']).toBe(
      `agentgate: rejected — approval ${pending!.id} for carol on prod-db (postgres), ` +
        `rule deletes-need-review (by alice: not today) ${link}`,
    );
  });

  it('auto-approves from a 200 decision; the body is signed with a JWS verifiable against publicJwks', async () => {
    const received: { body: string; signature: string; payload: string }[] = [];
    const published: { jwks?: { keys: Record<string, unknown>[] } } = {};
    const hook = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const signature = String(req.headers['x-agentgate-signature']);
        const payload = verifyJws(signature, published.jwks!).toString();
        received.push({ body, signature, payload });
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ decision: 'approve', reason: 'bot says ok' }));
      });
    });
    const h = await harness(
      { webhook: { url: `${hook.url}/hook`, timeoutMs: 2000, retries: 1, format: 'agentgate' } },
      (id) => `https://console.example/approvals/${id}`,
    );
    published.jwks = h.signer.publicJwks();
    const input = requestInput('carol');
    const settlement = await h.broker.request(input);
    expect(settlement).toMatchObject({ outcome: 'approved', by: 'webhook', reason: 'bot says ok' });
    // The outcome follows as its own signed event.
    for (let i = 0; i < 200 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received).toHaveLength(2);
    expect(received[0]!.payload).toBe(received[0]!.body);
    expect(received[1]!.payload).toBe(received[1]!.body);
    expect(JSON.parse(received[1]!.body)).toMatchObject({
      type: 'approval.approved',
      id: settlement.id,
      outcome: 'approved',
      by: 'webhook',
      reason: 'bot says ok',
    });
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      type: 'approval.requested',
      id: settlement.id,
      identity: { name: 'carol' },
      command: 'DELETE FROM users WHERE id = 1',
      rule: 'deletes-need-review',
      listener: 'prod-db',
      consoleUrl: `https://console.example/approvals/${settlement.id}`,
    });
    expect(input.recorder.events[1]!.body).toMatchObject({ outcome: 'approved', by: 'webhook' });
  });

  it('a webhook deny settles as rejected; a 200 without a decision leaves it to a person', async () => {
    let answer = JSON.stringify({ decision: 'deny', reason: 'policy bot' });
    const hook = await listen((_req, res) => res.writeHead(200).end(answer));
    const h = await harness({ webhook: { url: hook.url, timeoutMs: 2000, retries: 0, format: 'agentgate' } });
    await expect(h.broker.request(requestInput('carol'))).resolves.toMatchObject({
      outcome: 'rejected',
      by: 'webhook',
      reason: 'policy bot',
    });
    answer = JSON.stringify({ received: true });
    const settled = h.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(h);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.broker.list()).toHaveLength(1);
    h.broker.approve(pending!.id, people['tok-alice']!);
    await expect(settled).resolves.toMatchObject({ outcome: 'approved', by: 'alice' });
  });

  it('retries a failing webhook a bounded number of times, then leaves it to a person', async () => {
    let attempts = 0;
    const hook = await listen((_req, res) => {
      attempts++;
      res.writeHead(503).end();
    });
    const h = await harness({ webhook: { url: hook.url, timeoutMs: 1000, retries: 2, format: 'agentgate' } });
    const settled = h.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(h);
    // 1 try + 2 retries (backoff 200 ms, 400 ms), then no more.
    for (let i = 0; i < 300 && attempts < 3; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 600));
    expect(attempts).toBe(3);
    expect(h.broker.list()).toHaveLength(1);
    h.broker.approve(pending!.id, people['tok-alice']!);
    await expect(settled).resolves.toMatchObject({ outcome: 'approved', by: 'alice' });
  });

  it('a dead or hanging webhook wedges nothing', async () => {
    // Dead: a port nobody listens on.
    const dead = await listen(() => undefined);
    const deadUrl = dead.url;
    await new Promise((r) => dead.server.close(r));
    const h1 = await harness({ webhook: { url: deadUrl, timeoutMs: 200, retries: 5, format: 'agentgate' } });
    const started = Date.now();
    const s1 = h1.broker.request(requestInput('carol'));
    const [p1] = await pendingFor(h1);
    h1.broker.approve(p1!.id, people['tok-alice']!);
    await expect(s1).resolves.toMatchObject({ outcome: 'approved' });
    expect(Date.now() - started).toBeLessThan(500);

    // Hanging: accepts and never answers; each attempt times out, the request still expires on time.
    let hits = 0;
    const hang = await listen(() => {
      hits++;
    });
    const h2 = await harness({
      timeoutMs: 700,
      webhook: { url: hang.url, timeoutMs: 100, retries: 1, format: 'agentgate' },
    });
    const s2 = await h2.broker.request(requestInput('carol'));
    expect(s2.outcome).toBe('expired');
    expect(hits).toBe(2);
  });
});

/**
 * The fleet database's approvals table as the broker sees it through `ApprovalSharing` (the SQL side has its own
 * tests against a real PostgreSQL): conditional settlement, a switch for the database being away, and watchers told
 * at once unless `quiet` (a lost notification).
 */
class MemorySharing {
  readonly rows = new Map<string, SharedApproval>();
  down = false;
  quiet = false;
  private readonly watchers = new Set<{
    held: () => readonly string[];
    onSettled: (a: SharedApproval) => void;
  }>();

  forNode(node: string): ApprovalSharing {
    return {
      node,
      hold: async (approval: HeldApproval) => {
        this.reachable();
        this.rows.set(approval.id, {
          ...approval,
          state: 'pending',
          decidedBy: null,
          reason: null,
          decidedAt: null,
        });
      },
      decide: async (id, outcome, by, reason): Promise<SharedDecision> => {
        this.reachable();
        const row = this.rows.get(id);
        if (row === undefined) return { kind: 'not-found' };
        if (row.state !== 'pending' || row.expiresAt <= Date.now()) return { kind: 'settled', approval: row };
        return { kind: 'decided', approval: this.settle(row, outcome, by, reason ?? null) };
      },
      withdraw: async (id, outcome, reason) => {
        this.reachable();
        const row = this.rows.get(id);
        if (row === undefined || row.state !== 'pending') return row;
        return this.settle(row, outcome, null, reason);
      },
      get: async (id) => (this.reachable(), this.rows.get(id)),
      listPending: async () => (
        this.reachable(),
        [...this.rows.values()].filter((r) => r.state === 'pending')
      ),
      watch: (held, onSettled) => {
        const watcher = { held, onSettled };
        this.watchers.add(watcher);
        return () => this.watchers.delete(watcher);
      },
    };
  }

  private reachable(): void {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }

  private settle(
    row: SharedApproval,
    state: SharedApproval['state'],
    by: string | null,
    reason: string | null,
  ): SharedApproval {
    const settled = { ...row, state, decidedBy: by, reason, decidedAt: Date.now() };
    this.rows.set(row.id, settled);
    if (!this.quiet)
      for (const watcher of this.watchers) if (watcher.held().includes(row.id)) watcher.onSettled(settled);
    return settled;
  }
}

describe('approval broker in a fleet', () => {
  it('refuses a command at once when the fleet database cannot take it, and records why', async () => {
    const store = new MemorySharing();
    store.down = true;
    const h = await harness({}, undefined, { sharing: store.forNode('A') });
    const input = requestInput('devin');
    const settled = await h.broker.request(input);
    expect(settled).toMatchObject({
      outcome: 'cancelled',
      reason:
        'the fleet database is unreachable, so no replica could approve it (fleet.approvalsWhenDown: closed)',
    });
    expect(input.recorder.events.map((e) => e.type)).toEqual(['approval.requested', 'approval.decided']);
    expect(input.recorder.events[1]!.body).toMatchObject({ outcome: 'cancelled', by: null, cause: 'failed' });
    expect(h.broker.list()).toEqual([]);
  });

  it('with approvalsWhenDown: local, holds it on this replica alone, decided here', async () => {
    const store = new MemorySharing();
    store.down = true;
    const h = await harness({}, undefined, { sharing: store.forNode('A'), whenSharingDown: 'local' });
    const settled = h.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(h);
    expect(pending!.node).toBeUndefined();
    expect(await h.broker.listAnywhere()).toEqual([pending]);
    await expect(
      h.broker.decideAnywhere(pending!.id, people['tok-alice']!, 'approved'),
    ).resolves.toMatchObject({
      outcome: 'approved',
    });
    await expect(settled).resolves.toMatchObject({ outcome: 'approved', by: 'alice' });
    expect(store.rows.size).toBe(0);
  });

  it("another replica decides a shared request once; the holder settles from the row; checks use the row's requester", async () => {
    const store = new MemorySharing();
    const holder = await harness({}, undefined, { sharing: store.forNode('A') });
    const other = await harness({}, undefined, { sharing: store.forNode('B') });
    const input = requestInput('devin');
    const settled = holder.broker.request(input);
    const [pending] = await pendingFor(holder);
    expect(pending!.node).toBe('A');
    expect((await other.broker.listAnywhere()).map((p) => p.id)).toEqual([pending!.id]);
    // devin is in dba, but may not approve his own request on any replica; carol is no approver.
    await expect(other.broker.decideAnywhere(pending!.id, people['tok-devin']!, 'approved')).rejects.toThrow(
      'may not approve their own request',
    );
    await expect(other.broker.decideAnywhere(pending!.id, people['tok-carol']!, 'approved')).rejects.toThrow(
      'is not an approver',
    );
    await expect(
      other.broker.decideAnywhere(pending!.id, people['tok-alice']!, 'rejected', 'not today'),
    ).resolves.toMatchObject({ outcome: 'rejected', by: 'alice' });
    await expect(settled).resolves.toEqual({
      id: pending!.id,
      outcome: 'rejected',
      by: 'alice',
      reason: 'not today',
    });
    expect(input.recorder.events[1]!.body).toMatchObject({
      outcome: 'rejected',
      by: 'alice',
      reason: 'not today',
    });
    await expect(holder.broker.decideAnywhere(pending!.id, people['tok-alice']!, 'approved')).rejects.toThrow(
      'already settled (rejected)',
    );
    await expect(other.broker.getAnywhere(pending!.id)).resolves.toMatchObject({
      status: 'rejected',
      by: 'alice',
    });
  });

  it('an expiry that loses to a decision it did not hear of settles as that decision', async () => {
    const store = new MemorySharing();
    store.quiet = true;
    const holder = await harness({ timeoutMs: 300 }, undefined, { sharing: store.forNode('A') });
    const other = await harness({}, undefined, { sharing: store.forNode('B') });
    const input = requestInput('carol');
    const settled = holder.broker.request(input);
    const [pending] = await pendingFor(holder);
    await other.broker.decideAnywhere(pending!.id, people['tok-alice']!, 'approved', 'just in time');
    await expect(settled).resolves.toMatchObject({
      outcome: 'approved',
      by: 'alice',
      reason: 'just in time',
    });
    expect(store.rows.get(pending!.id)!.state).toBe('approved');
  });

  it('withdraws its shared requests on close, written back as cancelled', async () => {
    const store = new MemorySharing();
    const holder = await harness({}, undefined, { sharing: store.forNode('A') });
    const settled = holder.broker.request(requestInput('carol'));
    const [pending] = await pendingFor(holder);
    await holder.broker.close();
    await expect(settled).resolves.toMatchObject({
      outcome: 'cancelled',
      reason: 'the gateway is shutting down',
    });
    expect(store.rows.get(pending!.id)).toMatchObject({ state: 'cancelled', decidedBy: null });
  });
});
