import { describe, expect, it } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { CredentialLease } from './credential-lease.js';
import { AgentgateError } from './errors.js';
import type { Gate, Verdict } from './gate.js';
import type { Identity } from './identity.js';
import type { Logger } from './log.js';
import type { SessionMetrics } from './metrics.js';
import { SHUTDOWN, causeOf } from './session-end.js';
import { createSessionLifecycles, type OpenSessionOptions } from './session-lifecycle.js';
import type { SessionRecorder, TranscriptEvent, TranscriptWriter } from './transcript.js';

interface Recorded {
  readonly type: string;
  readonly body: Record<string, unknown>;
}

/** An in-memory store: what the lifecycle recorded, and a switch for the store losing a session's recording. */
function memoryStore(options: { failOpen?: boolean } = {}) {
  const events: Recorded[] = [];
  const lost = new AbortController();
  const transcript: TranscriptWriter = {
    writable: true,
    failMode: 'closed',
    openSession(info, detail) {
      if (options.failOpen === true)
        throw new AgentgateError('RECORDING_FAILED', 'agentgate: transcript store not writable');
      events.push({ type: 'session.start', body: { protocol: info.protocol, ...detail } });
      const recorder: SessionRecorder = {
        sessionId: info.id,
        recordingLost: lost.signal,
        append(type, body) {
          events.push({ type, body });
          return { session: info.id, seq: events.length, ts: 0, type, prev: '', hash: '' } as TranscriptEvent;
        },
        io() {},
        end(body) {
          events.push({ type: 'session.end', body });
        },
      };
      return recorder;
    },
  };
  return { events, transcript, loseRecording: () => lost.abort() };
}

function countingMetrics() {
  const counts = { connections: 0, started: 0, ended: 0 };
  const metrics: SessionMetrics = {
    connectionOpened: () => counts.connections++,
    sessionStarted: () => counts.started++,
    sessionEnded: () => counts.ended++,
  };
  return { counts, metrics };
}

function capturingLog() {
  const lines: { level: string; msg: string }[] = [];
  const log: Logger = {
    debug: (msg) => lines.push({ level: 'debug', msg }),
    info: (msg) => lines.push({ level: 'info', msg }),
    warn: (msg) => lines.push({ level: 'warn', msg }),
    error: (msg) => lines.push({ level: 'error', msg }),
    child: () => log,
  };
  return { lines, log };
}

/** A gate that allows at once, or holds until its signal aborts and answers with the cause it was given. */
function holdingGate(): Gate & { calls: number } {
  const gate = {
    calls: 0,
    check(_session: unknown, command: { text: string }, signal?: AbortSignal): Promise<Verdict> {
      gate.calls++;
      if (!command.text.startsWith('hold')) return Promise.resolve({ allowed: true, commandSeq: gate.calls });
      return new Promise((resolve) => {
        signal?.addEventListener('abort', () =>
          resolve({
            allowed: false,
            code: 'APPROVAL_CANCELLED',
            message: `cancelled: ${causeOf(signal.reason).kind}`,
          }),
        );
      });
    },
  };
  return gate;
}

const command = (text: string) => ({
  protocol: 'ssh' as const,
  kind: 'exec' as const,
  text,
  simpleCommands: [],
});

function setup(
  options: {
    lease?: CredentialLease;
    gate?: Gate;
    failOpen?: boolean;
    signal?: AbortSignal;
  } = {},
) {
  const store = memoryStore({ failOpen: options.failOpen ?? false });
  const { counts, metrics } = countingMetrics();
  const { lines, log } = capturingLog();
  const gate = options.gate ?? holdingGate();
  const lifecycles = createSessionLifecycles({ gate, transcript: store.transcript, metrics });
  const connection = new AbortController();
  const identity: Identity = {
    name: 'devin',
    groups: ['agents'],
    source: 'oidc',
    ...(options.lease ? { lease: options.lease } : {}),
  };
  const openOptions: OpenSessionOptions = {
    listener: 'build-host',
    protocol: 'ssh',
    identity,
    client: { address: '127.0.0.1', local: true, tls: false },
    detail: { username: 'agent' },
    signal: options.signal ?? connection.signal,
    log,
  };
  return { store, counts, lines, gate, lifecycles, connection, identity, openOptions };
}

const errorsOf = (events: readonly Recorded[]) => events.filter((e) => e.type === 'error');
const endsOf = (events: readonly Recorded[]) => events.filter((e) => e.type === 'session.end');

describe('session lifecycle', () => {
  it('opens the recorded session, counts it once, and ends it exactly once', () => {
    const { store, counts, lifecycles, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    expect(store.events[0]).toEqual({ type: 'session.start', body: { protocol: 'ssh', username: 'agent' } });
    expect(session.info).toMatchObject({
      listener: 'build-host',
      protocol: 'ssh',
      identity: { name: 'devin' },
    });
    expect(counts).toEqual({ connections: 0, started: 1, ended: 0 });
    expect(session.ended.aborted).toBe(false);
    session.end();
    session.end({ kind: 'failed', message: 'later' });
    expect(endsOf(store.events)).toEqual([
      { type: 'session.end', body: { cause: 'client-left', reason: 'the client left' } },
    ]);
    expect(session.ended.reason).toEqual({ kind: 'client-left' });
    expect(counts).toEqual({ connections: 0, started: 1, ended: 1 });
  });

  it('refuses the session when the store cannot record it, counting nothing', () => {
    const { counts, lifecycles, openOptions } = setup({ failOpen: true });
    expect(() => lifecycles.open(openOptions)).toThrow(expect.objectContaining({ code: 'RECORDING_FAILED' }));
    expect(counts).toEqual({ connections: 0, started: 0, ended: 0 });
  });

  it('ends when the credential expires: recorded and logged once, the end names it', async () => {
    const lease = new CredentialLease(Date.now() + 60);
    const { store, counts, lines, lifecycles, openOptions } = setup({ lease });
    const session = lifecycles.open(openOptions);
    const reasons: unknown[] = [];
    session.ended.addEventListener('abort', () => reasons.push(session.ended.reason));
    await sleep(150);
    const expiredAt = new Date(lease.expiresAtMs!).toISOString();
    expect(reasons).toEqual([{ kind: 'credential-expired', expiredAt }]);
    // The engine closes natively, the client's socket closes after: the end still names the expiry.
    session.end();
    expect(errorsOf(store.events)).toEqual([
      { type: 'error', body: { event: 'identity.expired', expiredAt } },
    ]);
    expect(endsOf(store.events)).toEqual([
      {
        type: 'session.end',
        body: { cause: 'credential-expired', reason: `the credential expired at ${expiredAt}`, expiredAt },
      },
    ]);
    expect(lines.filter((l) => l.level === 'info' && l.msg.startsWith('session ends'))).toHaveLength(1);
    expect(counts.ended).toBe(1);
  });

  it('lives on when its lease is renewed before it expires, and ends at the renewed time', async () => {
    const lease = new CredentialLease(Date.now() + 60);
    const { lifecycles, openOptions } = setup({ lease });
    const session = lifecycles.open(openOptions);
    await sleep(20);
    lease.renew(Date.now() + 200);
    await sleep(120);
    expect(session.ended.aborted).toBe(false);
    await sleep(200);
    expect(session.ended.reason).toMatchObject({ kind: 'credential-expired' });
    session.end();
  });

  it('ends every session made with a credential when it is revoked, renewals included', async () => {
    const lease = new CredentialLease(Date.now() + 60_000);
    const { store, lifecycles, openOptions } = setup({ lease });
    const before = lifecycles.open(openOptions);
    lease.renew(Date.now() + 120_000);
    const after = lifecycles.open(openOptions);
    lease.revoke();
    expect(before.ended.reason).toEqual({ kind: 'credential-revoked' });
    expect(after.ended.reason).toEqual({ kind: 'credential-revoked' });
    before.end();
    after.end();
    expect(errorsOf(store.events)).toEqual([
      { type: 'error', body: { event: 'identity.revoked' } },
      { type: 'error', body: { event: 'identity.revoked' } },
    ]);
    expect(endsOf(store.events).map((e) => e.body['cause'])).toEqual([
      'credential-revoked',
      'credential-revoked',
    ]);
  });

  it('ends when the store loses its recording: logged as an error once, nothing appended for it', () => {
    const { store, lines, lifecycles, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    store.loseRecording();
    expect(session.ended.reason).toEqual({ kind: 'recording-lost' });
    expect(errorsOf(store.events)).toEqual([]);
    expect(lines.filter((l) => l.level === 'error')).toEqual([
      { level: 'error', msg: 'session ends: the transcript store refuses its bytes' },
    ]);
    session.end();
    expect(endsOf(store.events)[0]?.body).toMatchObject({ cause: 'recording-lost' });
  });

  it('ends at shutdown, withdrawing a held decision with that cause', async () => {
    const { store, lifecycles, connection, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    const held = session.decide(command('hold deploy'));
    await sleep(5);
    connection.abort(SHUTDOWN);
    expect(await held).toMatchObject({ allowed: false, message: 'cancelled: shutdown' });
    expect(session.ended.reason).toEqual({ kind: 'shutdown' });
    session.end();
    expect(errorsOf(store.events)).toEqual([]);
    expect(endsOf(store.events)[0]?.body).toEqual({
      cause: 'shutdown',
      reason: 'the gateway is shutting down',
    });
  });

  it('ends at once when the connection was already told to stop', async () => {
    const stop = new AbortController();
    stop.abort(SHUTDOWN);
    const { lifecycles, openOptions } = setup({ signal: stop.signal });
    const session = lifecycles.open(openOptions);
    expect(session.ended.aborted).toBe(false); // the engine attaches its listener first
    await sleep(0);
    expect(session.ended.reason).toEqual({ kind: 'shutdown' });
    session.end();
  });

  it('is ended by an administrator: recorded once with who and why, then forgotten', () => {
    const { store, counts, lifecycles, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    const alice = { by: 'alice', byGroups: ['admins'], via: 'console', reason: 'maintenance' };
    expect(lifecycles.terminate('no-such-session', alice)).toBe(false);
    expect(lifecycles.terminate(session.info.id, alice)).toBe(true);
    expect(lifecycles.terminate(session.info.id, { by: 'bob' })).toBe(true); // open until the engine closes it
    expect(session.ended.reason).toEqual({ kind: 'terminated', ...alice });
    session.end();
    expect(lifecycles.terminate(session.info.id, alice)).toBe(false);
    expect(errorsOf(store.events)).toEqual([
      {
        type: 'error',
        body: {
          event: 'session.terminated',
          by: 'alice',
          byGroups: ['admins'],
          via: 'console',
          reason: 'maintenance',
        },
      },
    ]);
    expect(endsOf(store.events)[0]?.body).toEqual({
      cause: 'terminated',
      reason: 'ended by admin alice: maintenance',
      by: 'alice',
    });
    expect(counts).toEqual({ connections: 0, started: 1, ended: 1 });
  });

  it('ends each open session a pick names, with its own termination, and counts them', () => {
    const { lifecycles, openOptions, identity } = setup();
    const kept = lifecycles.open(openOptions);
    const other = { ...identity, name: 'mallory' };
    const endedOne = lifecycles.open({ ...openOptions, identity: other });
    const pick = (info: { identity: Identity }) =>
      info.identity.name === 'mallory' ? { by: 'operator', reason: 'mallory is out' } : undefined;
    expect(lifecycles.terminateEach(pick)).toBe(1);
    expect(endedOne.ended.reason).toEqual({ kind: 'terminated', by: 'operator', reason: 'mallory is out' });
    expect(kept.ended.aborted).toBe(false);
    endedOne.end();
    kept.end();
    expect(lifecycles.terminateEach(pick)).toBe(0);
  });

  it('turns a gate that throws into the one refusal: RECORDING_FAILED for the store, INTERNAL otherwise', async () => {
    let failure: Error = new AgentgateError('RECORDING_FAILED', 'map full');
    const gate: Gate = { check: () => Promise.reject(failure) };
    const { lines, lifecycles, openOptions } = setup({ gate });
    const session = lifecycles.open(openOptions);
    expect(await session.decide(command('ls'))).toEqual({
      allowed: false,
      code: 'RECORDING_FAILED',
      recordingFailure: 'io-error',
      message:
        'agentgate: refused: the transcript store cannot write (I/O error), so this command cannot be recorded',
    });
    failure = new TypeError('a bug');
    expect(await session.decide(command('ls'))).toEqual({
      allowed: false,
      code: 'INTERNAL',
      message: 'agentgate: refused: the command could not be decided (internal error)',
    });
    expect(lines.filter((l) => l.msg === 'gate check failed')).toHaveLength(2);
    session.end();
  });

  it("decideNow answers in the caller's turn when the gate did, and a gate that throws there is refused the same way", async () => {
    let failure: Error | undefined;
    const gate: Gate = {
      check: (_session, cmd) => {
        if (failure) throw failure;
        return { allowed: true, commandSeq: cmd.text.length };
      },
    };
    const { lines, lifecycles, openOptions } = setup({ gate });
    const session = lifecycles.open(openOptions);
    expect(session.decideNow(command('ls'))).toEqual({ allowed: true, commandSeq: 2 });
    // decide still promises its verdict, for engines that await it
    const promised = session.decide(command('pwd'));
    expect(promised).toBeInstanceOf(Promise);
    expect(await promised).toEqual({ allowed: true, commandSeq: 3 });
    failure = new TypeError('a bug');
    expect(session.decideNow(command('ls'))).toMatchObject({ allowed: false, code: 'INTERNAL' });
    // nothing is left pending: a withdraw now has nothing to cancel, and the next decision is asked afresh
    failure = undefined;
    session.withdrawPending({ kind: 'cancelled' });
    expect(session.decideNow(command('ls'))).toEqual({ allowed: true, commandSeq: 2 });
    expect(lines.filter((l) => l.msg === 'gate check failed')).toHaveLength(1);
    session.end();
  });

  it('withdraws the decisions pending now without ending, and later ones are asked afresh', async () => {
    const { lifecycles, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    const held = session.decide(command('hold one'));
    await sleep(5);
    session.withdrawPending({ kind: 'cancelled' });
    expect(await held).toMatchObject({ message: 'cancelled: cancelled' });
    expect(session.ended.aborted).toBe(false);
    expect(await session.decide(command('ls'))).toMatchObject({ allowed: true });
    // A channel's own signal withdraws too, with whatever it names (here: nothing, so the client left).
    const channel = new AbortController();
    const inChannel = session.decide(command('hold two'), channel.signal);
    await sleep(5);
    channel.abort();
    expect(await inChannel).toMatchObject({ message: 'cancelled: client-left' });
    session.end();
  });

  it('links a connection signal once for its decisions one after another, and still withdraws through it', async () => {
    const { lifecycles, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    const connection = new AbortController();
    const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;
    for (let i = 0; i < 100; i++)
      expect(await session.decide(command('ls'), connection.signal)).toMatchObject({ allowed: true });
    expect(listeners(connection.signal)).toBe(1);
    // Reused after a withdrawal (a fresh withdraw signal) and after decisions on another signal.
    const first = session.decide(command('hold one'), connection.signal);
    await sleep(5);
    session.withdrawPending({ kind: 'cancelled' });
    expect(await first).toMatchObject({ message: 'cancelled: cancelled' });
    const other = new AbortController();
    expect(await session.decide(command('ls'), other.signal)).toMatchObject({ allowed: true });
    expect(listeners(connection.signal)).toBe(0);
    expect(await session.decide(command('ls'), connection.signal)).toMatchObject({ allowed: true });
    expect(listeners(other.signal)).toBe(0);
    // Two waiting side by side on one signal, then another signal while they wait: each is withdrawn by its own.
    const a = session.decide(command('hold a'), connection.signal);
    const b = session.decide(command('hold b'), connection.signal);
    const c = session.decide(command('hold c'), other.signal);
    await sleep(5);
    connection.abort();
    expect(await a).toMatchObject({ message: 'cancelled: client-left' });
    expect(await b).toMatchObject({ message: 'cancelled: client-left' });
    expect(listeners(other.signal)).toBe(1);
    other.abort(SHUTDOWN);
    expect(await c).toMatchObject({ message: 'cancelled: shutdown' });
    expect(listeners(connection.signal)).toBe(0);
    expect(listeners(other.signal)).toBe(0);
    // The link kept for the next decision goes with the session.
    const last = new AbortController();
    expect(await session.decide(command('ls'), last.signal)).toMatchObject({ allowed: true });
    expect(listeners(last.signal)).toBe(1);
    session.end();
    expect(listeners(last.signal)).toBe(0);
  });

  it('continues as a refreshed credential of the same identity, and refuses another identity', async () => {
    const old = new CredentialLease(Date.now() + 50);
    const { lifecycles, openOptions, identity } = setup({ lease: old });
    const session = lifecycles.open(openOptions);
    const refreshed: Identity = { ...identity, lease: new CredentialLease(Date.now() + 60_000) };
    session.continueAs(refreshed);
    expect(session.info.identity).toBe(refreshed);
    await sleep(120);
    expect(session.ended.aborted).toBe(false);
    expect(() => session.continueAs({ ...identity, name: 'mallory' })).toThrow(
      expect.objectContaining({ code: 'INTERNAL' }),
    );
    session.end();
  });

  it('records through `record`, logging a store failure instead of throwing it', () => {
    const { store, lines, lifecycles, openOptions } = setup();
    const session = lifecycles.open(openOptions);
    session.record('notice', { event: 'channel.open', channel: 'ch1' });
    expect(store.events.at(-1)).toEqual({ type: 'notice', body: { event: 'channel.open', channel: 'ch1' } });
    const failing = { ...session.recorder };
    session.recorder.append = () => {
      throw new AgentgateError('RECORDING_FAILED', 'disk full');
    };
    expect(() => session.record('notice', { event: 'x' })).not.toThrow();
    expect(lines.at(-1)).toEqual({ level: 'error', msg: 'transcript append failed' });
    Object.assign(session.recorder, failing);
    session.end();
  });
});

describe('credential lease', () => {
  it('tells each watcher once, re-arms on renewal, and shows its end in JSON', async () => {
    const lease = new CredentialLease(Date.now() + 40);
    const seen: string[] = [];
    const stop = lease.watch((end) => seen.push(`a:${end.kind}`));
    lease.watch((end) => seen.push(`b:${end.kind}`));
    stop();
    lease.renew(Date.now() + 80);
    await sleep(50);
    expect(seen).toEqual([]);
    await sleep(80);
    expect(seen).toEqual(['b:expired']);
    lease.revoke();
    expect(seen).toEqual(['b:expired']);
    expect(lease.lapse(Date.now())).toEqual({ kind: 'revoked' });
    expect(JSON.parse(JSON.stringify({ lease }))).toEqual({
      lease: { expiresAt: new Date(lease.expiresAtMs!).toISOString(), revoked: true },
    });
  });

  it('a lease without an end lapses only by revocation, and a revoked one tells new watchers too', async () => {
    const lease = new CredentialLease();
    expect(lease.lapse(Number.MAX_SAFE_INTEGER)).toBeUndefined();
    lease.revoke();
    const seen: string[] = [];
    lease.watch((end) => seen.push(end.kind));
    expect(seen).toEqual([]); // never from inside watch()
    await sleep(5);
    expect(seen).toEqual(['revoked']);
  });
});
