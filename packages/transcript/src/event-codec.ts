/**
 * How one transcript event is hashed, keyed and stored.
 *
 * The stored value is JSON built in one pass, header first:
 *   {"session":…,"seq":…,"ts":…,"type":…,"prev":…,<body members in the body's own key order>,"hash":"<hex>"}
 * and hash = SHA-256 hex of exactly those bytes without the `,"hash":"…"` member (i.e. ending in the `}` that
 * follows the last body member). `prev` is the previous event's hash in the same session ('' for seq 0).
 *
 * Hashing the bytes that are stored, rather than a key-sorted re-serialisation, keeps canonicalisation off the
 * append hot path; a verifier (ours or anyone's) strips the 75-character `,"hash":"<64 hex>"}` suffix, appends
 * `}` and hashes: any changed byte changes the hash. Stores written with sorted keys (the first format) verify the
 * same way, because they too stored exactly the hashed bytes with the hash appended as the last member.
 */
import * as nodeCrypto from 'node:crypto';
import type { TranscriptEvent, TranscriptEventType } from '@agentgate/core';
import { canonicalJson } from './canonical-json.js';
import { bodyJson, hasReservedField, withoutReservedFields } from './event-json.js';
import { upgradeLegacyEvent } from './legacy-events.js';

export interface EncodedEvent {
  /** The event as the caller sees it: the body's fields plus the header (raw members are not included). */
  readonly event: TranscriptEvent;
  /** The stored value. */
  readonly stored: string;
}

/**
 * Encode one event. `rawMembers` is JSON text appended after the body (an io event's members, built by the
 * recorder): the caller guarantees it is valid JSON member text, which saves an object and JSON.stringify.
 * `quotedSession` and `quotedPrev` are JSON.stringify(session) and JSON.stringify(prev), which live sessions
 * keep so they are not quoted again per event (docs/performance.md, "Smaller measurements").
 */
export function encodeEvent(
  session: string,
  seq: number,
  ts: number,
  type: TranscriptEventType,
  prev: string,
  body: Record<string, unknown> | undefined,
  rawMembers = '',
  quotedSession: string = JSON.stringify(session),
  quotedPrev: string = JSON.stringify(prev),
): EncodedEvent {
  const fields = storedFields(body);
  const head = eventHead(quotedSession, seq, ts, type, quotedPrev, fields, rawMembers);
  const hash = sha256Hex(head + '}');
  const stored = head + ',"hash":"' + hash + '"}';
  return { event: eventObject(session, seq, ts, type, prev, hash, fields), stored };
}

/** An event as the write path stores it: its stored value as UTF-8 bytes, encoded once. */
export interface EncodedEventBytes {
  readonly event: TranscriptEvent;
  /** exactly the bytes of encodeEvent's `stored` */
  readonly bytes: Buffer;
}

/**
 * encodeEvent's value as bytes, for the store: the text is UTF-8 encoded once, the hash is taken over those bytes
 * and LMDB stores them as they are (a string value would be encoded again, once for the hash and once by lmdb-js).
 * Small events share 64 KiB chunks that are never written again once handed out, so a queued or in-flight
 * transaction can keep pointing into them.
 */
export function encodeEventBytes(
  session: string,
  seq: number,
  ts: number,
  type: TranscriptEventType,
  prev: string,
  body: Record<string, unknown> | undefined,
  rawMembers: string,
  quotedSession: string,
  quotedPrev: string,
): EncodedEventBytes {
  const { fields, hash, bytes } = encodeStoredEvent(
    quotedSession,
    seq,
    ts,
    type,
    quotedPrev,
    body,
    rawMembers,
  );
  return { event: eventObject(session, seq, ts, type, prev, hash, fields), bytes };
}

/** What the store keeps of an event it encoded: its bytes and hash, and the body members they hold. */
export interface StoredEventParts {
  /** the body without reserved header fields (the body itself when it names none) */
  readonly fields: Record<string, unknown> | undefined;
  readonly hash: string;
  /** exactly the bytes of encodeEvent's `stored` */
  readonly bytes: Buffer;
}

/** encodeEventBytes without the event object, for appends whose caller does not take the event. */
export function encodeStoredEvent(
  quotedSession: string,
  seq: number,
  ts: number,
  type: TranscriptEventType,
  quotedPrev: string,
  body: Record<string, unknown> | undefined,
  rawMembers: string,
): StoredEventParts {
  const fields = storedFields(body);
  const head = eventHead(quotedSession, seq, ts, type, quotedPrev, fields, rawMembers);
  // UTF-8 takes at most 3 bytes per UTF-16 unit; the `}` hashed in place of the suffix fits in the suffix's room.
  const room = head.length * 3 + hashSuffixLength;
  let target: Buffer;
  let start: number;
  if (room > maxChunkedEvent) {
    target = Buffer.allocUnsafeSlow(Buffer.byteLength(head) + hashSuffixLength);
    start = 0;
  } else {
    if (chunkUsed + room > chunk.length) {
      chunk = Buffer.allocUnsafeSlow(eventChunkBytes);
      chunkUsed = 0;
    }
    target = chunk;
    start = chunkUsed;
  }
  const out = target as Buffer & StringWriters;
  const headEnd = start + out.utf8Write(head, start, target.length - start);
  target[headEnd] = 0x7d; // `}`: the hashed bytes end where the hash member will start
  const hash = sha256HexOfBytes(target.subarray(start, headEnd + 1));
  hashMemberStart.copy(target, headEnd);
  out.latin1Write(hash, headEnd + 9, 64);
  target[headEnd + 73] = 0x22; // `"`
  target[headEnd + 74] = 0x7d; // `}`
  const end = headEnd + hashSuffixLength;
  if (target === chunk) chunkUsed = end;
  return { fields, hash, bytes: target.subarray(start, end) };
}

/**
 * Buffer's own string writers, without Buffer#write's argument parsing (in Node's Buffer since its start; lmdb-js
 * and ordered-binary call them the same way). Each returns the bytes written.
 */
interface StringWriters {
  utf8Write(text: string, offset: number, length: number): number;
  latin1Write(text: string, offset: number, length: number): number;
}

const hashMemberStart = Buffer.from(',"hash":"');

/** Events share chunks of this size; a larger one gets its own buffer. */
const eventChunkBytes = 64 * 1024;
const maxChunkedEvent = 16 * 1024;
let chunk = Buffer.allocUnsafeSlow(0);
let chunkUsed = 0;

/** The body without header fields (a body cannot set them); the same object when it names none. */
function storedFields(body: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  return body !== undefined && hasReservedField(body) ? withoutReservedFields(body) : body;
}

/** The stored value up to the hash member: header, then the body's members in its own key order, then `rawMembers`. */
function eventHead(
  quotedSession: string,
  seq: number,
  ts: number,
  type: string,
  quotedPrev: string,
  fields: Record<string, unknown> | undefined,
  rawMembers: string,
): string {
  let members = rawMembers;
  if (fields !== undefined) {
    const json = bodyJson(fields);
    // '{}' (or a toJSON that is not an object) adds nothing.
    if (json.length > 2 && json.charCodeAt(0) === 0x7b) members = ',' + json.slice(1, -1) + rawMembers;
  }
  return (
    '{"session":' + quotedSession + ',"seq":' + seq + ',"ts":' + ts + typeMember(type) + quotedPrev + members
  );
}

/** The event as callers see it: the header, then the stored body members. */
export function eventObject(
  session: string,
  seq: number,
  ts: number,
  type: TranscriptEventType,
  prev: string,
  hash: string,
  fields: Record<string, unknown> | undefined,
): TranscriptEvent {
  // Object.assign, not a spread: much faster in V8 here (docs/performance.md, "Smaller measurements").
  const event: TranscriptEvent = { session, seq, ts, type, prev, hash };
  if (fields !== undefined) Object.assign(event, fields);
  return event;
}

/** Length of the `,"hash":"<64 hex>"}` suffix every stored event ends with. */
const hashSuffixLength = 75;

/**
 * Does the stored value's content hash to `hash`, and is `hash` the one its suffix names? The content is the
 * value without the suffix, closed with `}`: the exact bytes hashed at append time.
 */
export function storedHashMatches(stored: string, hash: string): boolean {
  // SHA-256 hex is what the content must hash to, so equality below also proves `hash` is 64 hex digits.
  if (stored.length <= hashSuffixLength || hash.length !== 64) return false;
  const suffixStart = stored.length - hashSuffixLength;
  if (!stored.startsWith(',"hash":"', suffixStart) || !stored.endsWith('"}')) return false;
  if (stored.slice(suffixStart + 9, stored.length - 2) !== hash) return false;
  return sha256Hex(stored.slice(0, suffixStart) + '}') === hash;
}

/** The stored text each decoded event was parsed from: exports and re-hashing use the exact bytes. */
const storedTextOf = new WeakMap<object, string>();

/** Parse a stored event, in today's field spellings (legacy-events.ts); its stored text stays attached. */
export function decodeEvent(stored: string): TranscriptEvent {
  const event = JSON.parse(stored) as TranscriptEvent;
  if (event === null || typeof event !== 'object') return event;
  storedTextOf.set(event, stored);
  return upgradeLegacyEvent(event);
}

/** The exact stored value a decoded event came from (undefined for events not read from a store). */
export function storedText(event: TranscriptEvent): string | undefined {
  return storedTextOf.get(event);
}

/**
 * The hash an event should carry: over its stored bytes when it was read from the store, else over the
 * encoding its fields produce now (header, then the other fields in the object's key order).
 */
export function recomputeHash(event: TranscriptEvent): string {
  const stored = storedTextOf.get(event);
  if (stored !== undefined && stored.length > hashSuffixLength) {
    return sha256Hex(stored.slice(0, stored.length - hashSuffixLength) + '}');
  }
  const { session, seq, ts, type, prev, hash: _ignored, ...body } = event;
  const reencoded = encodeEvent(session, seq, ts, type, prev, body).stored;
  return reencoded.slice(reencoded.length - hashSuffixLength + 9, reencoded.length - 2);
}

/** Event types are a small fixed set: build each one's `,"type":"…","prev":` once. */
const typeMembers = new Map<string, string>();
function typeMember(type: string): string {
  let member = typeMembers.get(type);
  if (member === undefined) {
    member = ',"type":' + JSON.stringify(type) + ',"prev":';
    if (typeMembers.size < 256) typeMembers.set(type, member);
  }
  return member;
}

/** crypto.hash (Node ≥ 20.12) is the one-shot form, faster than createHash for small inputs. */
export const sha256Hex: (text: string) => string =
  typeof nodeCrypto.hash === 'function'
    ? (text) => nodeCrypto.hash('sha256', text, 'hex')
    : (text) => nodeCrypto.createHash('sha256').update(text).digest('hex');

/**
 * SHA-256 hex of raw bytes (io payloads): hashing the Buffer itself, never a base64 or UTF-8 string of it, is one
 * pass over the bytes with no conversion (docs/performance.md, "Transcript store").
 */
export const sha256HexOfBytes: (bytes: Uint8Array) => string =
  typeof nodeCrypto.hash === 'function'
    ? (bytes) => nodeCrypto.hash('sha256', bytes, 'hex')
    : (bytes) => nodeCrypto.createHash('sha256').update(bytes).digest('hex');

/**
 * io events written since the blob format keep their bytes outside the event (the `iodata` db, same key) and
 * name their SHA-256 in `dataSha256`; older io events carry `data` (base64) inside the hashed JSON.
 */
export function hasExternalIoData(event: TranscriptEvent): boolean {
  return event.type === 'io' && typeof event['dataSha256'] === 'string' && !('data' in event);
}

/**
 * A JSONL export line for a stored event: the stored bytes, except that an io event whose bytes live in the
 * `iodata` db gets `,"data":"<base64>"` inserted just before its hash member. A verifier strips the hash
 * suffix as for any line; if what remains ends with a `,"data":"…"` member and the line is an io event with
 * `dataSha256`, it removes that member, checks SHA-256(base64-decoded data) = dataSha256, and hashes the rest
 * with `}` appended as usual (README, "io events").
 */
export function exportLine(stored: string, base64Data: string | undefined): string {
  if (base64Data === undefined || stored.length <= hashSuffixLength) return stored;
  const suffixStart = stored.length - hashSuffixLength;
  return stored.slice(0, suffixStart) + ',"data":"' + base64Data + '"' + stored.slice(suffixStart);
}

/** base64 `data` the store attached to io events it read (exportLine puts it back into the line). */
const attachedIoDataOf = new WeakMap<object, string>();

/** Give an io event read from the store its bytes as `data` (base64), as readers expect. */
export function attachIoData(event: TranscriptEvent, bytes: Uint8Array): void {
  const base64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
  (event as Record<string, unknown>)['data'] = base64;
  attachedIoDataOf.set(event, base64);
}

/** The base64 bytes the store attached to this io event, if it did. */
export function attachedIoData(event: TranscriptEvent): string | undefined {
  return attachedIoDataOf.get(event);
}

/**
 * Check one JSONL export line (without its '\n') the way an external verifier would: the event hash over the
 * line minus its hash suffix (and minus an exported `data` member of an io event with `dataSha256`), and that
 * member's bytes against `dataSha256`. Returns false for any mismatch or shape it does not know.
 */
export function jsonlLineHashMatches(line: string): boolean {
  if (line.length <= hashSuffixLength) return false;
  const suffixStart = line.length - hashSuffixLength;
  const hash = line.slice(suffixStart + 9, line.length - 2);
  let content = line.slice(0, suffixStart);
  let data: string | undefined;
  const dataStart = content.lastIndexOf(',"data":"');
  if (dataStart >= 0 && content.endsWith('"') && /^[A-Za-z0-9+/=]*$/.test(content.slice(dataStart + 9, -1))) {
    data = content.slice(dataStart + 9, -1);
    content = content.slice(0, dataStart);
  }
  if (content.includes('"type":"io"')) {
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(content + '}') as Record<string, unknown>;
    } catch {
      // not an io event of the blob format: the line is checked as it is below
    }
    if (parsed['type'] === 'io' && typeof parsed['dataSha256'] === 'string') {
      // Its bytes were outside the hashed JSON: the export must carry them, and they must hash to dataSha256.
      if (data === undefined) return false;
      const bytes = Buffer.from(data, 'base64');
      if (sha256HexOfBytes(bytes) !== parsed['dataSha256'] || bytes.length !== parsed['bytes']) return false;
      return storedHashMatches(content + line.slice(suffixStart), hash);
    }
  }
  // Any other event (old io events included): `data`, if any, was part of the hashed bytes.
  return storedHashMatches(line, hash);
}

/**
 * Event keys are `<session>/<seq as 12 digits>`: string keys sort byte-wise in LMDB, so one prefix range yields a
 * session's events in seq order, and anything else found under the prefix is an insertion.
 */
export function eventKey(session: string, seq: number): string {
  return session + '/' + String(seq).padStart(12, '0');
}

/** Length of an event (or checkpoint) key's `/<12 digits>` suffix after the session id. */
export const eventKeySeqSuffix = 13;

/** The session id of a key eventKey made (no check: for keys the store itself wrote). */
export function sessionOfEventKey(key: string): string {
  return key.slice(0, -eventKeySeqSuffix);
}

export function sessionKeyRange(session: string): { start: string; end: string } {
  // '0' follows '/' in ASCII, so [session + '/', session + '0') covers exactly the keys with that prefix.
  return { start: session + '/', end: session + '0' };
}

/** Parse an event key; seq is null when the suffix is not the 12-digit form the store writes. */
export function parseEventKey(key: string): { session: string; seq: number | null } {
  const slash = key.lastIndexOf('/');
  const session = slash < 0 ? key : key.slice(0, slash);
  const suffix = slash < 0 ? '' : key.slice(slash + 1);
  return { session, seq: /^\d{12}$/.test(suffix) ? Number(suffix) : null };
}

/** Checkpoint records: `<session>/<seq>` in their own db, value = the signed record as JSON. */
export interface CheckpointRecord {
  readonly session: string;
  readonly seq: number;
  readonly hash: string;
  readonly ts: number;
  /** Compact JWS over canonical JSON `{hash, seq, session}`. */
  readonly jws: string;
}

export function checkpointPayload(session: string, seq: number, hash: string): string {
  return canonicalJson({ session, seq, hash });
}

/**
 * `ts` and `type` of a stored event. Events of the current format start with their header
 * (`{"session":…,"seq":…,"ts":…,"type":…`), read without parsing the rest: a `,"` never occurs unescaped inside a
 * JSON string, so the first `,"ts":` is the header's. Older (key-sorted) events are parsed. undefined for a value
 * that is not an event.
 */
export function storedEventHeader(stored: string): { ts: number; type: string } | undefined {
  if (stored.startsWith('{"session":')) {
    const tsAt = stored.indexOf(',"ts":');
    const typeAt = tsAt < 0 ? -1 : stored.indexOf(',"type":"', tsAt);
    const typeEnd = typeAt < 0 ? -1 : stored.indexOf('"', typeAt + 9);
    if (typeEnd > 0) {
      const ts = Number(stored.slice(tsAt + 6, typeAt));
      if (Number.isFinite(ts)) return { ts, type: stored.slice(typeAt + 9, typeEnd) };
    }
  }
  let event: unknown;
  try {
    event = JSON.parse(stored);
  } catch {
    return undefined;
  }
  const { ts, type } = (event ?? {}) as { ts?: unknown; type?: unknown };
  return typeof ts === 'number' && typeof type === 'string' ? { ts, type } : undefined;
}
