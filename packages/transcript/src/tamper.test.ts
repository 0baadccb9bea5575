/**
 * Tampering with the LMDB environment directly (with the lmdb package, as an attacker with file access would),
 * then checking that verify() names what happened.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { join } from 'node:path';
import { open, type RootDatabase, type Database } from 'lmdb';
import type { TranscriptEvent } from '@agentgate/core';
import { encodeEvent, eventKey } from './event-codec.js';
import { loadOrCreateSigningKey } from './signing-key.js';
import type { VerifyReport } from './verify.js';
import { makeTempStore, sessionInfo, type TempStore } from './testing/test-store.js';

let temp: TempStore;
let sessionId: string;
/** seq of session.end: 10 events (0..9) */
const lastSeq = 9;

beforeEach(async () => {
  temp = await makeTempStore();
  const store = await temp.open();
  const info = sessionInfo();
  sessionId = info.id;
  const recorder = store.openSession(info);
  for (let i = 1; i < lastSeq; i++) recorder.append('command', { text: `SELECT ${i}` });
  recorder.end();
  // An untouched second session: problems must name only the tampered one.
  const bystander = store.openSession(sessionInfo());
  bystander.append('command', { text: 'SELECT 0' });
  bystander.end();
  await store.close();
});
afterEach(async () => {
  await temp.cleanup();
});

async function tamper(
  edit: (events: Database<string, string>, checkpoints: Database<string, string>) => void,
): Promise<void> {
  const env: RootDatabase<string, string> = open<string, string>({
    path: temp.storePath,
    encoding: 'string',
  });
  const events = env.openDB<string, string>('events', { encoding: 'string' });
  const checkpoints = env.openDB<string, string>('checkpoints', { encoding: 'string' });
  edit(events, checkpoints);
  await env.close();
}

function read(events: Database<string, string>, seq: number): TranscriptEvent {
  return JSON.parse(events.get(eventKey(sessionId, seq))!) as TranscriptEvent;
}

/** Re-store `event` with a freshly computed hash (an attacker who knows the hashing scheme). */
function forge(
  event: TranscriptEvent,
  overrides: { seq?: number; prev?: string } = {},
): { event: TranscriptEvent; stored: string } {
  const { session, seq, ts, type, prev, hash: _hash, ...body } = event;
  return encodeEvent(session, overrides.seq ?? seq, ts, type, overrides.prev ?? prev, body);
}

async function verifyNow(): Promise<VerifyReport> {
  const store = await temp.open({ readOnly: true });
  try {
    return await store.verify();
  } finally {
    await store.close();
  }
}

function kinds(report: VerifyReport): string[] {
  expect(report.ok).toBe(false);
  for (const problem of report.problems) expect(problem.session).toBe(sessionId);
  return [...new Set(report.problems.map((p) => p.kind))].sort();
}

describe('verify detects tampering', () => {
  it('passes on the untouched store', async () => {
    const report = await verifyNow();
    expect(report).toMatchObject({ ok: true, sessions: 2, events: 13, checkpoints: 2, problems: [] });
  });

  it('an altered field', async () => {
    await tamper((events) => {
      const event = read(events, 3);
      events.putSync(eventKey(sessionId, 3), JSON.stringify({ ...event, text: 'SELECT harmless' }));
    });
    const report = await verifyNow();
    expect(kinds(report)).toEqual(['hash-mismatch']);
    expect(report.problems[0]).toMatchObject({ seq: 3 });
  });

  it('an altered field with the whole chain re-hashed: the signed checkpoint catches it', async () => {
    await tamper((events) => {
      let prev = read(events, 2).hash;
      for (let seq = 3; seq <= lastSeq; seq++) {
        const original = read(events, seq);
        const forged = forge(seq === 3 ? { ...original, text: 'SELECT harmless' } : original, { prev });
        events.putSync(eventKey(sessionId, seq), forged.stored);
        prev = forged.event.hash;
      }
    });
    const report = await verifyNow();
    expect(kinds(report)).toEqual(['hash-mismatch']);
    expect(report.problems).toEqual([
      expect.objectContaining({ seq: lastSeq, detail: expect.stringContaining('signed checkpoint') }),
    ]);
  });

  it('an inserted event under a key the store never writes', async () => {
    await tamper((events) => {
      const forged = forge({ ...read(events, 4), text: 'SELECT sneaky' });
      events.putSync(`${sessionId}/000000000004a`, forged.stored);
    });
    expect(kinds(await verifyNow())).toEqual(['inserted']);
  });

  it('an inserted event with the rest renumbered and re-chained', async () => {
    await tamper((events) => {
      const originals = [];
      for (let seq = 4; seq <= lastSeq; seq++) originals.push(read(events, seq));
      let prev = read(events, 3).hash;
      const inserted = forge({ ...originals[0]!, text: 'SELECT sneaky' }, { seq: 4, prev });
      events.putSync(eventKey(sessionId, 4), inserted.stored);
      prev = inserted.event.hash;
      for (const original of originals) {
        const moved = forge(original, { seq: original.seq + 1, prev });
        events.putSync(eventKey(sessionId, original.seq + 1), moved.stored);
        prev = moved.event.hash;
      }
    });
    const report = await verifyNow();
    expect(kinds(report)).toContain('inserted');
    expect(report.problems.find((p) => p.kind === 'inserted')).toMatchObject({ seq: lastSeq + 1 });
  });

  it('two events swapped', async () => {
    await tamper((events) => {
      const a = events.get(eventKey(sessionId, 3))!;
      const b = events.get(eventKey(sessionId, 4))!;
      events.putSync(eventKey(sessionId, 3), b);
      events.putSync(eventKey(sessionId, 4), a);
    });
    const report = await verifyNow();
    expect(kinds(report)).toEqual(['chain-break', 'reordered']);
    expect(report.problems.filter((p) => p.kind === 'reordered').map((p) => p.seq)).toEqual([3, 4]);
  });

  it('a removed event', async () => {
    await tamper((events) => {
      events.removeSync(eventKey(sessionId, 5));
    });
    const report = await verifyNow();
    expect(kinds(report)).toEqual(['missing']);
    expect(report.problems).toEqual([expect.objectContaining({ seq: 5, detail: 'event 5 is missing' })]);
  });

  it('a truncated tail, even with the end checkpoint removed too', async () => {
    await tamper((events) => {
      for (let seq = lastSeq - 2; seq <= lastSeq; seq++) events.removeSync(eventKey(sessionId, seq));
    });
    let report = await verifyNow();
    expect(kinds(report)).toEqual(['missing']);
    expect(report.problems.map((p) => p.detail).join(' ')).toContain('truncated');
    await tamper((_events, checkpoints) => {
      checkpoints.removeSync(eventKey(sessionId, lastSeq));
    });
    report = await verifyNow();
    expect(kinds(report)).toEqual(['missing', 'unsigned']);
    expect(report.problems.find((p) => p.kind === 'missing')!.detail).toContain('truncated');
  });

  it('a forged checkpoint signature', async () => {
    await tamper((_events, checkpoints) => {
      const key = eventKey(sessionId, lastSeq);
      const record = JSON.parse(checkpoints.get(key)!) as { jws: string };
      const [header, payload, signature] = record.jws.split('.');
      const flipped = (signature!.startsWith('A') ? 'B' : 'A') + signature!.slice(1);
      checkpoints.putSync(key, JSON.stringify({ ...record, jws: `${header}.${payload}.${flipped}` }));
    });
    expect(kinds(await verifyNow())).toEqual(['bad-signature', 'unsigned']);
  });

  it('a checkpoint signed with another key over a forged hash', async () => {
    const attackerKey = await loadOrCreateSigningKey(join(temp.dir, 'attacker.json'));
    let jws = '';
    await tamper((events) => {
      const event = read(events, lastSeq);
      const forged = forge({ ...event, reason: 'nothing to see' });
      events.putSync(eventKey(sessionId, lastSeq), forged.stored);
      jws = forged.event.hash;
    });
    const hash = jws;
    jws = await attackerKey.signCompact(JSON.stringify({ hash, seq: lastSeq, session: sessionId }));
    await tamper((_events, checkpoints) => {
      checkpoints.putSync(
        eventKey(sessionId, lastSeq),
        JSON.stringify({ session: sessionId, seq: lastSeq, hash, ts: Date.now(), jws }),
      );
    });
    expect(kinds(await verifyNow())).toEqual(['bad-signature', 'unsigned']);
  });
});
