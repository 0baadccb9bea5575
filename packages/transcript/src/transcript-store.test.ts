import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAgentgateError, recordedDecision } from '@agentgate/core';
import { open } from 'lmdb';
import { encodeEvent, eventKey, recomputeHash } from './event-codec.js';
import { verifyWithJwks } from './signing-key.js';
import {
  appendLegacyDecision,
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../test/test-store.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await makeTempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

describe('transcript store: chain, summaries, verify', () => {
  it('chains events, summarizes sessions and verifies with signed checkpoints', async () => {
    const store = await temp.open();
    const info = sessionInfo();
    const recorder = store.openSession(info, { database: 'app' });
    recorder.append('command', {
      ...commandBody('DROP TABLE users'),
      decision: { action: 'deny', rule: 'no-ddl-drops' },
    });
    recorder.append('command', commandBody('SELECT 1', 'allow'));
    recorder.append('result', { event: 'sql', tag: 'SELECT 1', rows: 1, buffer: Buffer.from('hi') });
    recorder.end({ cause: 'client-left', reason: 'client closed' });
    recorder.end(CLIENT_LEFT_END); // idempotent
    const other = store.openSession(
      sessionInfo({
        protocol: 'ssh',
        listener: 'build-host',
        identity: { name: 'ci', groups: [], source: 'token' },
      }),
    );
    other.end(CLIENT_LEFT_END);
    await store.flush();

    const events = [...store.events(info.id)];
    expect(events.map((e) => e.type)).toEqual([
      'session.start',
      'command',
      'command',
      'result',
      'session.end',
    ]);
    expect(events.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
    let prev = '';
    for (const event of events) {
      expect(event.prev).toBe(prev);
      expect(event.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(recomputeHash(event)).toBe(event.hash);
      prev = event.hash;
    }
    expect(events[0]).toMatchObject({
      listener: 'prod-db',
      protocol: 'postgres',
      identity: 'devin',
      groups: ['agents'],
      database: 'app',
    });
    expect(events[1]!['decision']).toEqual({ action: 'deny', rule: 'no-ddl-drops' });
    expect(events[3]!['buffer']).toBe(Buffer.from('hi').toString('base64'));
    expect(events[4]).toMatchObject({ reason: 'client closed' });

    const summary = store.getSession(info.id);
    expect(summary).toMatchObject({
      id: info.id,
      listener: 'prod-db',
      protocol: 'postgres',
      identity: 'devin',
      commands: 2,
      denied: 1,
    });
    expect(summary?.endedAt).toBe(events[4]!.ts);
    expect(store.listSessions().map((s) => s.id)).toEqual([info.id, other.sessionId].sort());
    expect(store.listSessions({ protocol: 'ssh' }).map((s) => s.identity)).toEqual(['ci']);
    expect(store.listSessions({ identity: 'devin' }).map((s) => s.id)).toEqual([info.id]);

    const checkpoints = [...store.checkpoints(info.id)];
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]).toMatchObject({ session: info.id, seq: 4, hash: events[4]!.hash });
    const payload = JSON.parse(
      (await verifyWithJwks(checkpoints[0]!.jws, temp.signer.publicJwks())).toString(),
    );
    expect(payload).toEqual({ hash: events[4]!.hash, seq: 4, session: info.id });

    const report = await store.verify();
    expect(report).toEqual({
      ok: true,
      sessions: 2,
      events: 7,
      checkpoints: 2,
      problems: [],
      pruned: { sessions: 0, prunes: [] },
    });
    await store.close();
    expect(store.writable).toBe(false);
  });

  it('reads, counts and verifies a store holding both shapes of decision', async () => {
    const store = await temp.open();
    const info = sessionInfo();
    const recorder = store.openSession(info);
    // As earlier releases wrote them: the decision its own event, right after its command.
    const old = recorder.append('command', commandBody('DROP TABLE a'));
    appendLegacyDecision(recorder, { commandSeq: old.seq, action: 'deny', rule: 'no-drops' });
    const oldAllowed = recorder.append('command', commandBody('SELECT 1'));
    appendLegacyDecision(recorder, { commandSeq: oldAllowed.seq, action: 'allow' });
    // As the gate writes them now.
    recorder.append('command', {
      ...commandBody('DROP TABLE b'),
      decision: { action: 'deny', rule: 'no-drops' },
    });
    recorder.append('command', commandBody('SELECT 2', 'allow'));
    await store.flush();
    // While the session is open, a reader in another process counts from the events.
    const reader = await temp.open({ readOnly: true });
    expect(reader.getSession(info.id)).toMatchObject({ commands: 4, denied: 2 });
    await reader.close();
    recorder.end(CLIENT_LEFT_END);
    await store.flush();

    const events = [...store.events(info.id)];
    expect(events.map((e) => e.type)).toEqual([
      'session.start',
      'command',
      'decision',
      'command',
      'decision',
      'command',
      'command',
      'session.end',
    ]);
    expect(events.map(recordedDecision).filter((d) => d !== undefined)).toEqual([
      { commandSeq: 1, action: 'deny', rule: 'no-drops' },
      { commandSeq: 3, action: 'allow' },
      { action: 'deny', rule: 'no-drops', commandSeq: 5 },
      { action: 'allow', commandSeq: 6 },
    ]);
    expect(store.getSession(info.id)).toMatchObject({ commands: 4, denied: 2 });
    expect(await store.verify()).toMatchObject({ ok: true, sessions: 1, events: 8, problems: [] });
    await store.close();
  });

  it('opens read-only for the CLI: same summaries, no writing', async () => {
    const store = await temp.open();
    const info = sessionInfo();
    const recorder = store.openSession(info);
    recorder.append('command', commandBody('SELECT 1'));
    await store.flush();
    // A live session seen from another process: counts come from its events.
    const reader = await temp.open({ readOnly: true });
    expect(reader.writable).toBe(false);
    expect(reader.getSession(info.id)).toMatchObject({ endedAt: null, commands: 1, denied: 0 });
    let code: string | undefined;
    try {
      reader.openSession(sessionInfo());
    } catch (err) {
      code = isAgentgateError(err) ? err.code : 'other';
    }
    expect(code).toBe('RECORDING_FAILED');
    await reader.close();
    recorder.end(CLIENT_LEFT_END);
    await store.close();
  });

  it("stores an ended session's summary with its signed final checkpoint: no reader sees an unsigned end", async () => {
    // A signer that holds each signature until told: the window a slow signer (or a busy machine) leaves open.
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const store = await temp.open({
      signer: {
        ...temp.signer,
        signCompact: async (payload) => (await held, temp.signer.signCompact(payload)),
      },
    });
    const info = sessionInfo();
    const recorder = store.openSession(info);
    recorder.append('command', commandBody('SELECT 1'));
    recorder.end(CLIENT_LEFT_END);
    await sleep(100); // the end event's transaction has committed; its signature has not come
    const during = await temp.open({ readOnly: true });
    expect(during.getSession(info.id)).toMatchObject({ endedAt: null });
    expect((await during.verify()).problems).toEqual([]);
    await during.close();
    release();
    await store.flush();
    const after = await temp.open({ readOnly: true });
    expect(after.getSession(info.id)?.endedAt).toEqual(expect.any(Number));
    const report = await after.verify();
    expect(report.problems).toEqual([]);
    expect(report.checkpoints).toBe(1);
    await after.close();
    await store.close();
  });

  it('refuses a duplicate session id', async () => {
    const store = await temp.open();
    const info = sessionInfo();
    const live = store.openSession(info);
    expect(() => store.openSession(info)).toThrow(
      expect.objectContaining({ code: 'CONFLICT' }) as unknown as Error,
    );
    live.end(CLIENT_LEFT_END);
    await store.flush();
    expect(() => store.openSession(info)).toThrow(
      expect.objectContaining({ code: 'CONFLICT' }) as unknown as Error,
    );
    await store.close();
  });

  it('signs periodic checkpoints for sessions with new events', async () => {
    const store = await temp.open({ checkpointIntervalMs: 40 });
    const info = sessionInfo();
    const recorder = store.openSession(info);
    recorder.append('command', commandBody('one'));
    await sleep(120);
    await store.flush();
    const first = [...store.checkpoints(info.id)];
    expect(first.map((c) => c.seq)).toEqual([1]);
    await sleep(100); // no new events: no new checkpoint
    recorder.append('command', commandBody('two'));
    await sleep(120);
    await store.flush();
    expect([...store.checkpoints(info.id)].map((c) => c.seq)).toEqual([1, 2]);
    recorder.end(CLIENT_LEFT_END);
    await store.close();
  });
});

describe('space reserve (failMode closed)', () => {
  it('commands the reserve vouches for run at once; in a burst beyond it they wait for their commit', async () => {
    const store = await temp.open({ reserveBytes: 1 << 20 });
    const info = sessionInfo();
    const recorder = store.openSession(info);
    await store.flush();
    const text = 'INSERT INTO t VALUES (' + 'x'.repeat(50_000) + ')';
    // One burst, no commit in between: the first commands fit in the reserve, the later ones must wait.
    const waits: (Promise<void> | undefined)[] = [];
    for (let i = 0; i < 20; i++) {
      recorder.append('command', commandBody(text, 'allow'));
      waits.push(recorder.committed?.());
    }
    expect(waits[0]).toBeUndefined();
    const firstWait = waits.findIndex((w) => w !== undefined);
    expect(firstWait).toBeGreaterThan(0);
    expect(waits.slice(firstWait).every((w) => w !== undefined)).toBe(true);
    expect(store.writable).toBe(true); // the disk has room: nothing is refused
    await Promise.all(waits);
    // Settled means committed: a reader sees every command.
    expect([...store.events(info.id)].filter((e) => e.type === 'command')).toHaveLength(20);
    // Once committed and the reserve topped up, commands fit again.
    await store.flush();
    recorder.append('command', commandBody('SELECT 1'));
    expect(recorder.committed?.()).toBeUndefined();
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    expect(await store.verify()).toMatchObject({ ok: true, checkpoints: 1 });
    expect(store.health.writeErrors).toBe(0);
    await store.close();
  });

  it('is not used with failMode open or read-only: nothing is preallocated', async () => {
    const store = await temp.open({ failMode: 'open' });
    store.openSession(sessionInfo()).end(CLIENT_LEFT_END);
    await store.close();
    const { size } = await stat(join(temp.storePath, 'data.mdb'));
    expect(size).toBeLessThan(1 << 20);
  });
});

describe('stores from before the iodata db', () => {
  it('open read-only, read and verify (their io events carry data inline)', async () => {
    // Build the old layout by hand: the five string dbs, one session whose io event has inline base64 data.
    const env = open<string, string>({ path: temp.storePath, encoding: 'string' });
    const dbs = Object.fromEntries(
      ['events', 'sessions', 'ends', 'checkpoints', 'meta'].map((name) => [
        name,
        env.openDB<string, string>(name, { encoding: 'string' }),
      ]),
    );
    const id = 'OLD1';
    const start = encodeEvent(id, 0, 1, 'session.start', '', { protocol: 'ssh' });
    const io = encodeEvent(id, 1, 2, 'io', start.event.hash, { direction: 'out', bytes: 2, data: 'aGk=' });
    dbs['sessions']!.putSync(id, JSON.stringify({ id, protocol: 'ssh', identity: 'x', startedAt: 1 }));
    dbs['events']!.putSync(eventKey(id, 0), start.stored);
    dbs['events']!.putSync(eventKey(id, 1), io.stored);
    await env.close();

    const store = await temp.open({ readOnly: true });
    const events = [...store.events(id)];
    expect(events[1]).toMatchObject({ type: 'io', data: 'aGk=' });
    expect(await store.verify()).toMatchObject({ ok: true, sessions: 1, events: 2 });
    await store.close();
  });
});
