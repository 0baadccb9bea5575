/**
 * The stored form of an event: the hashed bytes are exactly the stored bytes (minus the hash member), so anyone can
 * verify an exported line with nothing but SHA-256.
 */
import { describe, it, expect, beforeEach, afterEach } from '@jest/globals';
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import {
  decodeEvent,
  encodeEvent,
  encodeEventBytes,
  jsonlLineHashMatches,
  recomputeHash,
  storedHashMatches,
} from './event-codec.js';
import { exportJsonl } from './exporters.js';
import { CLIENT_LEFT_END, makeTempStore, sessionInfo, type TempStore } from '../test/test-store.js';

/**
 * What an external verifier does with one stored value or JSONL line: no agentgate code. An io line whose bytes
 * the store kept outside the event carries them as a `data` member just before the hash: that member is checked
 * against `dataSha256` and left out of the event hash.
 */
function externalCheck(line: string): boolean {
  const match = /^(.*),"hash":"([0-9a-f]{64})"\}$/s.exec(line);
  if (!match) return false;
  let content = match[1]!;
  const data = /^(.*),"data":"([A-Za-z0-9+/=]*)"$/s.exec(content);
  if (data) {
    const head = JSON.parse(`${data[1]!}}`) as Record<string, unknown>;
    if (head['type'] === 'io' && typeof head['dataSha256'] === 'string') {
      const bytes = Buffer.from(data[2]!, 'base64');
      if (createHash('sha256').update(bytes).digest('hex') !== head['dataSha256']) return false;
      content = data[1]!;
    }
  }
  return createHash('sha256').update(`${content}}`, 'utf8').digest('hex') === match[2];
}

describe('event encoding', () => {
  it('stores the header, then the body in its own key order, and hashes exactly those bytes', () => {
    const { event, stored } = encodeEvent('S1', 3, 1700000000123, 'command', 'ab'.repeat(32), {
      text: 'SELECT "x" \u2028 é',
      zeta: 1,
      alpha: { b: [1, null], a: true },
      skipped: undefined,
    });
    expect(stored).toBe(
      `{"session":"S1","seq":3,"ts":1700000000123,"type":"command","prev":"${'ab'.repeat(32)}",` +
        `"text":"SELECT \\"x\\" \u2028 é","zeta":1,"alpha":{"b":[1,null],"a":true},"hash":"${event.hash}"}`,
    );
    expect(externalCheck(stored)).toBe(true);
    expect(storedHashMatches(stored, event.hash)).toBe(true);
    expect(event).toMatchObject({
      session: 'S1',
      seq: 3,
      type: 'command',
      text: 'SELECT "x" \u2028 é',
      zeta: 1,
    });
    // Read back, the same hash is found from the stored bytes or from the parsed fields.
    expect(recomputeHash(decodeEvent(stored))).toBe(event.hash);
    expect(recomputeHash({ ...JSON.parse(stored) })).toBe(event.hash);
  });

  it('drops body fields that would override the header', () => {
    const body = JSON.parse(
      '{"session":"evil","seq":99,"ts":1,"type":"io","prev":"x","hash":"y","__proto__":{"a":1},"ok":1}',
    );
    const { event, stored } = encodeEvent('S1', 0, 5, 'result', '', body as Record<string, unknown>);
    const parsed = JSON.parse(stored) as Record<string, unknown>;
    expect(parsed).toEqual({
      session: 'S1',
      seq: 0,
      ts: 5,
      type: 'result',
      prev: '',
      ok: 1,
      hash: event.hash,
    });
    expect(Object.keys(parsed)).toEqual(['session', 'seq', 'ts', 'type', 'prev', 'ok', 'hash']);
    expect(event.seq).toBe(0);
  });

  it('writes Buffers as base64 and bigints as strings, however deep', () => {
    const { stored, event } = encodeEvent('S1', 1, 5, 'result', '', {
      data: Buffer.from('hi'),
      nested: { rows: [10n, Buffer.from([0, 255])] },
    });
    expect(JSON.parse(stored)).toMatchObject({ data: 'aGk=', nested: { rows: ['10', 'AP8='] } });
    expect(externalCheck(stored)).toBe(true);
    expect(storedHashMatches(stored, event.hash)).toBe(true);
  });

  it('bodies that only look like a Buffer in part are written as JSON.stringify writes them', () => {
    const bodies: Record<string, unknown>[] = [
      { kind: 'Buffer', data: [1, 2] },
      { t: 'Buffer', data: [3] },
      { note: 'a "Buffer","data":[ inside a string', list: ['Buffer', 'data'] },
      { deep: [{ xBuffer: 'yBuffer', data: [] }] },
    ];
    for (const body of bodies) {
      const { stored } = encodeEvent('S1', 1, 5, 'result', '', body);
      expect(stored).toContain(JSON.stringify(body).slice(1, -1));
    }
  });

  it('the bytes the store writes are the UTF-8 of the stored text, and stay as they were', () => {
    const prev = 'cd'.repeat(32);
    const bodies: (Record<string, unknown> | undefined)[] = [
      { text: 'SELECT "é" \u2028 \ud83d\ude00', rows: 1 },
      { lone: 'a\ud800b' },
      { big: 'ü'.repeat(20_000) },
      { seq: 7, hash: 'x', ok: true },
      {},
      undefined,
    ];
    const written: { bytes: Buffer; copy: Buffer }[] = [];
    for (let seq = 0; seq < 3000; seq++) {
      const body = bodies[seq % bodies.length];
      const raw = seq % 4 === 0 ? ',"direction":"out","bytes":3' : '';
      const text = encodeEvent('S1', seq, 5, 'result', prev, body, raw);
      const { event, bytes } = encodeEventBytes('S1', seq, 5, 'result', prev, body, raw, '"S1"', `"${prev}"`);
      expect(bytes.equals(Buffer.from(text.stored, 'utf8'))).toBe(true);
      expect(event).toEqual(text.event);
      written.push({ bytes, copy: Buffer.from(bytes) });
    }
    // Events share chunks; later ones never write over bytes already handed to a transaction.
    for (const { bytes, copy } of written) expect(bytes.equals(copy)).toBe(true);
  });

  it('any changed byte, a wrong suffix or a foreign hash fails the check', () => {
    const { stored, event } = encodeEvent('S1', 1, 5, 'command', '', { text: 'SELECT 1' });
    const changed = stored.replace('SELECT 1', 'SELECT 2');
    expect(storedHashMatches(changed, event.hash)).toBe(false);
    expect(storedHashMatches(stored.replace('"hash":', '"hasH":'), event.hash)).toBe(false);
    expect(storedHashMatches(stored, 'f'.repeat(64))).toBe(false);
    expect(storedHashMatches(stored + ' ', event.hash)).toBe(false);
    expect(storedHashMatches('{}', event.hash)).toBe(false);
  });

  it('io events written before the bytes moved out (inline base64 data) still verify as stored', () => {
    const { stored } = encodeEvent('S1', 1, 5, 'io', '', { direction: 'out', bytes: 2, data: 'aGk=' });
    expect(stored).toMatch(/,"data":"aGk=","hash":"[0-9a-f]{64}"\}$/);
    expect(jsonlLineHashMatches(stored)).toBe(true);
    expect(externalCheck(stored)).toBe(true);
    expect(jsonlLineHashMatches(stored.replace('aGk=', 'aGl='))).toBe(false);
  });

  it('still verifies events stored in the first, key-sorted format', () => {
    const unhashed = { type: 'command', text: 'SELECT 1', session: 'S1', seq: 0, ts: 5, prev: '' };
    const canonical = canonicalJson(unhashed);
    const hash = createHash('sha256').update(canonical).digest('hex');
    const stored = `${canonical.slice(0, -1)},"hash":"${hash}"}`;
    expect(storedHashMatches(stored, hash)).toBe(true);
    expect(recomputeHash(decodeEvent(stored))).toBe(hash);
  });
});

describe('stored events end to end', () => {
  let temp: TempStore;
  beforeEach(async () => {
    temp = await makeTempStore();
  });
  afterEach(async () => {
    await temp.cleanup();
  });

  it('exports JSONL lines byte-identical to what was hashed', async () => {
    const store = await temp.open();
    const info = sessionInfo({ protocol: 'ssh' });
    const recorder = store.openSession(info);
    recorder.append('notice', {
      event: 'keys',
      text: 'ls -la',
      '10': 'integer-like key',
      detail: { argv: ['ls', '-la'] },
    });
    recorder.io('out', Buffer.from('total 0\n'), '0');
    recorder.append('result', { event: 'exit', exitStatus: 0 });
    recorder.end(CLIENT_LEFT_END);
    await store.flush();
    const lines = [...exportJsonl(store.events(info.id))];
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(externalCheck(line.slice(0, -1))).toBe(true);
      expect(jsonlLineHashMatches(line.slice(0, -1))).toBe(true);
    }
    // The io line carries its bytes as `data`; changing one byte of them, or dropping them, fails the check.
    const ioLine = lines[2]!.slice(0, -1);
    expect(ioLine).toMatch(/,"dataSha256":"[0-9a-f]{64}","data":"[^"]+","hash":"[0-9a-f]{64}"\}$/);
    const tamperedData = ioLine.replace(
      Buffer.from('total 0\n').toString('base64'),
      Buffer.from('total 1\n').toString('base64'),
    );
    expect(tamperedData).not.toBe(ioLine);
    expect(externalCheck(tamperedData)).toBe(false);
    expect(jsonlLineHashMatches(tamperedData)).toBe(false);
    expect(jsonlLineHashMatches(ioLine.replace(/,"data":"[^"]+"/, ''))).toBe(false);
    expect(jsonlLineHashMatches(lines[1]!.slice(0, -1).replace('ls -la', 'ls -lb'))).toBe(false);
    // JSON.parse moves integer-like keys first, so re-serialising a parsed event would not give the hashed
    // bytes back; the export writes the stored bytes, header first.
    expect(lines[1]!.startsWith('{"session":')).toBe(true);
    expect(JSON.stringify(JSON.parse(lines[1]!))).toMatch(/^\{"10":/);
    const io = JSON.parse(lines[2]!) as Record<string, unknown>;
    expect(io).toMatchObject({ type: 'io', direction: 'out', channel: '0', bytes: 8 });
    expect(Buffer.from(String(io['data']), 'base64').toString()).toBe('total 0\n');
    expect(await store.verify()).toMatchObject({ ok: true, events: 5, checkpoints: 1 });
    await store.close();
  });
});
