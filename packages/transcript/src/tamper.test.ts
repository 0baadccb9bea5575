/**
 * Tampering with the LMDB environment directly (with the lmdb package, as an attacker with file access would),
 * then checking that verify() names what happened.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { open, type RootDatabase, type Database } from 'lmdb';
import type { TranscriptEvent } from '@agentgate/core';
import { encodeEvent, eventKey } from './event-codec.js';
import { loadOrCreateSigningKey } from './signing-key.js';
import type { VerifyReport } from './verify.js';
import {
  CLIENT_LEFT_END,
  commandBody,
  makeTempStore,
  sessionInfo,
  type TempStore,
} from '../test/test-store.js';

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
  for (let i = 1; i < lastSeq; i++) recorder.append('command', commandBody(`SELECT ${i}`));
  recorder.end(CLIENT_LEFT_END);
  // An untouched second session: problems must name only the tampered one.
  const bystander = store.openSession(sessionInfo());
  bystander.append('command', commandBody('SELECT 0'));
  bystander.end(CLIENT_LEFT_END);
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

  it('every flipped byte of a stored event', async () => {
    let original = '';
    await tamper((events) => void (original = events.get(eventKey(sessionId, 3))!));
    for (let i = 0; i < original.length; i++) {
      const flipped =
        original.slice(0, i) + String.fromCharCode(original.charCodeAt(i) ^ 1) + original.slice(i + 1);
      await tamper((events) => events.putSync(eventKey(sessionId, 3), flipped));
      const report = await verifyNow();
      expect({ at: i, ok: report.ok }).toEqual({ at: i, ok: false });
    }
    await tamper((events) => events.putSync(eventKey(sessionId, 3), original));
    expect((await verifyNow()).ok).toBe(true);
  }, 120_000);

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

describe('verify detects tampering with io bytes', () => {
  let ioSession: string;
  /** seqs of the session's three io events (1, 2, 3), each with different bytes */
  const ioSeqs = [1, 2, 3];

  beforeEach(async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    ioSession = info.id;
    const recorder = store.openSession(info);
    recorder.io('out', Buffer.from('first output\n'), '0');
    recorder.io('in', Buffer.from('typed input\n'), '0');
    recorder.io('out', Buffer.alloc(70 * 1024, 0x7a), '0');
    recorder.end(CLIENT_LEFT_END);
    await store.close();
  });

  async function tamperIoData(edit: (ioData: Database<Buffer, string>) => void): Promise<void> {
    const env = open<string, string>({ path: temp.storePath, encoding: 'string' });
    edit(env.openDB<Buffer, string>('iodata', { encoding: 'binary' }));
    await env.close();
  }

  function ioProblems(report: VerifyReport): { kind: string; seq?: number }[] {
    expect(report.ok).toBe(false);
    for (const problem of report.problems) expect(problem.session).toBe(ioSession);
    return report.problems.map(({ kind, seq }) => (seq === undefined ? { kind } : { kind, seq }));
  }

  it('passes untouched, and readers get the bytes back as base64', async () => {
    const store = await temp.open({ readOnly: true });
    const io = [...store.events(ioSession)].filter((e) => e.type === 'io');
    expect(io.map((e) => e.seq)).toEqual(ioSeqs);
    expect(io[0]).toMatchObject({ bytes: 13, data: Buffer.from('first output\n').toString('base64') });
    expect(io[0]!['dataSha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(String(io[2]!['data']), 'base64').equals(Buffer.alloc(70 * 1024, 0x7a))).toBe(true);
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });

  it('one changed byte', async () => {
    await tamperIoData((ioData) => {
      const key = eventKey(ioSession, 3);
      const bytes = Buffer.from(ioData.getBinary(key)!);
      bytes[40_000] = 0x79;
      ioData.putSync(key, bytes);
    });
    expect(ioProblems(await verifyNow())).toEqual([{ kind: 'hash-mismatch', seq: 3 }]);
  });

  it('every flipped byte of a blob', async () => {
    const key = eventKey(ioSession, ioSeqs[0]!);
    let original = Buffer.alloc(0);
    await tamperIoData((ioData) => void (original = Buffer.from(ioData.getBinary(key)!)));
    expect(original.length).toBe(13);
    for (let i = 0; i < original.length; i++) {
      const flipped = Buffer.from(original);
      flipped[i]! ^= 1;
      await tamperIoData((ioData) => ioData.putSync(key, flipped));
      expect({ at: i, problems: ioProblems(await verifyNow()) }).toEqual({
        at: i,
        problems: [{ kind: 'hash-mismatch', seq: ioSeqs[0] }],
      });
    }
  }, 60_000);

  it('a deleted blob', async () => {
    await tamperIoData((ioData) => {
      ioData.removeSync(eventKey(ioSession, 2));
    });
    expect(ioProblems(await verifyNow())).toEqual([{ kind: 'missing', seq: 2 }]);
  });

  it('two blobs swapped', async () => {
    await tamperIoData((ioData) => {
      const a = Buffer.from(ioData.getBinary(eventKey(ioSession, 1))!);
      const b = Buffer.from(ioData.getBinary(eventKey(ioSession, 2))!);
      ioData.putSync(eventKey(ioSession, 1), b);
      ioData.putSync(eventKey(ioSession, 2), a);
    });
    expect(ioProblems(await verifyNow())).toEqual([
      { kind: 'hash-mismatch', seq: 1 },
      { kind: 'hash-mismatch', seq: 2 },
    ]);
  });

  it('a blob no io event names (under a non-io event, or a foreign key)', async () => {
    await tamperIoData((ioData) => {
      ioData.putSync(eventKey(ioSession, 4), Buffer.from('smuggled'));
      ioData.putSync(`${ioSession}/extra`, Buffer.from('smuggled'));
    });
    expect(ioProblems(await verifyNow())).toEqual([{ kind: 'inserted' }, { kind: 'inserted' }]);
  });

  it('an io event re-hashed over other bytes: the chain or the signed checkpoint catches it', async () => {
    const forgedBytes = Buffer.from('innocent output\n');
    await tamperIoData((ioData) => {
      ioData.putSync(eventKey(ioSession, 1), forgedBytes);
    });
    await tamper((events) => {
      const original = JSON.parse(events.get(eventKey(ioSession, 1))!) as TranscriptEvent;
      const { session, seq, ts, type, prev, hash: _hash, ...body } = original;
      const dataSha256 = createHash('sha256').update(forgedBytes).digest('hex');
      const forged = encodeEvent(session, seq, ts, type, prev, {
        ...body,
        bytes: forgedBytes.length,
        dataSha256,
      });
      events.putSync(eventKey(ioSession, 1), forged.stored);
    });
    expect(ioProblems(await verifyNow())).toEqual([{ kind: 'chain-break', seq: 2 }]);
  });
});
