import { describe, expect, it } from '@jest/globals';
import type {
  Redactor,
  SessionInfo,
  SessionRecorder,
  TranscriptEvent,
  TranscriptWriter,
} from '@agentgate/core';
import { LiveSessions, type LiveEvent } from './live-sessions.js';

/** A writer whose recorders keep what they were given (the store is tested in its own package). */
function memoryWriter(): TranscriptWriter & { ended: Record<string, unknown>[] } {
  const ended: Record<string, unknown>[] = [];
  return {
    writable: true,
    failMode: 'closed',
    ended,
    openSession(info): SessionRecorder {
      let seq = 0;
      return {
        sessionId: info.id,
        append(type, body) {
          return {
            session: info.id,
            seq: ++seq,
            ts: 0,
            type,
            prev: '',
            hash: '',
            ...body,
          } as TranscriptEvent;
        },
        io() {},
        end(body) {
          ended.push(body ?? {});
        },
      };
    },
  };
}

/** Replaces "hunter2" in stream bytes, holding back a chunk that ends in a prefix of it. */
const redactor: Redactor = {
  active: true,
  text: (value) => ({ value, fired: [] }),
  body: (value) => ({ value, fired: [] }),
  stream() {
    let held = '';
    return {
      push(data) {
        const text = held + data.toString();
        const cut = ['h', 'hu', 'hun', 'hunt', 'hunte', 'hunter'].some((p) => text.endsWith(p))
          ? text.lastIndexOf('h')
          : text.length;
        held = text.slice(cut);
        return { pieces: [Buffer.from(text.slice(0, cut).replaceAll('hunter2', '****'))], fired: [] };
      },
      release: () => ({ pieces: [], fired: [] }),
      get held() {
        return held.length;
      },
      get settled() {
        return held === '';
      },
    };
  },
};

const info: SessionInfo = {
  id: 'S1',
  listener: 'db',
  protocol: 'ssh',
  identity: { name: 'devin', groups: [], source: 'token' },
  client: { address: '127.0.0.1', port: 50000, local: true, tls: false },
  startedAt: 0,
};

describe('live sessions', () => {
  it('passes on what the gate and the relays wait for: committed and ioBackpressure', () => {
    const writer = memoryWriter();
    const behind = Promise.resolve();
    const caughtUp = Promise.resolve();
    const inner = writer.openSession.bind(writer);
    writer.openSession = (i) => ({ ...inner(i), committed: () => behind, ioBackpressure: () => caughtUp });
    const recorder = new LiveSessions().wrap(writer).openSession(info);
    expect(recorder.committed?.()).toBe(behind);
    expect(recorder.ioBackpressure?.()).toBe(caughtUp);
  });

  it('lists running sessions, streams their events and redacted output, and forgets them at the end', () => {
    const live = new LiveSessions(redactor);
    const writer = memoryWriter();
    const recorder = live.wrap(writer).openSession(info);
    expect(live.list().map((s) => s.info.id)).toEqual(['S1']);
    const seen: LiveEvent[] = [];
    live.subscribe('S1', (e) => seen.push(e));
    recorder.append('command', { protocol: 'postgres', text: 'cat .pgpass', statements: [] });
    recorder.io('out', Buffer.from('password: hun'));
    recorder.io('out', Buffer.from('ter2\r\n'));
    recorder.io('in', Buffer.from('typed secret'));
    recorder.end({ cause: 'client-left', reason: 'client closed' });
    expect(
      seen.map((e) => (e.kind === 'event' ? e.event.type : e.kind === 'io' ? e.text : e.reason)),
    ).toEqual(['command', 'password: ', '****\r\n', 'client closed']);
    expect(live.has('S1')).toBe(false);
    expect(live.recent('S1')).toEqual([]);
  });

  it('ends a session on an admin’s word through the terminator, and shows the end the session records', () => {
    const live = new LiveSessions();
    const writer = memoryWriter();
    const recorder = live.wrap(writer).openSession(info);
    const seen: LiveEvent[] = [];
    live.subscribe('S1', (e) => seen.push(e));
    const erin = { name: 'erin', groups: ['admins'], source: 'oidc' } as const;
    expect(live.terminate('S1', erin)).toEqual({
      ended: false,
      reason: 'ending sessions is not available',
    });
    const asked: string[] = [];
    live.setTerminator((session, by) => (asked.push(`${session.id} by ${by.name}`), true));
    expect(live.terminate('S1', erin)).toEqual({ ended: true });
    expect(asked).toEqual(['S1 by erin']);
    // The session lifecycle records who ended it and has the engine end the session, naming the admin at the end.
    recorder.append('error', { event: 'session.terminated', by: 'erin', via: 'console' });
    recorder.end({ cause: 'terminated', reason: 'ended by admin erin', by: 'erin' });
    expect(writer.ended).toEqual([{ cause: 'terminated', reason: 'ended by admin erin', by: 'erin' }]);
    expect(seen.map((e) => (e.kind === 'ended' ? e.reason : e.kind))).toEqual([
      'event',
      'ended by admin erin',
    ]);
    expect(live.terminate('S1', erin)).toEqual({ ended: false, reason: 'the session is not running' });
  });
});
