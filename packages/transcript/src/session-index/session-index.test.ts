import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { SessionInfo, SessionRecorder } from '@agentgate/core';
import {
  appendLegacyDecision,
  approvalRequested,
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../../test/test-store.js';
import { exportJsonl } from '../exporters.js';
import type { TranscriptStore } from '../transcript-store.js';
import { openIndexDatabases } from './index-databases.js';
import type { IndexFilter } from './index-query.js';
import { openSessionIndex, type SessionIndex, type SessionIndexOptions } from './session-index.js';

let temp: TempStore;
let store: TranscriptStore;
const indexes: SessionIndex[] = [];

beforeEach(async () => {
  temp = await makeTempStore();
  store = await temp.open();
});
afterEach(async () => {
  for (const index of indexes.splice(0)) await index.close();
  await store.close();
  await temp.cleanup();
});

async function openIndex(overrides: Partial<SessionIndexOptions> = {}): Promise<SessionIndex> {
  const index = await openSessionIndex({ store, path: join(temp.dir, 'index'), settleMs: 0, ...overrides });
  indexes.push(index);
  return index;
}

async function closeIndex(index: SessionIndex): Promise<void> {
  indexes.splice(indexes.indexOf(index), 1);
  await index.close();
}

/** Everything written so far, committed and indexed. */
async function indexed(index: SessionIndex): Promise<void> {
  await store.flush();
  expect(await index.caughtUp(20_000)).toBe(true);
}

const alice = { name: 'alice', groups: ['dba'], source: 'oidc' as const };
const bob = { name: 'bob', groups: ['agents'], source: 'oidc' as const };

type Outcome = 'allow' | 'deny' | 'approved' | 'rejected' | 'expired';

/**
 * A session with these commands; per command: allow, deny or hold (approval requested, then decided). `old-…`
 * records the decision as earlier releases did, as an event of its own.
 */
function session(
  info: Partial<SessionInfo>,
  commands: readonly (string | [string, Outcome | 'old-allow' | 'old-deny'])[],
  end = true,
): SessionRecorder {
  const recorder = store.openSession(sessionInfo(info));
  for (const command of commands) {
    const [text, outcome] = typeof command === 'string' ? [command, 'allow' as const] : command;
    if (outcome === 'old-allow' || outcome === 'old-deny') {
      const { seq } = recorder.append('command', commandBody(text));
      appendLegacyDecision(recorder, { commandSeq: seq, action: outcome === 'old-deny' ? 'deny' : 'allow' });
      continue;
    }
    if (outcome === 'allow' || outcome === 'deny') {
      recorder.append('command', commandBody(text, outcome));
      continue;
    }
    const { seq } = recorder.append('command', commandBody(text, 'approve'));
    recorder.append('approval.requested', approvalRequested(`ap-${seq}`));
    recorder.append('approval.decided', {
      approvalId: `ap-${seq}`,
      outcome,
      by: outcome === 'approved' ? 'alice' : null,
      reason: null,
    });
  }
  recorder.append('result', {
    commandSeq: 1,
    rowDescription: null,
    rows: [['x']],
    rowsOmitted: 0,
    commandTag: 'SELECT 1',
    rowCount: 1,
    durationMs: 1,
  });
  if (end) recorder.end(CLIENT_LEFT_END);
  return recorder;
}

const ids = (page: { items: readonly { id: string }[] }): string[] => page.items.map((s) => s.id);

/** Every page of a query, following the cursor. */
function allPages(
  read: (before: string | undefined) => { items: readonly { id: string }[]; next?: string },
): string[] {
  const out: string[] = [];
  let before: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = read(before);
    out.push(...ids(page));
    if (page.next === undefined) return out;
    before = page.next;
  }
  throw new Error('paging did not end');
}

describe('session index: filters', () => {
  it('lists newest first and filters on each field', async () => {
    const t0 = Date.now() - 10_000;
    const a = session({ identity: alice, startedAt: t0 }, ['SELECT 1']);
    const b = session({ identity: bob, protocol: 'ssh', listener: 'shell', startedAt: t0 + 1000 }, [
      ['rm -rf /', 'deny'],
    ]);
    const c = session({ identity: alice, protocol: 'docker', listener: 'docker', startedAt: t0 + 2000 }, [
      ['container.create', 'approved'],
    ]);
    const d = session({ identity: bob, startedAt: t0 + 3000 }, [['DELETE FROM users', 'rejected']]);
    const e = session({ identity: bob, startedAt: t0 + 4000 }, [['DELETE FROM orders', 'expired']]);
    const open = session({ identity: alice, startedAt: t0 + 5000 }, ['SELECT now()'], false);
    const index = await openIndex();
    await indexed(index);
    const list = (filter: IndexFilter): string[] => ids(index.list(filter, { limit: 50 }));
    const [A, B, C, D, E, O] = [a, b, c, d, e, open].map((r) => r.sessionId) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];

    expect(list({})).toEqual([O, E, D, C, B, A]);
    expect(list({ identity: 'alice' })).toEqual([O, C, A]);
    expect(list({ identity: 'ali' })).toEqual([]); // identities match exactly
    expect(list({ protocol: 'ssh' })).toEqual([B]);
    expect(list({ listener: 'docker' })).toEqual([C]);
    expect(list({ since: t0 + 1000, until: t0 + 4000 })).toEqual([D, C, B]);
    // Denied decisions, and approvals rejected or expired, are denials; an approved one is not.
    expect(list({ hasDenials: true })).toEqual([E, D, B]);
    expect(list({ hasApprovals: true })).toEqual([E, D, C]);
    expect(list({ open: true })).toEqual([O]);
    expect(list({ identity: 'bob', hasDenials: true, since: t0 + 2000 })).toEqual([E, D]);
    expect(list({ identity: 'alice', protocol: 'ssh' })).toEqual([]);
    expect(list({ accept: (s) => s.commands === 1 && s.protocol === 'postgres' })).toEqual([O, E, D, A]);

    expect(index.get(D)).toMatchObject({
      id: D,
      identity: 'bob',
      listener: 'prod-db',
      protocol: 'postgres',
      groups: ['agents'],
      commands: 1,
      denied: 1,
      approvals: 1,
      endReason: CLIENT_LEFT_END.reason,
      startedAt: t0 + 3000,
      endedAt: expect.any(Number),
    });
    expect(index.get(O)).toMatchObject({ endedAt: null, commands: 1 });
    expect(index.get('no-such-session')).toBeUndefined();

    // An open session that ends leaves the open list.
    open.end(CLIENT_LEFT_END);
    await indexed(index);
    expect(list({ open: true })).toEqual([]);
    expect(index.get(O)?.endedAt).toEqual(expect.any(Number));
  });

  it('counts commands, denials and approval requests per bucket for the overview', async () => {
    session({}, [
      'SELECT 1',
      ['DROP TABLE t', 'deny'],
      ['DELETE FROM t', 'rejected'],
      ['UPDATE t SET a=1', 'approved'],
    ]);
    const index = await openIndex();
    await indexed(index);
    const hour = 3_600_000;
    const from = Math.floor(Date.now() / hour) * hour - 23 * hour;
    const buckets = index.activity(from, hour, 24);
    expect(buckets).toHaveLength(24);
    expect(buckets.at(-1)).toMatchObject({ commands: 4, denials: 2, approvals: 2 });
    expect(buckets.slice(0, -1).every((b) => b.commands + b.denials + b.approvals === 0)).toBe(true);
  });

  it('counts denials recorded in either shape: in the command, or as a decision event of an older store', async () => {
    const mixed = session({}, [
      ['DROP TABLE a', 'deny'],
      ['DROP TABLE b', 'old-deny'],
      ['SELECT 1', 'old-allow'],
      'SELECT 2',
    ]);
    const allowed = session({}, [['SELECT 3', 'old-allow'], 'SELECT 4']);
    const index = await openIndex();
    await indexed(index);
    expect(index.get(mixed.sessionId)).toMatchObject({ commands: 4, denied: 2 });
    expect(index.get(allowed.sessionId)).toMatchObject({ commands: 2, denied: 0 });
    expect(ids(index.list({ hasDenials: true }, { limit: 50 }))).toEqual([mixed.sessionId]);
    const hour = 3_600_000;
    const from = Math.floor(Date.now() / hour) * hour - 23 * hour;
    expect(index.activity(from, hour, 24).at(-1)).toMatchObject({ commands: 6, denials: 2, approvals: 0 });
  });
});

describe('session index: text search', () => {
  it('finds substrings of any command, ignoring case and runs of whitespace', async () => {
    const qualified = session({}, ['SELECT * FROM public.users WHERE id = 7']);
    const deleted = session({}, ['DELETE   FROM\tUsers']);
    const split = session({}, ['DELETE FROM orders', 'SELECT * FROM users_archive']);
    const shell = session({ protocol: 'ssh', listener: 'shell' }, ['rm -rf /var/tmp/x', 'ls']);
    const unicode = session({ protocol: 'ssh', listener: 'shell' }, ['echo "Grüße aus Köln" > /tmp/ä']);
    const index = await openIndex();
    await indexed(index);
    const search = (text: string, filter: IndexFilter = {}): string[] =>
      ids(index.search(text, filter, { limit: 50 })).sort();
    const sorted = (...recorders: SessionRecorder[]): string[] => recorders.map((r) => r.sessionId).sort();

    expect(search('users')).toEqual(sorted(qualified, deleted, split));
    expect(search('USERS')).toEqual(sorted(qualified, deleted, split));
    expect(search('public.users')).toEqual(sorted(qualified));
    expect(search('delete from users')).toEqual(sorted(deleted)); // whitespace folded
    // Every word in one command: `delete` and `users` are in different commands of `split`.
    expect(search('delete users')).toEqual(sorted(deleted));
    expect(search('"from users"')).toEqual(sorted(deleted, split)); // `from users_archive`
    expect(search('"from users"', { protocol: 'ssh' })).toEqual([]);
    expect(search('rm')).toEqual(sorted(shell)); // two characters
    expect(search('ls')).toEqual(sorted(shell)); // a whole short command
    expect(search('7')).toEqual(sorted(qualified)); // one character, at the end of a text
    expect(search('köln')).toEqual(sorted(unicode));
    expect(search('grüße aus')).toEqual(sorted(unicode));
    expect(search('/tmp/ä')).toEqual(sorted(unicode));
    expect(search('useres')).toEqual([]);
    expect(search('sers whe')).toEqual(sorted(qualified));
    // Punctuation is literal.
    expect(search('id = 7')).toEqual(sorted(qualified));
    expect(search('id=7')).toEqual([]);
    expect(search('   ')).toEqual(
      [qualified, deleted, split, shell, unicode].map((r) => r.sessionId).sort(), // no terms: the list
    );
  });

  it('ends a search that runs past its budget with a cursor from which the next page continues', async () => {
    const matching: string[] = [];
    for (let i = 0; i < 300; i++) {
      // Every session has both words, only every third in one command.
      const both = i % 3 === 0;
      const r = session({}, both ? [`SELECT ${i} FROM needle`] : [`SELECT ${i} FROM haystack`, 'needle']);
      if (both) matching.push(r.sessionId);
    }
    const index = await openIndex();
    await indexed(index);
    const expected = [...matching].reverse();
    const search = (budgetMs?: number) =>
      allPages((before) =>
        index.search(
          'select needle',
          {},
          {
            limit: 50,
            ...(budgetMs === undefined ? {} : { budgetMs }),
            ...(before ? { before } : {}),
          },
        ),
      );
    expect(search()).toEqual(expected);
    // With no time at all, a page stops after 63 candidates with what it found; the cursor still covers everything.
    const first = index.search('select needle', {}, { limit: 50, budgetMs: 0 });
    expect(first.items.length).toBeLessThan(50);
    expect(first.next).toEqual(expect.any(String));
    expect(search(0)).toEqual(expected);
    const rare = (s: { commands: number }) => s.commands === 1;
    const listed = allPages((before) =>
      index.list({ accept: rare }, { limit: 50, budgetMs: 0, ...(before ? { before } : {}) }),
    );
    expect(listed).toEqual(expected);
  });
});

describe('session index: paging, restarts, rebuilds', () => {
  it('keeps pages stable while new sessions arrive', async () => {
    const first: string[] = [];
    for (let i = 0; i < 25; i++)
      first.push(session({ startedAt: Date.now() - 60_000 + i }, [`SELECT ${i}`]).sessionId);
    const index = await openIndex();
    await indexed(index);
    const seen: string[] = [];
    let page = index.list({}, { limit: 10 });
    seen.push(...ids(page));
    while (page.next !== undefined) {
      // Sessions keep starting between two pages.
      for (let i = 0; i < 5; i++) session({}, ['SELECT 1']);
      await indexed(index);
      page = index.list({}, { limit: 10, before: page.next });
      seen.push(...ids(page));
    }
    expect(seen).toEqual([...first].reverse());
    // The same for a search.
    const found: string[] = [];
    let hits = index.search('select', {}, { limit: 4, before: first.at(-1)! });
    found.push(...ids(hits));
    while (hits.next !== undefined) {
      session({ startedAt: Date.now() - 120_000 }, ['SELECT 2']); // even one older than any seen: it comes last
      await indexed(index);
      hits = index.search('select', {}, { limit: 4, before: hits.next });
      found.push(...ids(hits));
    }
    expect(found.slice(0, 24)).toEqual([...first].reverse().slice(1));
    expect(new Set(found).size).toBe(found.length);
  });

  it('goes on after a restart where it stopped, and rebuilds an index of another version', async () => {
    session({}, ['SELECT 1']);
    let index = await openIndex();
    await indexed(index);
    const position = index.status().position;
    await closeIndex(index);
    session({}, ['SELECT 2']);
    await store.flush();
    index = await openIndex();
    await indexed(index);
    expect(index.status().position).toBeGreaterThan(position);
    expect(index.list({}, { limit: 10 }).items).toHaveLength(2);
    expect(ids(index.search('select 1', {}, { limit: 10 }))).toHaveLength(1);
    await closeIndex(index);

    // An index written by another version (or for another store) is rebuilt, not trusted.
    const dbs = openIndexDatabases(join(temp.dir, 'index'));
    const state = dbs.state.get('state')!;
    await dbs.env.batch(() => void dbs.state.put('state', { ...state, version: 0, position: 1 }));
    await dbs.env.close();
    index = await openIndex();
    await indexed(index);
    expect(index.list({}, { limit: 10 }).items).toHaveLength(2);
    expect(index.status().position).toBe(store.feed.head());
  });

  it('builds the same index from scratch as it built step by step', async () => {
    const t0 = Date.now() - 100_000;
    const incremental = await openIndex({ stepEvents: 5, path: join(temp.dir, 'incremental') });
    const recorders: SessionRecorder[] = [];
    for (let i = 0; i < 60; i++) {
      const who = i % 3 === 0 ? alice : bob;
      const protocol = (['postgres', 'ssh', 'docker'] as const)[i % 3]!;
      const open = session(
        { identity: who, protocol, listener: `${protocol}-1`, startedAt: t0 + Math.floor(i / 4) * 1000 },
        [
          `SELECT ${i} FROM table_${i % 7}`,
          ...(i % 5 === 0 ? [[`DROP TABLE t${i}`, 'deny'] as [string, 'deny']] : []),
          ...(i % 4 === 0
            ? [
                [`DELETE FROM users WHERE id = ${i}`, i % 8 === 0 ? 'approved' : 'expired'] as [
                  string,
                  'approved' | 'expired',
                ],
              ]
            : []),
        ],
        i % 9 !== 0,
      );
      recorders.push(open);
      if (i % 10 === 0) await store.flush(); // several commits, several indexing steps
    }
    for (const r of recorders.filter((_, i) => i % 18 === 0)) r.append('command', commandBody('SELECT late'));
    await indexed(incremental);
    const rebuilt = await openIndex({ stepEvents: 10_000, path: join(temp.dir, 'rebuilt'), rebuild: true });
    await indexed(rebuilt);

    const filters: IndexFilter[] = [
      {},
      { identity: 'alice' },
      { protocol: 'ssh' },
      { listener: 'docker-1' },
      { hasDenials: true },
      { hasApprovals: true },
      { open: true },
      { since: t0 + 3000, until: t0 + 9000 },
      { identity: 'bob', hasDenials: true },
    ];
    for (const filter of filters) {
      const all = (index: SessionIndex): unknown[] =>
        allPages((before) => index.list(filter, { limit: 7, ...(before ? { before } : {}) })).map((id) =>
          index.get(id),
        );
      expect(all(rebuilt)).toEqual(all(incremental));
      for (const text of ['select', 'users', 'table_3', 'drop', 'late', 'id = 4', 'q']) {
        const found = (index: SessionIndex): string[] =>
          allPages((before) => index.search(text, filter, { limit: 5, ...(before ? { before } : {}) }));
        expect(found(rebuilt)).toEqual(found(incremental));
      }
    }
    expect(
      allPages((before) => rebuilt.list({}, { limit: 100, ...(before ? { before } : {}) })),
    ).toHaveLength(60);
    const hour = 3_600_000;
    const from = Math.floor(Date.now() / hour) * hour - 23 * hour;
    expect(rebuilt.activity(from, hour, 24)).toEqual(incremental.activity(from, hour, 24));
  });
});

describe('session index: prune', () => {
  /** Prune the given ended sessions, with JSONL exports of them as the evidence. */
  async function prune(sessions: readonly string[]): Promise<void> {
    const exportsDir = join(temp.dir, 'exports');
    await mkdir(exportsDir, { recursive: true });
    for (const id of sessions)
      await writeFile(join(exportsDir, `${id}.jsonl`), [...exportJsonl(store.events(id))].join(''));
    const outcome = await store.prune({ before: Date.now() + 1000, coveredBy: [exportsDir], by: 'test' });
    expect(outcome.pruned.map((p) => p.session).sort()).toEqual([...sessions].sort());
  }

  it('drops pruned sessions from lists, filters, search and lookups; a rebuild and a backfilled feed agree', async () => {
    const t0 = Date.now() - 10_000;
    const gone = session({ identity: alice, startedAt: t0 }, [
      'SELECT * FROM pruned_table',
      ['DROP TABLE pruned_table', 'deny'],
      ['DELETE FROM pruned_table', 'rejected'],
    ]).sessionId;
    const kept = session({ identity: alice, startedAt: t0 + 1000 }, [
      'SELECT * FROM kept_table',
      ['DROP TABLE kept_table', 'deny'],
      ['DELETE FROM kept_table', 'approved'],
    ]).sessionId;
    const running = session({ identity: alice, startedAt: t0 + 2000 }, ['SELECT * FROM table_now'], false);
    const index = await openIndex();
    await indexed(index);
    const list = (i: SessionIndex, filter: IndexFilter): string[] => ids(i.list(filter, { limit: 50 }));
    const search = (i: SessionIndex, text: string, filter: IndexFilter = {}): string[] =>
      ids(i.search(text, filter, { limit: 50 }));
    expect(list(index, {})).toEqual([running.sessionId, kept, gone]);
    expect(search(index, 'pruned_table')).toEqual([gone]);

    const beforePrune = store.feed.head();
    await prune([gone]);
    // The prune's commit names the session it removed; the events it named earlier are no longer read.
    const feed = store.feed.read(0, { limit: 1_000_000 });
    expect(feed.removed).toEqual([{ position: expect.any(Number), session: gone }]);
    expect(feed.removed[0]!.position).toBeGreaterThan(beforePrune);
    expect(feed.commits.find((c) => c.position === feed.removed[0]!.position)?.removed).toBe(1);
    expect(feed.events.filter((e) => e.session === gone)).toEqual([]);

    /** What every query of an index says once `gone` is pruned. */
    const expectPruned = (i: SessionIndex): void => {
      expect(i.get(gone)).toBeUndefined();
      expect(i.get(kept)).toMatchObject({ id: kept, commands: 3, denied: 1, approvals: 1 });
      expect(list(i, {})).toEqual([running.sessionId, kept]);
      expect(list(i, { identity: 'alice' })).toEqual([running.sessionId, kept]);
      expect(list(i, { protocol: 'postgres', listener: 'prod-db' })).toEqual([running.sessionId, kept]);
      expect(list(i, { hasDenials: true })).toEqual([kept]);
      expect(list(i, { hasApprovals: true })).toEqual([kept]);
      expect(list(i, { open: true })).toEqual([running.sessionId]);
      expect(search(i, 'pruned_table')).toEqual([]);
      expect(search(i, 'table', { hasDenials: true })).toEqual([kept]);
      expect(search(i, 'from')).toEqual([running.sessionId, kept]);
    };
    await indexed(index);
    expectPruned(index);

    // Built again from the feed of the pruned store: the same.
    const rebuilt = await openIndex({ path: join(temp.dir, 'rebuilt'), rebuild: true });
    await indexed(rebuilt);
    expectPruned(rebuilt);
    await closeIndex(rebuilt);
    await closeIndex(index);

    // A pruned store whose feed must be backfilled (as one written before the feed): the index, now of another
    // feed, is rebuilt from the backfill and says the same.
    running.end(CLIENT_LEFT_END);
    await store.close();
    const env = open<string, string>({ path: temp.storePath, encoding: 'string', maxDbs: 8 });
    env.openDB('feed', { encoding: 'string' }).clearSync();
    env.openDB('meta', { encoding: 'string' }).removeSync('feed');
    await env.close();
    store = await temp.open();
    expect(store.feed.read(0, { limit: 1_000_000 }).commits.every((c) => c.backfill === true)).toBe(true);
    const afterBackfill = await openIndex();
    await indexed(afterBackfill);
    expect(afterBackfill.get(gone)).toBeUndefined();
    expect(list(afterBackfill, {})).toEqual([running.sessionId, kept]);
    expect(list(afterBackfill, { hasDenials: true })).toEqual([kept]);
    expect(search(afterBackfill, 'pruned_table')).toEqual([]);
    expect(search(afterBackfill, 'kept_table')).toEqual([kept]);
  });
});
