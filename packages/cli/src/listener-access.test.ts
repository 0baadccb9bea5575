import { describe, expect, it } from '@jest/globals';
import type {
  Identity,
  ListenerConfig,
  OpenSessionOptions,
  SessionInfo,
  SessionLifecycles,
  Termination,
} from '@agentgate/core';
import { ListenerAccessTable, withReloadedAllow } from './listener-access.js';

const devin: Identity = { name: 'devin', groups: ['agents'], source: 'token' };
const bob: Identity = { name: 'bob', groups: [], source: 'token' };

function listener(name: string, protocol: 'postgres' | 'ssh', allow: string[]): ListenerConfig {
  return { name, protocol, listen: '127.0.0.1:0', allow } as unknown as ListenerConfig;
}

function sessionOn(listenerName: string, identity: Identity): SessionInfo {
  return {
    id: `s-${identity.name}`,
    listener: listenerName,
    protocol: 'postgres',
    identity,
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: 0,
  };
}

describe('withReloadedAllow', () => {
  it('takes `allow` from the reloaded listener of the same name and protocol, and nothing else of it', () => {
    const running = [listener('db', 'postgres', ['group:agents']), listener('box', 'ssh', ['group:agents'])];
    const next = [
      { ...listener('db', 'postgres', ['identity:bob']), listen: '127.0.0.1:7000' } as ListenerConfig,
      listener('box', 'postgres', ['identity:bob']), // another protocol under the name: a new listener
    ];
    const now = withReloadedAllow(running, next);
    expect(now[0]).toEqual({ ...running[0], allow: ['identity:bob'] });
    expect(now[1]).toBe(running[1]);
  });
});

describe('ListenerAccessTable', () => {
  it('replaces what changed, says which, and names the open sessions the new lists no longer admit', () => {
    const table = new ListenerAccessTable();
    const db = table.add(listener('db', 'postgres', ['group:agents', 'identity:bob']));
    table.add(listener('box', 'ssh', ['identity:bob']));
    expect(db.allows(bob)).toBe(true);
    const generation = db.generation;

    expect(
      table.replace([listener('db', 'postgres', ['group:agents']), listener('box', 'ssh', ['identity:bob'])]),
    ).toEqual(['db']);
    expect(db.allows(bob)).toBe(false);
    expect(db.allows(devin)).toBe(true);
    expect(db.generation).not.toBe(generation);
    expect(table.endingFor(sessionOn('db', bob), 'operator (SIGHUP)')).toEqual({
      by: 'operator (SIGHUP)',
      via: 'reload',
      reason: 'bob is no longer allowed on listener db',
    });
    expect(table.endingFor(sessionOn('db', devin), 'operator (SIGHUP)')).toBeUndefined();
    expect(table.endingFor(sessionOn('box', bob), 'operator (SIGHUP)')).toBeUndefined();
    // Sessions on listeners the table does not know (admin records) are left alone.
    expect(table.endingFor(sessionOn('admin', bob), 'operator (SIGHUP)')).toBeUndefined();
  });

  it('ends, as the operator, what the replaced lists no longer admit, and reports it', () => {
    const table = new ListenerAccessTable();
    table.add(listener('db', 'postgres', ['group:agents', 'identity:bob']));
    const open = [sessionOn('db', bob), sessionOn('db', devin)];
    const ended: string[] = [];
    const sessions = {
      terminateEach(pick: (info: SessionInfo) => Termination | undefined): number {
        for (const info of open) if (pick(info) !== undefined) ended.push(info.identity.name);
        return ended.length;
      },
    };
    expect(
      table.apply([listener('db', 'postgres', ['group:agents'])], sessions, 'operator (SIGHUP)'),
    ).toEqual({
      listeners: ['db'],
      sessionsEnded: 1,
    });
    expect(ended).toEqual(['bob']);
    // Nothing changed: no session is looked at.
    expect(
      table.apply([listener('db', 'postgres', ['group:agents'])], sessions, 'operator (SIGHUP)'),
    ).toEqual({
      listeners: [],
      sessionsEnded: 0,
    });
  });

  it('ends a session opened for an identity the list dropped after it authenticated, once the engine listens', async () => {
    const table = new ListenerAccessTable();
    table.add(listener('db', 'postgres', ['group:agents']));
    const terminated: Termination[] = [];
    const base = {
      open: (options: { identity: Identity }) => ({
        info: sessionOn('db', options.identity),
        terminate: (t: Termination) => terminated.push(t),
      }),
      terminate: () => false,
      terminateEach: () => 0,
      openCount: 0,
    } as unknown as SessionLifecycles;
    const sessions = table.sessionsFor(base, 'operator (SIGHUP)');
    sessions.open({ identity: devin } as OpenSessionOptions);
    sessions.open({ identity: bob } as OpenSessionOptions);
    expect(terminated).toEqual([]); // not before the engine has attached to the session's end
    await Promise.resolve();
    expect(terminated).toEqual([
      { by: 'operator (SIGHUP)', via: 'reload', reason: 'bob is no longer allowed on listener db' },
    ]);
  });
});
