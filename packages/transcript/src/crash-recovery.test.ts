import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import type { TranscriptEvent } from '@agentgate/core';
import { truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { open, type Database } from 'lmdb';
import { eventKey } from './event-codec.js';
import {
  appendLegacyDecision,
  approvalRequested,
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

/** Remove records directly, as a crash between two writes leaves them missing. */
async function remove(db: 'ends' | 'checkpoints' | 'events', key: string): Promise<void> {
  const env = open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 });
  const target: Database<string, string> = env.openDB(db, { encoding: 'string' });
  target.removeSync(key);
  await env.close();
}

describe('crash recovery', () => {
  it('expires pending approvals and ends sessions a crash left open', async () => {
    let store = await temp.open();
    const info = sessionInfo();
    const recorder = store.openSession(info);
    // A denial as earlier releases recorded it (its own event), and one as the gate records it now.
    recorder.append('command', commandBody('DELETE FROM users'));
    appendLegacyDecision(recorder, { commandSeq: 1, action: 'deny' });
    recorder.append('command', commandBody('DROP TABLE users', 'deny'));
    recorder.append('approval.requested', approvalRequested('ap-1'));
    recorder.append('approval.requested', approvalRequested('ap-2'));
    recorder.append('approval.decided', {
      approvalId: 'ap-2',
      outcome: 'approved',
      by: 'alice',
      reason: null,
    });
    await store.close(); // no end(): as after a crash
    store = await temp.open();
    expect(store.getSession(info.id)?.endedAt).toBeNull();
    expect(await store.recoverInterrupted()).toBe(1);
    const events: TranscriptEvent[] = [...store.events(info.id)];
    expect(events.slice(-2)).toEqual([
      expect.objectContaining({
        type: 'approval.decided',
        approvalId: 'ap-1',
        outcome: 'expired',
        reason: 'gateway restarted',
      }),
      expect.objectContaining({ type: 'session.end', reason: 'gateway restarted' }),
    ]);
    // the denied decisions of both shapes, and the approval that expired with the restart
    expect(store.getSession(info.id)).toMatchObject({
      commands: 2,
      denied: 3,
      endReason: 'gateway restarted',
    });
    expect(store.getSession(info.id)?.endedAt).toEqual(expect.any(Number));
    expect((await store.verify()).ok).toBe(true);
    expect(await store.recoverInterrupted()).toBe(0);
    await store.close();
  });

  it('ends a session whose session.start never reached the disk as empty', async () => {
    let store = await temp.open();
    const info = sessionInfo();
    store.openSession(info);
    await store.close();
    await remove('events', eventKey(info.id, 0));
    store = await temp.open();
    expect(await store.recoverInterrupted()).toBe(1);
    expect(store.getSession(info.id)).toMatchObject({ commands: 0, endReason: 'gateway restarted' });
    expect([...store.events(info.id)]).toEqual([]);
    expect(await store.verify()).toMatchObject({ ok: true, sessions: 1, events: 0 });
    await store.close();
  });

  it('completes an end cut short after session.end: only the summary and the checkpoint are written', async () => {
    let store = await temp.open();
    const info = sessionInfo();
    const recorder = store.openSession(info);
    recorder.append('command', commandBody('SELECT 1'));
    recorder.end({ cause: 'client-left', reason: 'client closed' });
    await store.close();
    await remove('ends', info.id);
    await remove('checkpoints', eventKey(info.id, 2));
    store = await temp.open();
    expect(store.getSession(info.id)?.endedAt).toBeNull();
    expect(await store.recoverInterrupted()).toBe(1);
    const events = [...store.events(info.id)];
    expect(events.map((e) => e.type)).toEqual(['session.start', 'command', 'session.end']);
    expect(store.getSession(info.id)).toMatchObject({
      endedAt: events[2]!.ts,
      commands: 1,
      endReason: 'client closed',
    });
    expect([...store.checkpoints(info.id)].map((c) => c.seq)).toEqual([2]);
    expect(await store.verify()).toMatchObject({ ok: true, checkpoints: 1 });
    await store.close();
  });

  it('signs a final checkpoint the crash left unsigned, without counting the session as recovered', async () => {
    let store = await temp.open();
    const info = sessionInfo();
    store.openSession(info).end(CLIENT_LEFT_END);
    await store.close();
    await remove('checkpoints', eventKey(info.id, 1));
    store = await temp.open({ readOnly: true });
    expect((await store.verify()).problems.map((p) => p.kind)).toEqual(['unsigned']);
    await store.close();
    store = await temp.open();
    expect(await store.recoverInterrupted()).toBe(0);
    expect(await store.verify()).toMatchObject({ ok: true, checkpoints: 1 });
    await store.close();
  });

  it('refuses to recover in a read-only store (failMode closed)', async () => {
    let store = await temp.open();
    store.openSession(sessionInfo());
    await store.close();
    store = await temp.open({ readOnly: true });
    await expect(store.recoverInterrupted()).rejects.toMatchObject({ code: 'RECORDING_FAILED' });
    await store.close();
  });

  it('refuses a store restored from a copy cut short, with a message instead of dying on its missing pages', async () => {
    const store = await temp.open();
    const recorder = store.openSession(sessionInfo());
    for (let i = 0; i < 8; i++) recorder.io('out', Buffer.alloc(64 << 10, 0x41 + i));
    recorder.end(CLIENT_LEFT_END);
    await store.close();
    const env = open<string, string>({ path: temp.storePath, encoding: 'string', readOnly: true });
    const { lastPageNumber, pageSize } = env.getStats() as { lastPageNumber: number; pageSize: number };
    await env.close();
    // Half the pages the meta page names: before, opening it died by SIGBUS (the whole test process).
    await truncate(join(temp.storePath, 'data.mdb'), ((lastPageNumber + 1) * pageSize) >> 1);
    await expect(temp.open()).rejects.toThrow(/is incomplete: its data file lacks \d+ bytes of its pages/);
    await expect(temp.open({ readOnly: true })).rejects.toThrow(/is incomplete/);
    // The refused writer released its lock: a second try says the same, not "in use by another process".
    await expect(temp.open()).rejects.toThrow(/is incomplete/);
  });
});
