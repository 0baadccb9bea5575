/**
 * Approvals through a running gateway (the line-protocol test listener stands in for a protocol): a held command
 * waits while the rest of the session's world goes on, and is released or refused by the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { LineClient } from './harness/line-client.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway(
    `
approvals: { timeout: 30s, approvers: ["group:dba"] }
rules:
  - { name: review-deletes, match: { pattern: "^delete" }, action: approve }
  - { name: security-reviews-grants, match: { pattern: "^grant" }, action: approve, approvers: ["group:security"] }
`,
    { testListeners: [{ name: 'line', allow: ['group:agents'] }] },
  );
});
afterAll(async () => {
  await gw?.stop();
});

interface Pending {
  id: string;
  identity: string;
  command: string;
  rule: string;
  listener: string;
  protocol: string;
}

async function login(sub: string, groups: string[]): Promise<{ client: LineClient; sessionId: string }> {
  const client = await LineClient.connect(gw.address('line'));
  const greeting = await client.send(`AUTH ${await gw.token(sub, groups)}`);
  expect(greeting).toMatch(/^OK /);
  return { client, sessionId: greeting.split(' ')[2]! };
}

/** The pending requests `viewer` sees once there are `count`: those it may decide, and its own. */
async function pending(count: number, viewer: [string, string[]] = ['alice', ['dba']]): Promise<Pending[]> {
  const token = await gw.token(...viewer);
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${gw.adminUrl}/api/approvals`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const list = (await res.json()) as Pending[];
    if (list.length === count) return list;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`expected ${count} pending approvals`);
}

async function decide(
  id: string,
  verb: 'approve' | 'deny',
  sub: string,
  groups: string[],
  reason?: string,
): Promise<number> {
  const res = await fetch(`${gw.adminUrl}/api/approvals/${id}/${verb}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.token(sub, groups)}`, 'content-type': 'application/json' },
    body: JSON.stringify(reason === undefined ? {} : { reason }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('approvals through the gateway', () => {
  it('a rejected command is refused naming the approval id, and the session stays usable', async () => {
    const { client, sessionId } = await login('devin', ['agents']);
    const reply = client.send('delete from users');
    const [held] = await pending(1);
    expect(held).toMatchObject({
      identity: 'devin',
      command: 'delete from users',
      rule: 'review-deletes',
      listener: 'line',
      protocol: 'ssh',
    });
    expect(await decide(held!.id, 'deny', 'alice', ['dba'], 'not today')).toBe(200);
    expect(await reply).toMatch(
      new RegExp(`^DENIED APPROVAL_REJECTED agentgate: approval ${held!.id} rejected`),
    );
    expect(await client.send('select 1')).toBe('ECHO select 1');
    await client.close();
    await gw.store.flush();
    const events = [...gw.store.events(sessionId)];
    const decided = events.find((e) => e.type === 'approval.decided')!;
    expect(decided).toMatchObject({
      approvalId: held!.id,
      outcome: 'rejected',
      by: 'alice',
      reason: 'not today',
    });
    expect(events.find((e) => e.type === 'approval.requested')).toMatchObject({
      approvalId: held!.id,
      rule: 'review-deletes',
      command: 'delete from users',
    });
  });

  it('refuses self-approval and honours the rule override of approvers', async () => {
    // devin is both an agent and a dba: he may approve others' requests, never his own.
    const { client } = await login('devin', ['agents', 'dba']);
    const reply = client.send('delete from orders');
    const [held] = await pending(1);
    expect(await decide(held!.id, 'approve', 'devin', ['agents', 'dba'])).toBe(403);
    expect(await decide(held!.id, 'approve', 'alice', ['dba'])).toBe(200);
    expect(await reply).toBe('ECHO delete from orders');

    const grant = client.send('grant all to devin');
    const [heldGrant] = await pending(1, ['sam', ['security']]);
    // alice may not decide it, so she is not shown it; devin is shown his own wait.
    await pending(0);
    expect((await pending(1, ['devin', ['agents', 'dba']]))[0]!.id).toBe(heldGrant!.id);
    expect(await decide(heldGrant!.id, 'approve', 'alice', ['dba'])).toBe(403);
    expect(await decide(heldGrant!.id, 'approve', 'sam', ['security'])).toBe(200);
    expect(await grant).toBe('ECHO grant all to devin');
    await client.close();
  });

  it('two held commands from two sessions settle in the opposite order', async () => {
    const a = await login('agent-a', ['agents']);
    const b = await login('agent-b', ['agents']);
    const replyA = a.client.send('delete from a');
    const replyB = b.client.send('delete from b');
    const list = await pending(2);
    const forA = list.find((p) => p.identity === 'agent-a')!;
    const forB = list.find((p) => p.identity === 'agent-b')!;
    expect(await decide(forB.id, 'approve', 'alice', ['dba'])).toBe(200);
    expect(await replyB).toBe('ECHO delete from b');
    expect(await decide(forA.id, 'deny', 'alice', ['dba'])).toBe(200);
    expect(await replyA).toMatch(/^DENIED APPROVAL_REJECTED /);
    expect(await decide(forA.id, 'approve', 'alice', ['dba'])).toBe(409);
    await Promise.all([a.client.close(), b.client.close()]);
  });

  it('a client that leaves while waiting withdraws its request', async () => {
    const { client, sessionId } = await login('devin', ['agents']);
    void client.send('delete from leaving').catch(() => undefined);
    const [held] = await pending(1);
    await client.close();
    await pending(0);
    expect(await decide(held!.id, 'approve', 'alice', ['dba'])).toBe(409);
    await gw.store.flush();
    const decided = [...gw.store.events(sessionId)].find((e) => e.type === 'approval.decided');
    expect(decided).toMatchObject({
      approvalId: held!.id,
      outcome: 'cancelled',
      cause: 'client-left',
      reason: 'the client left',
    });
  });
});
