import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { open, type RootDatabase } from 'lmdb';
import { eventKey } from './event-codec.js';
import { openDatabases, type StoreDatabases } from './store-databases.js';
import { StoreReader, type LiveCounts } from './store-reader.js';
import {
  appendLegacyDecision,
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../test/test-store.js';

let temp: TempStore;
/** ids of: an ended session, an unended one (as after a crash or in another process), an SSH one with io */
let ended: string;
let open1: string;
let withIo: string;

beforeEach(async () => {
  temp = await makeTempStore();
  const store = await temp.open();
  const a = store.openSession(sessionInfo({ identity: { name: 'devin', groups: [], source: 'token' } }));
  a.append('command', commandBody('DELETE FROM t', 'deny'));
  a.end({ cause: 'client-left', reason: 'client closed' });
  const b = store.openSession(sessionInfo({ identity: { name: 'ci', groups: [], source: 'token' } }));
  b.append('command', commandBody('SELECT 1', 'allow'));
  b.append('command', commandBody('SELECT 2'));
  // An older store's shape: the decision its own event.
  appendLegacyDecision(b, { commandSeq: 2, action: 'deny' });
  const c = store.openSession(sessionInfo({ protocol: 'ssh' }));
  c.io('out', Buffer.from('hello\n'), '0');
  c.end(CLIENT_LEFT_END);
  [ended, open1, withIo] = [a.sessionId, b.sessionId, c.sessionId];
  await store.close();
});
afterEach(async () => {
  await temp.cleanup();
});

async function withReader(
  test: (reader: StoreReader, dbs: StoreDatabases) => void | Promise<void>,
  liveCounts: LiveCounts = () => undefined,
): Promise<void> {
  const env: RootDatabase<string, string> = open({ path: temp.storePath, encoding: 'string', maxDbs: 8 });
  try {
    const dbs = openDatabases(env);
    await test(new StoreReader(dbs, temp.signer, liveCounts), dbs);
  } finally {
    await env.close();
  }
}

describe('store reader', () => {
  it('summarizes ended sessions from their end record and unended ones from their events', () =>
    withReader((reader) => {
      expect(reader.getSession(ended)).toMatchObject({
        identity: 'devin',
        commands: 1,
        denied: 1,
        endedAt: expect.any(Number),
        endReason: 'client closed',
      });
      expect(reader.getSession(open1)).toMatchObject({
        identity: 'ci',
        commands: 2,
        denied: 1,
        endedAt: null,
      });
      expect(reader.getSession('nope')).toBeUndefined();
      expect(reader.listSessions({ identity: 'ci' }).map((s) => s.id)).toEqual([open1]);
      expect(reader.listSessions({ protocol: 'ssh' }).map((s) => s.id)).toEqual([withIo]);
      expect(reader.listSessions()).toHaveLength(3);
    }));

  it('takes the counts of a session this process records from the live session', () =>
    withReader(
      (reader) => {
        expect(reader.getSession(open1)).toMatchObject({ commands: 7, denied: 3 });
        expect(reader.getSession(ended)).toMatchObject({ commands: 1, denied: 1 }); // the end record wins
      },
      (id) => (id === open1 || id === ended ? { commands: 7, denied: 3 } : undefined),
    ));

  it('skips a damaged start record in listings', () =>
    withReader((reader, dbs) => {
      dbs.sessions.putSync('BROKEN', '{"id":');
      expect(reader.listSessions()).toHaveLength(3);
      expect(reader.getSession('BROKEN')).toBeUndefined();
    }));

  it('reads events with io bytes attached, or without them for counting', () =>
    withReader((reader) => {
      const io = [...reader.events(withIo)].find((e) => e.type === 'io');
      expect(io).toMatchObject({ bytes: 6, data: Buffer.from('hello\n').toString('base64') });
      const bare = [...reader.eventsWithoutIoData(withIo)].find((e) => e.type === 'io');
      expect(bare).toBeDefined();
      expect(bare!['data']).toBeUndefined();
    }));

  it('finds the last committed event of a session', () =>
    withReader((reader) => {
      expect(reader.lastEvent(open1)).toMatchObject({ seq: 3, type: 'decision', commandSeq: 2 });
      expect(reader.lastEvent(ended)).toMatchObject({ type: 'session.end' });
      expect(reader.lastEvent('nope')).toBeUndefined();
    }));

  it('lists checkpoints, skipping damaged records, and verifies', () =>
    withReader(async (reader, dbs) => {
      expect([...reader.checkpoints(ended)].map((c) => c.seq)).toEqual([2]);
      dbs.checkpoints.putSync(eventKey(ended, 1), 'not json');
      expect([...reader.checkpoints(ended)].map((c) => c.seq)).toEqual([2]);
      dbs.checkpoints.removeSync(eventKey(ended, 1));
      expect(await reader.verify()).toMatchObject({ ok: true, sessions: 3, checkpoints: 2 });
    }));
});
