import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { causeOf, type ClientInfo, type EndCause, type GatedSession, type Identity } from '@agentgate/core';
import { getEventListeners } from 'node:events';
import { SessionGroups } from './session-groups.js';

/** A session as the groups see it: its identity, `ended`, and how it was ended (the cause `end` recorded). */
interface FakeSession {
  readonly session: GatedSession;
  readonly endedWith: EndCause[];
  readonly continuedAs: Identity[];
  readonly signal: AbortSignal;
  stop(cause: EndCause): void;
}

function fakeOpener(): {
  opened: FakeSession[];
  open: (i: Identity, c: ClientInfo, s: AbortSignal) => GatedSession;
} {
  const opened: FakeSession[] = [];
  const open = (identity: Identity, _client: ClientInfo, signal: AbortSignal): GatedSession => {
    const ended = new AbortController();
    signal.addEventListener('abort', () => ended.abort(signal.reason), { once: true });
    const endedWith: EndCause[] = [];
    const continuedAs: Identity[] = [];
    let info = { identity };
    const session = {
      get info() {
        return info;
      },
      ended: ended.signal,
      continueAs(next: Identity) {
        info = { identity: next };
        continuedAs.push(next);
      },
      end(cause?: EndCause) {
        if (endedWith.length > 0) return;
        endedWith.push(
          ended.signal.aborted
            ? (causeOf(ended.signal.reason) as EndCause)
            : (cause ?? { kind: 'client-left' }),
        );
        if (!ended.signal.aborted) ended.abort(cause);
      },
    } as unknown as GatedSession;
    opened.push({ session, endedWith, continuedAs, signal, stop: (cause) => ended.abort(cause) });
    return session;
  };
  return { opened, open };
}

const devin: Identity = { name: 'devin', groups: ['agents'], source: 'oidc' };
const client = (address: string): ClientInfo => ({ address, local: true, tls: false });

describe('SessionGroups', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('shares one session among the connections of an identity and address, ending it after the linger', () => {
    const { opened, open } = fakeOpener();
    const groups = new SessionGroups(2_000, open);
    const a = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    const b = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    expect(b.session).toBe(a.session);
    // Another address, or another identity, is another session.
    expect(groups.acquire(devin, client('10.0.0.2'), new AbortController().signal).session).not.toBe(
      a.session,
    );
    const other = { ...devin, name: 'ci-bot' };
    expect(groups.acquire(other, client('10.0.0.1'), new AbortController().signal).session).not.toBe(
      a.session,
    );
    a.release();
    b.release();
    b.release(); // released once however often it is called
    jest.advanceTimersByTime(1_500);
    // The next connection within the linger joins the same session.
    const c = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    expect(c.session).toBe(a.session);
    c.release();
    expect(opened[0]!.endedWith).toEqual([]);
    jest.advanceTimersByTime(2_000);
    expect(opened[0]!.endedWith).toEqual([{ kind: 'client-left' }]);
    // After the linger the next connection starts a new session.
    const d = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    expect(d.session).not.toBe(a.session);
  });

  it('goes on under a refreshed credential of the same identity', () => {
    const { opened, open } = fakeOpener();
    const groups = new SessionGroups(2_000, open);
    groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    const refreshed = { ...devin };
    groups.acquire(refreshed, client('10.0.0.1'), new AbortController().signal);
    expect(opened).toHaveLength(1);
    expect(opened[0]!.continuedAs).toEqual([refreshed]);
  });

  it('with no linger, ends the session with its last connection', () => {
    const { opened, open } = fakeOpener();
    const groups = new SessionGroups(0, open);
    const a = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    a.release();
    expect(opened[0]!.endedWith).toEqual([{ kind: 'client-left' }]);
  });

  it('a session that ended on its own takes no new connections, and ends at once when nobody uses it', () => {
    const { opened, open } = fakeOpener();
    const groups = new SessionGroups(2_000, open);
    const a = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    opened[0]!.stop({ kind: 'credential-revoked' });
    const b = groups.acquire(devin, client('10.0.0.1'), new AbortController().signal);
    expect(b.session).not.toBe(a.session);
    a.release();
    expect(opened[0]!.endedWith).toEqual([{ kind: 'credential-revoked' }]);
    // Lingering, then expired: ended then, not at the end of the linger.
    b.release();
    opened[1]!.stop({ kind: 'credential-revoked' });
    expect(opened[1]!.endedWith).toEqual([{ kind: 'credential-revoked' }]);
  });

  it('tells every connection using a session that it ended, with one listener on its signal however many there are', () => {
    const { opened, open } = fakeOpener();
    const groups = new SessionGroups(2_000, open);
    const told: number[] = [];
    const leases = Array.from({ length: 30 }, (_, i) =>
      groups.acquire(devin, client('10.0.0.1'), new AbortController().signal, () => told.push(i)),
    );
    expect(getEventListeners(opened[0]!.session.ended, 'abort')).toHaveLength(1);
    leases[29]!.release(); // a connection that left is not told
    opened[0]!.stop({ kind: 'credential-revoked' });
    expect(told).toEqual(Array.from({ length: 29 }, (_, i) => i));
  });

  it('names the shutdown: a user connection told to end, or the engine closing with sessions lingering', () => {
    const { opened, open } = fakeOpener();
    const groups = new SessionGroups(2_000, open);
    const first = new AbortController();
    const second = new AbortController();
    const a = groups.acquire(devin, client('10.0.0.1'), first.signal);
    groups.acquire(devin, client('10.0.0.1'), second.signal);
    // The connection that opened it is gone; the one still using it is told to end.
    a.release();
    second.abort({ kind: 'shutdown' });
    expect(opened[0]!.session.ended.reason).toEqual({ kind: 'shutdown' });
    const lingering = groups.acquire(devin, client('10.0.0.9'), new AbortController().signal);
    lingering.release();
    groups.close();
    expect(opened[1]!.endedWith).toEqual([{ kind: 'shutdown' }]);
  });
});
