import { describe, expect, it } from '@jest/globals';
import { FrontendMessage } from './codec/message-types.js';
import { ExtendedQueryState } from './extended-query.js';

const bind = (portal: string, statementName: string, params: unknown[] = []) => ({
  portal,
  statementName,
  params,
  resultFormats: [],
});

describe('extended-query state', () => {
  it('maps portals to the texts of the statements they were bound from', () => {
    const state = new ExtendedQueryState();
    state.parsed({ statementName: '', text: 'SELECT 1' });
    state.parsed({ statementName: 's1', text: 'DELETE FROM t' });
    state.bound(bind('', ''), 1);
    state.bound(bind('p1', 's1', ['x']), 1);
    expect(state.portal('')?.texts).toEqual(['SELECT 1']);
    expect(state.portal('p1')).toEqual({
      texts: ['DELETE FROM t'],
      groupId: 1,
      statementName: 's1',
      params: ['x'],
      resultFormats: [],
    });
    expect(state.portal('nope')).toBeUndefined();
  });

  it('keeps every text a name may stand for: re-Parse of a named statement, re-Bind of a live portal', () => {
    const state = new ExtendedQueryState();
    state.parsed({ statementName: 's', text: 'SELECT 1' });
    // A DEALLOCATE the gateway did not see, then the same name for another text: either may run.
    state.parsed({ statementName: 's', text: 'DROP TABLE t' });
    state.bound(bind('p', 's'), 1);
    expect(state.portal('p')?.texts).toEqual(['SELECT 1', 'DROP TABLE t']);
    state.parsed({ statementName: 'other', text: 'UPDATE t SET a = 1' });
    state.bound(bind('p', 'other'), 1);
    expect(state.portal('p')?.texts).toEqual(['SELECT 1', 'DROP TABLE t', 'UPDATE t SET a = 1']);
  });

  it('forgets closed statements and portals, and the portals of an ended transaction', () => {
    const state = new ExtendedQueryState();
    state.parsed({ statementName: 's', text: 'SELECT 1' });
    state.closed('S', 's');
    state.bound(bind('p', 's'), 1);
    expect(state.portal('p')?.texts).toEqual([]);
    state.parsed({ statementName: '', text: 'SELECT 2' });
    state.bound(bind('a', ''), 1);
    state.bound(bind('b', ''), 3);
    state.transactionEnded(2);
    expect(state.portal('a')).toBeUndefined();
    expect(state.portal('b')?.texts).toEqual(['SELECT 2']);
    state.closed('P', 'b');
    expect(state.portal('b')).toBeUndefined();
  });

  it('tracks messages since the last Sync and discards up to the Sync after a denial', () => {
    const state = new ExtendedQueryState();
    expect(state.admit(FrontendMessage.Parse)).toBe(true);
    expect(state.unsynced).toBe(true);
    state.discardUntilSync();
    expect(state.admit(FrontendMessage.Bind)).toBe(false);
    expect(state.admit(FrontendMessage.Execute)).toBe(false);
    expect(state.admit(FrontendMessage.Sync)).toBe(true);
    expect(state.unsynced).toBe(false);
    expect(state.admit(FrontendMessage.Query)).toBe(true);
    expect(state.unsynced).toBe(false);
  });
});
