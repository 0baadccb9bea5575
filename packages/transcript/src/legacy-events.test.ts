import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import type { AdminSessionInfo, TranscriptEvent } from '@agentgate/core';
import { exportJsonl } from './exporters.js';
import { makeTempStore, sessionInfo, type TempStore } from '../test/test-store.js';

/** Bodies as the previous release wrote them: the typed API no longer lets anyone write these. */
const old = (body: Record<string, unknown>): never => body as never;

describe('events written by the previous release', () => {
  let temp: TempStore;
  beforeEach(async () => {
    temp = await makeTempStore();
  });
  afterEach(async () => {
    await temp.cleanup();
  });

  it('read back in today’s spellings, while their bytes, hashes and exports stay as written', async () => {
    const store = await temp.open();
    const info = sessionInfo();
    const recorder = store.openSession(info);
    recorder.append(
      'approval.requested',
      old({ id: 'AP1', rule: 'r', command: 'DELETE FROM t', approvers: [], requestedAt: 1, expiresAt: 2 }),
    );
    recorder.append(
      'approval.decided',
      old({ id: 'AP1', outcome: 'cancelled', by: null, reason: 'the client left' }),
    );
    recorder.append('notice', old({ kind: 'recording-gap', since: 1, reason: 'ENOSPC' }));
    recorder.append('result', old({ kind: 'stream-end', bytesIn: 1, bytesOut: 2 }));
    recorder.end(old({ reason: 'client disconnected' }));
    // An administrative action as the previous release recorded it: an `ssh` session with an OIDC identity.
    const admin: AdminSessionInfo = {
      ...sessionInfo({ listener: 'admin', client: { address: 'admin', local: true, tls: false } }),
      protocol: 'admin',
    };
    const adminRecorder = store.openSession({ ...admin, protocol: 'ssh' as 'admin' }, old({ admin: true }));
    adminRecorder.end(old({ reason: 'admin action recorded' }));
    await store.flush();

    const events = [...store.events(info.id)];
    const body = (e: TranscriptEvent | undefined) => {
      const { session: _s, seq: _q, ts: _t, prev: _p, hash: _h, ...rest } = e!;
      return rest;
    };
    expect(body(events[1])).toEqual({
      type: 'approval.requested',
      approvalId: 'AP1',
      rule: 'r',
      command: 'DELETE FROM t',
      approvers: [],
      requestedAt: 1,
      expiresAt: 2,
    });
    expect(body(events[2])).toMatchObject({
      type: 'approval.decided',
      approvalId: 'AP1',
      outcome: 'cancelled',
    });
    expect(events[2]).not.toHaveProperty('id');
    expect(body(events[3])).toEqual({ type: 'notice', event: 'recording-gap', since: 1, reason: 'ENOSPC' });
    expect(body(events[4])).toEqual({ type: 'result', event: 'stream.end', bytesIn: 1, bytesOut: 2 });
    expect(body(events[5])).toEqual({ type: 'session.end', cause: 'unknown', reason: 'client disconnected' });
    const adminStart = [...store.events(admin.id)][0]!;
    expect(adminStart).toMatchObject({ type: 'session.start', protocol: 'admin' });
    expect(adminStart).not.toHaveProperty('admin');
    expect(store.getSession(admin.id)?.protocol).toBe('admin');
    expect(store.listSessions({ protocol: 'admin' }).map((s) => s.id)).toEqual([admin.id]);

    // The record itself is unchanged: it verifies, and an export carries the bytes as they were hashed.
    expect((await store.verify()).ok).toBe(true);
    const lines = [...exportJsonl(store.events(info.id))];
    expect(lines[1]).toContain('"id":"AP1"');
    expect(lines[3]).toContain('"kind":"recording-gap"');
    await store.close();
  });

  it('reads a session the crash recovery ended as interrupted', async () => {
    let store = await temp.open();
    const info = sessionInfo();
    store.openSession(info);
    await store.close(); // never ended: as after a crash
    store = await temp.open();
    expect(await store.recoverInterrupted()).toBe(1);
    await store.flush();
    expect([...store.events(info.id)].at(-1)).toMatchObject({
      type: 'session.end',
      cause: 'interrupted',
      reason: 'gateway restarted',
    });
    await store.close();
  });
});
