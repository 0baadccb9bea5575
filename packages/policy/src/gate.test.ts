import { describe, expect, it } from '@jest/globals';
import {
  AgentgateError,
  CredentialLease,
  silentLogger,
  type ApprovalBroker,
  type Command,
  type GateSession,
  type PostgresCommand,
  type Redactor,
  type SessionRecorder,
  type TranscriptEvent,
  type Verdict,
} from '@agentgate/core';
import { createGate } from './gate.js';
import { createPolicy } from './policy.js';

/** An in-memory recorder: the gate's only collaborator besides the policy (unit level; the LMDB store is tested on its own). */
function memoryRecorder(
  failing: boolean | 'disk-full' = false,
): SessionRecorder & { events: { type: string; body: Record<string, unknown> }[] } {
  const events: { type: string; body: Record<string, unknown> }[] = [];
  return {
    sessionId: 'S1',
    events,
    append(type, body) {
      if (failing === 'disk-full')
        throw new AgentgateError('RECORDING_FAILED', 'full', { detail: { recordingFailure: 'disk-full' } });
      if (failing) throw new AgentgateError('RECORDING_FAILED', 'map full');
      events.push({ type, body: body as unknown as Record<string, unknown> });
      return {
        session: 'S1',
        seq: events.length,
        ts: Date.now(),
        type,
        prev: '',
        hash: '',
      } as TranscriptEvent;
    },
    io() {},
    end() {},
  };
}

const session = (recorder: SessionRecorder): GateSession => ({
  recorder,
  info: {
    id: 'S1',
    listener: 'build-host',
    protocol: 'ssh',
    identity: { name: 'devin', groups: ['agents'], source: 'token' },
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: Date.now(),
  },
});
/** An SSH exec of one simple command: what `pattern` rules see is its text. */
const cmd = (text: string): Command => ({
  protocol: 'ssh',
  kind: 'exec',
  text,
  simpleCommands: [{ program: text.split(' ')[0]!, argv: text.split(' '), text }],
});
const policy = createPolicy([
  { name: 'no-secrets', match: { pattern: 'secret' }, action: 'deny' },
  { name: 'review', match: { pattern: '^deploy' }, action: 'approve', approvers: ['group:release'] },
]);

describe('gate', () => {
  it('denies every command once the identity behind the session has expired, and records why', async () => {
    const rec = memoryRecorder();
    const t0 = Date.parse('2026-11-26T12:00:00Z');
    let clock = t0;
    const gate = createGate({ policy, approvers: [], log: silentLogger, now: () => clock });
    const s = session(rec);
    const expiring: GateSession = {
      ...s,
      info: { ...s.info, identity: { ...s.info.identity, lease: new CredentialLease(t0 + 60_000) } },
    };
    expect(await gate.check(expiring, cmd('hello'))).toMatchObject({ allowed: true });
    clock = t0 + 60_000;
    const v = await gate.check(expiring, cmd('hello'));
    expect(v).toMatchObject({ allowed: false, code: 'DENIED', rule: 'builtin:token-expired' });
    expect(!v.allowed && v.message).toBe(
      'agentgate: denied by rule builtin:token-expired (the token expired at 2026-11-26T12:01:00.000Z; reconnect with a fresh one)',
    );
    expect(rec.events.at(-1)).toMatchObject({
      type: 'command',
      body: { text: 'hello', decision: { action: 'deny', rule: 'builtin:token-expired' } },
    });
  });

  it('denies every command once the credential behind the session is revoked', async () => {
    const rec = memoryRecorder();
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    const lease = new CredentialLease();
    const s = session(rec);
    const revocable: GateSession = { ...s, info: { ...s.info, identity: { ...s.info.identity, lease } } };
    expect(await gate.check(revocable, cmd('hello'))).toMatchObject({ allowed: true });
    lease.revoke();
    expect(await gate.check(revocable, cmd('hello'))).toMatchObject({
      allowed: false,
      rule: 'builtin:credential-revoked',
    });
  });

  it('records the command with its decision, one event, before answering', async () => {
    const rec = memoryRecorder();
    const gate = createGate({ policy, approvers: ['group:dba'], log: silentLogger });
    expect(await gate.check(session(rec), cmd('hello'))).toEqual({ allowed: true, commandSeq: 1 });
    expect(await gate.check(session(rec), cmd('a secret'))).toMatchObject({
      allowed: false,
      code: 'DENIED',
      rule: 'no-secrets',
      message: 'agentgate: denied by rule no-secrets',
    });
    expect(rec.events.map((e) => e.type)).toEqual(['command', 'command']);
    expect(rec.events[0]!.body['decision']).toEqual({ action: 'allow' });
    expect(rec.events[1]!.body).toMatchObject({
      text: 'a secret',
      decision: { action: 'deny', rule: 'no-secrets', matched: ['no-secrets'] },
    });
  });

  it('records the command members in their order: text, the protocol facts, then the gate’s', async () => {
    const rec = memoryRecorder();
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    const statement = {
      command: 'SELECT',
      tables: ['t'],
      functions: [],
      unfilteredWrite: false,
      text: 'SELECT 1',
      dynamic: false,
    };
    const command: PostgresCommand = {
      protocol: 'postgres',
      text: 'SELECT 1',
      statements: [statement],
      unknownMatchesAll: true,
      detail: { database: 'app', user: 'bench' },
    };
    await gate.check(session(rec), command);
    await gate.check(session(rec), { ...command, unanalysable: 'parse error', recordedText: 'SELECT ?' });
    expect(JSON.stringify(rec.events[0]!.body)).toBe(
      '{"text":"SELECT 1","protocol":"postgres","statements":[' +
        JSON.stringify(statement) +
        '],"detail":{"database":"app","user":"bench"},"decision":{"action":"allow"}}',
    );
    expect(Object.keys(rec.events[1]!.body)).toEqual([
      'text',
      'protocol',
      'statements',
      'unanalysable',
      'detail',
      'decision',
      'redacted',
    ]);
    expect(rec.events[1]!.body['text']).toBe('SELECT ?');
  });

  it('refuses every command when the store cannot record (fail closed), saying why in its own words', async () => {
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    expect(await gate.check(session(memoryRecorder(true)), cmd('hello'))).toEqual({
      allowed: false,
      code: 'RECORDING_FAILED',
      recordingFailure: 'io-error',
      message:
        'agentgate: refused: the transcript store cannot write (I/O error), so this command cannot be recorded',
    });
    expect(await gate.check(session(memoryRecorder('disk-full')), cmd('hello'))).toEqual({
      allowed: false,
      code: 'RECORDING_FAILED',
      recordingFailure: 'disk-full',
      message: 'agentgate: refused: the transcript store is full, so this command cannot be recorded',
    });
  });

  it("answers in the caller's turn when nothing is waited for: no promise for an allow or a deny the store vouches for", () => {
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    const rec = Object.assign(memoryRecorder(), { committed: () => undefined });
    expect(gate.check(session(rec), cmd('hello'))).toEqual({ allowed: true, commandSeq: 1 });
    expect(gate.check(session(rec), cmd('a secret'))).toMatchObject({ allowed: false, commandSeq: 2 });
  });

  it('takes only the seq from a recorder that can answer with it alone (no event object built)', async () => {
    const rec = memoryRecorder();
    const appendSeq: SessionRecorder['appendSeq'] = (type, body) => rec.append(type, body).seq + 100;
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    expect(await gate.check(session({ ...rec, appendSeq }), cmd('hello'))).toEqual({
      allowed: true,
      commandSeq: 101,
    });
  });

  it('lets a command through only once the store says its record is committed, when it cannot vouch for it', async () => {
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    let commit!: () => void;
    const rec = Object.assign(memoryRecorder(), {
      committed: () => new Promise<void>((resolve) => (commit = resolve)),
    });
    let settled = false;
    const pending = gate.check(session(rec), cmd('hello'));
    expect(pending).toBeInstanceOf(Promise);
    const verdict = (pending as Promise<Verdict>).then((v) => ((settled = true), v));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false); // waiting for the commit
    commit();
    expect(await verdict).toMatchObject({ allowed: true });

    const failing = Object.assign(memoryRecorder(), {
      committed: () =>
        Promise.reject(
          new AgentgateError('RECORDING_FAILED', 'write failed', {
            detail: { recordingFailure: 'io-error' },
          }),
        ),
    });
    expect(await gate.check(session(failing), cmd('hello'))).toMatchObject({
      allowed: false,
      code: 'RECORDING_FAILED',
      recordingFailure: 'io-error',
    });
    // A denied command is not waited for: nothing runs.
    const never = Object.assign(memoryRecorder(), { committed: () => new Promise<void>(() => {}) });
    expect(await gate.check(session(never), cmd('a secret'))).toMatchObject({
      allowed: false,
      code: 'DENIED',
    });
  });

  it('without a broker, approve rules deny and say approval is not configured', async () => {
    const gate = createGate({ policy, approvers: [], log: silentLogger });
    const v = await gate.check(session(memoryRecorder()), cmd('deploy'));
    expect(v).toMatchObject({ allowed: false, code: 'APPROVAL_REQUIRED', rule: 'review' });
    expect(v.allowed === false && v.message).toContain('approval is required');
  });

  it('hands approve decisions to the broker with the rule override of approvers', async () => {
    const seen: unknown[] = [];
    const broker = (outcome: 'approved' | 'rejected' | 'expired'): ApprovalBroker => ({
      async request(input) {
        seen.push(input.approvers);
        return { id: 'A1', outcome, by: 'alice', reason: 'ok' };
      },
    });
    const rec = memoryRecorder();
    const ok = await createGate({
      policy,
      broker: broker('approved'),
      approvers: ['group:dba'],
      log: silentLogger,
    }).check(session(rec), cmd('deploy'));
    expect(ok).toMatchObject({ allowed: true, approvalId: 'A1', rule: 'review', commandSeq: 1 });
    expect(seen).toEqual([['group:release']]);
    // The held command is one event too, its decision `approve` (the broker records the approval's events).
    expect(rec.events).toEqual([
      expect.objectContaining({
        type: 'command',
        body: expect.objectContaining({
          decision: { action: 'approve', rule: 'review', matched: ['review'] },
        }),
      }),
    ]);
    const no = await createGate({
      policy,
      broker: broker('expired'),
      approvers: [],
      log: silentLogger,
    }).check(session(memoryRecorder()), cmd('deploy'));
    expect(no).toMatchObject({ allowed: false, code: 'APPROVAL_EXPIRED', approvalId: 'A1' });
    expect(no.allowed === false && no.message).toContain('A1');
  });

  it('refuses an approved command that the rules reloaded while it was held deny', async () => {
    let current = policy;
    const livePolicy = { decide: (...args: Parameters<typeof policy.decide>) => current.decide(...args) };
    const broker: ApprovalBroker = {
      async request() {
        // The operator reloads a deny rule for the command while its request is pending; then it is approved.
        current = createPolicy([{ name: 'stop-deploys', match: { pattern: '^deploy' }, action: 'deny' }]);
        return { id: 'A3', outcome: 'approved', by: 'alice' };
      },
    };
    const gate = createGate({ policy: livePolicy, broker, approvers: [], log: silentLogger });
    const v = await gate.check(session(memoryRecorder()), cmd('deploy prod'));
    expect(v).toMatchObject({ allowed: false, code: 'DENIED', rule: 'stop-deploys', approvalId: 'A3' });
    expect(v.allowed === false && v.message).toBe(
      'agentgate: denied by rule stop-deploys (the rules were reloaded while approval A3 was pending)',
    );
    // Rules reloaded without a deny for it leave the approval standing.
    current = policy;
    const ok = await createGate({
      policy,
      broker: { request: async () => ({ id: 'A4', outcome: 'approved', by: 'alice' }) },
      approvers: [],
      log: silentLogger,
    }).check(session(memoryRecorder()), cmd('deploy prod'));
    expect(ok).toMatchObject({ allowed: true, approvalId: 'A4', rule: 'review' });
  });

  it('records recordedText in place of the text, per statement too, and says so', async () => {
    const rec = memoryRecorder();
    const statement = {
      command: 'CREATE ROLE',
      tables: [],
      functions: [],
      unfilteredWrite: false,
      dynamic: false,
    };
    const command: PostgresCommand = {
      protocol: 'postgres',
      text: "CREATE ROLE x PASSWORD 'hunter2'; SELECT 1",
      recordedText: "CREATE ROLE x PASSWORD '[REDACTED]'; SELECT 1",
      statements: [
        {
          ...statement,
          text: "CREATE ROLE x PASSWORD 'hunter2'",
          recordedText: "CREATE ROLE x PASSWORD '[REDACTED]'",
        },
        { ...statement, command: 'SELECT', text: 'SELECT 1' },
      ],
    };
    // The decision sees the real text: a rule naming the password still matches.
    const gate = createGate({
      policy: createPolicy([{ name: 'no-hunter', match: { pattern: 'hunter2' }, action: 'deny' }]),
      approvers: [],
      log: silentLogger,
    });
    expect(await gate.check(session(rec), command)).toMatchObject({ allowed: false, rule: 'no-hunter' });
    const body = rec.events[0]!.body;
    expect(JSON.stringify(body)).not.toContain('hunter2');
    expect(body).toMatchObject({
      text: "CREATE ROLE x PASSWORD '[REDACTED]'; SELECT 1",
      statements: [{ text: "CREATE ROLE x PASSWORD '[REDACTED]'" }, { text: 'SELECT 1' }],
      redacted: ['builtin:credential-literal'],
    });
    expect(JSON.stringify(body)).not.toContain('recordedText');
  });

  it('shows approvers the redacted text, and decides on the real one', async () => {
    const shown: string[] = [];
    const broker: ApprovalBroker = {
      async request(input) {
        shown.push(input.command.recordedText ?? input.command.text);
        return { id: 'A2', outcome: 'approved', by: 'alice' };
      },
    };
    const redactor: Redactor = {
      active: true,
      text: (value) => ({ value: value.replace('s3cret', '[REDACTED]'), fired: ['test'] }),
      body: (value) => ({ value, fired: [] }),
      stream: () => {
        throw new Error('not used by the gate');
      },
    };
    const gate = createGate({ policy, broker, approvers: [], log: silentLogger, redactor });
    expect(await gate.check(session(memoryRecorder()), cmd('deploy --token s3cret'))).toMatchObject({
      allowed: true,
    });
    expect(shown).toEqual(['deploy --token [REDACTED]']);
  });

  it('a broker fault denies, never allows', async () => {
    const broker: ApprovalBroker = { request: () => Promise.reject(new Error('boom')) };
    const v = await createGate({ policy, broker, approvers: [], log: silentLogger }).check(
      session(memoryRecorder()),
      cmd('deploy'),
    );
    expect(v.allowed).toBe(false);
  });
});
