/**
 * How a fleet replica's console merges the fleet database's pages with its own sessions the fleet does not hold
 * yet: a real store and session index for this replica (B), and the fleet's answers as the fleet database gives
 * them (newest first below a cursor) from a list in memory. The fleet database itself is exercised end to end in
 * tests/src/fleet-console.test.ts.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { newId, silentLogger, type SessionEndBody, type SessionInfo } from '@agentgate/core';
import {
  loadOrCreateSigningKey,
  openSessionIndex,
  openTranscriptStore,
  type SessionIndex,
  type TranscriptStore,
} from '@agentgate/transcript';
import { FleetSessionQuery, type FleetSession, type FleetSessions } from './fleet-session-query.js';
import { IndexedSessionQuery, storeRecords } from './session-query.js';

const END: SessionEndBody = { cause: 'client-left', reason: 'the client left' };

let dir: string;
let store: TranscriptStore;
let index: SessionIndex;
afterEach(async () => {
  await index.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The fleet database's answers over `rows`, as FleetConsoleQueries gives them; `down` makes every call fail. */
function fleetOf(rows: FleetSession[], state: { down: boolean }): FleetSessions {
  const check = (): void => {
    if (state.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  };
  const order = (a: FleetSession, b: FleetSession): number =>
    b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  return {
    list: async (filter, page) => {
      check();
      const sorted = rows
        .filter((r) => filter.identity === undefined || r.identity === filter.identity)
        .filter((r) => page.before === undefined || order(r, { ...r, ...page.before }) > 0)
        .sort(order);
      const items = sorted.slice(0, page.limit);
      const last = items.at(-1);
      return sorted.length > page.limit && last !== undefined
        ? { items, next: { startedAt: last.startedAt, id: last.id } }
        : { items };
    },
    get: async (id) => (check(), rows.find((r) => r.id === id)),
    held: async (ids) => (check(), new Set(ids.filter((id) => rows.some((r) => r.id === id)))),
    lastSeq: async (id) => (check(), rows.some((r) => r.id === id) ? 2 : -1),
    events: async () => (check(), []),
    checkpoints: async () => (check(), []),
    activity: async () => (check(), []),
    verifySignature: async () => {
      check();
      throw new Error('no key');
    },
    keyNode: () => undefined,
  };
}

function info(): SessionInfo {
  return {
    id: newId(),
    listener: 'db',
    protocol: 'postgres',
    identity: { name: 'devin', groups: ['agents'], source: 'token' },
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: Date.now(),
  };
}

describe("a fleet replica's console", () => {
  it('lists the fleet and its own unshipped sessions in one order, each once across pages, and falls back to its own', async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-query-'));
    const signer = await loadOrCreateSigningKey(join(dir, 'key.json'));
    store = await openTranscriptStore({
      path: join(dir, 'store'),
      failMode: 'closed',
      checkpointIntervalMs: 0,
      signer,
    });
    index = await openSessionIndex({ store, path: join(dir, 'index'), settleMs: 0 });
    // This replica (B): three sessions, the first two shipped, the last not yet.
    const mine: SessionInfo[] = [];
    for (let i = 0; i < 3; i++) {
      const session = info();
      mine.push(session);
      store.openSession(session).end(END);
      await sleep(5);
    }
    await store.flush();
    expect(await index.caughtUp()).toBe(true);
    const summary = (s: SessionInfo, node: string): FleetSession => ({
      id: s.id,
      node,
      listener: s.listener,
      protocol: s.protocol,
      identity: s.identity.name,
      groups: [...s.identity.groups],
      client: {},
      startedAt: s.startedAt,
      endedAt: s.startedAt + 1,
      commands: 0,
      denied: 0,
    });
    // Replica A's sessions around B's: one before each of B's and one after all.
    const theirs = [...mine.map((s) => s.startedAt - 1), mine[2]!.startedAt + 1].map((t) =>
      summary({ ...info(), startedAt: t }, 'A'),
    );
    const rows = [...theirs, summary(mine[0]!, 'B'), summary(mine[1]!, 'B')];
    const state = { down: false };
    const local = new IndexedSessionQuery(
      index,
      () => false,
      (id) => store.getSession(id),
    );
    const query = new FleetSessionQuery({
      node: 'B',
      fleet: fleetOf(rows, state),
      local,
      localRecords: storeRecords(store, (jws) => signer.verifyCompact(jws)),
      log: silentLogger,
    });

    const seen: { id: string; node?: string; shippedThrough?: number; fromFleet?: boolean }[] = [];
    let before: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await query.list({}, { limit: 2, ...(before === undefined ? {} : { before }) });
      seen.push(...page.items);
      if (page.next === undefined) break;
      before = page.next;
    }
    const expected = [...theirs, ...mine.map((s) => summary(s, 'B'))]
      .sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : -1))
      .map((s) => s.id);
    expect(seen.map((s) => s.id)).toEqual(expected);
    const unshipped = seen.find((s) => s.id === mine[2]!.id)!;
    expect(unshipped).toMatchObject({ node: 'B', shippedThrough: -1 });
    expect(seen.find((s) => s.id === mine[0]!.id)).toMatchObject({ node: 'B' });
    expect(seen.find((s) => s.id === mine[0]!.id)?.fromFleet).toBeUndefined();
    expect(seen.find((s) => s.id === theirs[0]!.id)).toMatchObject({ node: 'A', fromFleet: true });

    // A page of one of B's sessions reads B's store; one of A's, the fleet.
    expect(await query.get(mine[2]!.id)).toMatchObject({ node: 'B', shippedThrough: -1 });
    expect(await query.get(theirs[0]!.id)).toMatchObject({ node: 'A', fromFleet: true });

    // The fleet database away: B's own sessions, with a notice; A's pages say why they cannot be read.
    state.down = true;
    const fallback = await query.list({}, { limit: 10 });
    expect(fallback.items.map((s) => s.id)).toEqual(mine.map((s) => s.id).reverse());
    expect(fallback.notice).toContain('only this replica');
    await expect(query.get(theirs[0]!.id)).rejects.toThrow('The fleet database cannot be reached');
    expect(await query.get(mine[0]!.id)).toMatchObject({ id: mine[0]!.id, node: 'B' });
  });
});
