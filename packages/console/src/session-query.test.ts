import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId, type EventBody, type SessionEndBody, type SessionInfo } from '@agentgate/core';
import {
  loadOrCreateSigningKey,
  openSessionIndex,
  openTranscriptStore,
  type SessionIndex,
  type TranscriptStore,
} from '@agentgate/transcript';
import { IndexedSessionQuery } from './session-query.js';

const CLIENT_LEFT_END: SessionEndBody = { cause: 'client-left', reason: 'the client left' };
const commandBody = (text: string): EventBody['command'] => ({
  protocol: 'ssh',
  kind: 'exec',
  text,
  simpleCommands: [],
});

let dir: string;
let store: TranscriptStore;
let index: SessionIndex;
afterEach(async () => {
  await index.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function setUp(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-session-query-'));
  const signer = await loadOrCreateSigningKey(join(dir, 'key.json'));
  store = await openTranscriptStore({
    path: join(dir, 'store'),
    failMode: 'closed',
    checkpointIntervalMs: 0,
    signer,
  });
  index = await openSessionIndex({ store, path: join(dir, 'index'), settleMs: 0 });
}

function info(listener: string): SessionInfo {
  return {
    id: newId(),
    listener,
    protocol: 'postgres',
    identity: { name: 'devin', groups: ['agents'], source: 'token' },
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: Date.now(),
  };
}

describe('the console over the session index', () => {
  it('lists active sessions as the live ones not ended, and reads a session the index has not reached from the store', async () => {
    await setUp();
    const running = store.openSession(info('db'));
    running.append('command', commandBody('SELECT pg_sleep(60)'));
    const stale = store.openSession(info('db')); // not ended, but not running here (as after a crash)
    const ended = store.openSession(info('db'));
    ended.end(CLIENT_LEFT_END);
    await store.flush();
    expect(await index.caughtUp()).toBe(true);
    const live = new Set([running.sessionId, ended.sessionId]);
    const query = new IndexedSessionQuery(
      index,
      (id) => live.has(id),
      (id) => store.getSession(id),
    );

    expect(query.listNow({}, { limit: 10 }).items.map((s) => s.id)).toEqual([
      ended.sessionId,
      stale.sessionId,
      running.sessionId,
    ]);
    expect(query.listNow({ activeNow: true }, { limit: 10 }).items.map((s) => s.id)).toEqual([
      running.sessionId,
    ]);
    expect(query.searchNow('pg_sleep', { activeNow: true }, { limit: 10 }).items.map((s) => s.id)).toEqual([
      running.sessionId,
    ]);
    expect(query.behind()).toBe(0);

    // Just recorded, not yet indexed: the session page still finds it.
    await index.close();
    // An indexer that, once caught up, waits a minute after each commit before reading it.
    index = await openSessionIndex({ store, path: join(dir, 'index-2'), settleMs: 60_000 });
    expect(await index.caughtUp()).toBe(true);
    const fresh = store.openSession(info('db'));
    await store.flush();
    const later = new IndexedSessionQuery(
      index,
      () => false,
      (id) => store.getSession(id),
    );
    expect(index.get(fresh.sessionId)).toBeUndefined();
    expect(later.getNow(fresh.sessionId)).toMatchObject({
      id: fresh.sessionId,
      listener: 'db',
      endedAt: null,
    });
    expect(later.behind()).toBeGreaterThan(0);
    fresh.end(CLIENT_LEFT_END);
  });

  it('counts the overview per hour, the last bucket holding now', async () => {
    await setUp();
    const recorder = store.openSession(info('db'));
    recorder.append('command', { ...commandBody('DROP TABLE t'), decision: { action: 'deny' } });
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    expect(await index.caughtUp()).toBe(true);
    const query = new IndexedSessionQuery(
      index,
      () => false,
      (id) => store.getSession(id),
    );
    const now = Date.now();
    const buckets = query.activityNow(now, 3_600_000, 24);
    expect(buckets).toHaveLength(24);
    expect(buckets.at(-1)).toMatchObject({
      start: Math.floor(now / 3_600_000) * 3_600_000,
      commands: 1,
      denials: 1,
    });
  });
});
