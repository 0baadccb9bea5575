/**
 * The foundation end to end, through the line-protocol test listener: identity, allow lists, the gate (allow,
 * deny, approve through the admin API), the transcript (recorded, verifiable, exportable), metrics and health,
 * and the CLI's read side against the same store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { recordedDecision } from '@agentgate/core';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { LineClient } from './harness/line-client.js';
import { runCli } from './harness/cli.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway(
    `
approvals: { timeout: 5s, approvers: ["group:dba"] }
rules:
  - { name: no-secrets, match: { pattern: "[Ss][Ee][Cc][Rr][Ee][Tt]" }, action: deny }
  - { name: review-deploys, match: { pattern: "^deploy" }, action: approve }
`,
    { testListeners: [{ name: 'echo', allow: ['group:agents'] }] },
  );
});
afterAll(async () => {
  await gw?.stop();
});

async function login(sub: string, groups: string[]): Promise<{ client: LineClient; greeting: string }> {
  const client = await LineClient.connect(gw.address('echo'));
  const greeting = await client.send(`AUTH ${await gw.token(sub, groups)}`);
  return { client, greeting };
}

describe('foundation through the test listener', () => {
  it('admits only identities in the allow list', async () => {
    const { client, greeting } = await login('mallory', ['visitors']);
    expect(greeting).toBe('ERR not allowed');
    await client.close();
    const bad = await LineClient.connect(gw.address('echo'));
    expect(await bad.send('AUTH not-a-token')).toBe('ERR authentication failed');
    await bad.close();
  });

  it('allows, denies and records', async () => {
    const { client, greeting } = await login('devin', ['agents']);
    expect(greeting).toMatch(/^OK devin /);
    const sessionId = greeting.split(' ')[2]!;
    expect(await client.send('hello')).toBe('ECHO hello');
    expect(await client.send('show me the SECRET')).toBe(
      'DENIED DENIED agentgate: denied by rule no-secrets',
    );
    expect(await client.send('still usable')).toBe('ECHO still usable');
    await client.close();
    await waitFor(() => gw.store.getSession(sessionId)?.endedAt != null);
    const summary = gw.store.getSession(sessionId)!;
    expect(summary).toMatchObject({
      identity: 'devin',
      protocol: 'ssh',
      listener: 'echo',
      commands: 3,
      denied: 1,
    });
    const events = [...gw.store.events(sessionId)];
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('session.start');
    expect(types).not.toContain('decision'); // the decision is in its command
    expect(events.filter((e) => e.type === 'command').map((e) => recordedDecision(e)?.action)).toContain(
      'deny',
    );
    expect(types).toContain('session.end');
  });

  it('holds an approve rule until an approver decides through the admin API', async () => {
    const { client } = await login('devin', ['agents']);
    const reply = client.send('deploy v2');
    const pending = await waitForValue(async () => {
      const res = await fetch(`${gw.adminUrl}/api/approvals`, {
        headers: { authorization: `Bearer ${await gw.token('alice', ['dba'])}` },
      });
      const list = (await res.json()) as { id: string; identity: string; command: string }[];
      return list.find((p) => p.identity === 'devin');
    });
    // a non-approver may not decide
    const notApprover = await fetch(`${gw.adminUrl}/api/approvals/${pending.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await gw.token('devin', ['agents'])}` },
    });
    expect(notApprover.status).toBe(403);
    const ok = await fetch(`${gw.adminUrl}/api/approvals/${pending.id}/approve`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await gw.token('alice', ['dba'])}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ reason: 'looks fine' }),
    });
    expect(ok.status).toBe(200);
    expect(await reply).toBe('ECHO deploy v2');
    // an unanswered request expires and is denied, naming the approval id
    const expired = await client.send('deploy v3');
    expect(expired).toMatch(/^DENIED APPROVAL_EXPIRED agentgate: approval \S+ expired/);
    await client.close();
  });

  it('serves metrics and health', async () => {
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /agentgate_commands_total\{listener="echo",protocol="ssh",decision="deny"\} [1-9]/,
    );
    expect(metrics).toMatch(/agentgate_connections_total\{listener="echo",protocol="ssh"\} [1-9]/);
    expect(metrics).toContain('agentgate_transcript_events_total');
    expect(metrics).toContain('agentgate_approvals_pending');
    expect(metrics).toContain('agentgate_process_cpu_seconds_total');
    expect((await fetch(`${gw.adminUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${gw.adminUrl}/readyz`)).status).toBe(200);
    const jwks = (await (await fetch(`${gw.adminUrl}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
  });

  it('the CLI lists, shows, exports and verifies what the gateway recorded', async () => {
    await gw.store.flush();
    const list = await runCli(['sessions', 'list', '--config', gw.configFile, '--json']);
    expect(list.code).toBe(0);
    const sessions = JSON.parse(list.stdout) as Record<string, unknown>[];
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    for (const key of [
      'id',
      'listener',
      'protocol',
      'identity',
      'startedAt',
      'endedAt',
      'commands',
      'denied',
    ]) {
      expect(sessions[0]).toHaveProperty(key);
    }
    const id = String(sessions.find((s) => s['denied'] === 1)!['id']);
    const exported = await runCli(['export', id, '--config', gw.configFile, '--format', 'jsonl']);
    expect(exported.code).toBe(0);
    const events = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; prev: string; hash: string });
    events.forEach((e, i) => {
      expect(e.seq).toBe(i === 0 ? events[0]!.seq : events[i - 1]!.seq + 1);
      if (i > 0) expect(e.prev).toBe(events[i - 1]!.hash);
    });
    const replay = await runCli(['replay', id, '--config', gw.configFile, '--speed', '0']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('DENIED by rule no-secrets');
    const verify = await runCli(['verify', '--config', gw.configFile, '--json']);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
    const filtered = await runCli([
      'sessions',
      'list',
      '--config',
      gw.configFile,
      '--json',
      '--identity',
      'nobody',
    ]);
    expect(JSON.parse(filtered.stdout)).toEqual([]);
    const missing = await runCli(['sessions', 'show', 'NOPE', '--config', gw.configFile]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no session NOPE');
    const usage = await runCli(['sessions', 'list']);
    expect(usage.code).toBe(2);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForValue<T>(fn: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('value not available in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
