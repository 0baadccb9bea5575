/**
 * Redaction of one stream (one direction of one channel). Bytes are recorded as soon as nothing in them can still
 * turn out to be part of a secret; what can is held back:
 *
 * - the unfinished last line, when it holds a trigger: entries match within a line, so such a line is decided
 *   when its line break comes (`mysql -u root -p` … `secret\n`);
 * - otherwise the last word, which may be the beginning of a trigger (`mysq`, `Authoriz`) or what a pattern
 *   needs before its trigger (`--db-` of `--db-password`, `API_` of `API_TOKEN`);
 * - a match that runs to the end of the bytes so far (a private key block still open, a token still growing);
 * - with entries that have no trigger (operator regexes, some detectors), the whole unfinished line.
 *
 * The held tail is bounded (HOLD_LIMIT): past it the bytes are recorded anyway, and a secret that was running into
 * the cut goes on being redacted in the next bytes (the entry's continuation: the rest of the word, or up to a
 * private key's END line). Nothing here touches what the client receives; only the record waits.
 */
import type { ReleasedBytes, StreamRedactor } from '@agentgate/core';
import {
  findSpans,
  mergeSpans,
  type CompiledEntries,
  type CompiledEntry,
  type SecretSpan,
} from './compiled-entries.js';
import type { TriggerHit } from './trigger-filter.js';

/** Most bytes one stream holds back before recording them regardless. */
export const HOLD_LIMIT = 8 * 1024;

/** Most of an unfinished last word held back: enough for any prefix a pattern needs before its trigger. */
const WORD_LIMIT = 256;

const EMPTY = Buffer.alloc(0);
const NONE: readonly string[] = [];
const NOTHING: ReleasedBytes = { pieces: [], fired: NONE };
const STAR = 0x2a;
const LF = 0x0a;
const CR = 0x0d;

export class StreamRedactorImpl implements StreamRedactor {
  private carry: Buffer = EMPTY;
  /**
   * The carry is only the stream's unfinished last word (no trigger on its line, no match running into it): the
   * next bytes can then be scanned on their own unless a trigger, or the line of one, reaches back into it.
   */
  private carryIsWord = false;
  /** A secret recorded before its end (the hold limit was reached): its entry, to redact the rest. */
  private continuing: CompiledEntry | undefined;

  constructor(private readonly compiled: CompiledEntries | undefined) {}

  get held(): number {
    return this.carry.length;
  }

  get settled(): boolean {
    return this.carry.length === 0 && this.continuing === undefined;
  }

  push(data: Buffer): ReleasedBytes {
    if (this.compiled === undefined) return { pieces: [data], fired: NONE };
    if (data.length === 0) return NOTHING;
    const carry = this.carry;
    this.carry = EMPTY;
    if (carry.length > 0 && this.carryIsWord) {
      const released = this.afterWord(this.compiled, carry, data);
      if (released !== undefined) return released;
    }
    return this.process(this.compiled, carry, data, false);
  }

  release(mode: 'idle' | 'end'): ReleasedBytes {
    // Idle changes nothing: what is held is exactly what may still become a secret.
    if (mode === 'idle' || this.compiled === undefined || this.carry.length === 0) return NOTHING;
    const carry = this.carry;
    this.carry = EMPTY;
    const released = this.process(this.compiled, EMPTY, carry, true);
    this.continuing = undefined;
    return released;
  }

  /** The stream's next bytes are `head` (held from before) followed by `data`. */
  private process(compiled: CompiledEntries, head: Buffer, data: Buffer, end: boolean): ReleasedBytes {
    // Scanned as one run of bytes; recorded from the two buffers themselves unless a secret has to be overwritten.
    const bytes = head.length === 0 ? data : joined(head, data);
    const length = bytes.length;
    const spans: SecretSpan[] = [];
    let from = 0;
    if (this.continuing !== undefined) {
      from = this.continueSecret(this.continuing, bytes, spans, end);
      if (from === length) return output(head, data, length, spans);
    }
    const hits: TriggerHit[] = [];
    compiled.filter.scan(bytes, from, length, hits);
    if (hits.length > 0) {
      if (hits.length > 1) hits.sort((a, b) => a.at - b.at);
      scanWindows(compiled, bytes, from, hits, spans);
    }
    if (compiled.untriggered.length > 0) {
      const text = bytes.toString('latin1', from, length);
      for (const entry of compiled.untriggered) findSpans(entry, text, from, spans);
    }
    const cut = end ? length : this.cutAt(compiled, bytes, from, hits, spans);
    // A copy, never a view of the caller's buffer: that may be a whole socket read, or be reused for the next one.
    if (cut < length) this.carry = Buffer.from(bytes.subarray(cut));
    return output(head, data, cut, spans);
  }

  /**
   * `process(head, data)` without joining them, when `head` is a held last word (carryIsWord) and `data` is long
   * enough that the cut falls inside it: the result is the same as the joined run's unless a trigger lies in or
   * across the boundary, or a trigger in `data` has no line break before it (its line, or a pattern's prefix, may
   * begin in `head`); those go the joined way (undefined).
   */
  private afterWord(compiled: CompiledEntries, head: Buffer, data: Buffer): ReleasedBytes | undefined {
    const filter = compiled.filter;
    const length = data.length;
    if (this.continuing !== undefined || compiled.untriggered.length > 0) return undefined;
    if (length < WORD_LIMIT || length < filter.longest) return undefined;
    const hits: TriggerHit[] = [];
    const edge = joined(head, data.subarray(0, Math.max(0, filter.longest - 1)));
    filter.scan(edge, 0, edge.length, hits);
    if (hits.length > 0) return undefined;
    filter.scan(data, 0, length, hits);
    const spans: SecretSpan[] = [];
    if (hits.length > 0) {
      if (hits.length > 1) hits.sort((a, b) => a.at - b.at);
      if (firstLineBreak(data, hits[0]!.at) < 0) return undefined;
      scanWindows(compiled, data, 0, hits, spans);
    }
    const cut = this.cutAt(compiled, data, 0, hits, spans);
    if (cut < length) this.carry = Buffer.from(data.subarray(cut));
    const offset = head.length;
    if (spans.length === 0) return output(head, data, offset + cut, spans);
    const shifted = spans.map((span) => ({
      ...span,
      start: span.start + offset,
      end: span.end + offset,
      matchStart: span.matchStart + offset,
      matchEnd: span.matchEnd + offset,
    }));
    return output(head, data, offset + cut, shifted);
  }

  /** Where recording stops for now (holdFrom, or a forced cut past the hold limit); notes whether a word is held. */
  private cutAt(
    compiled: CompiledEntries,
    bytes: Buffer,
    from: number,
    hits: readonly TriggerHit[],
    spans: SecretSpan[],
  ): number {
    const length = bytes.length;
    const hold = holdFrom(compiled, bytes, from, hits, spans);
    if (length - hold.at > HOLD_LIMIT) {
      this.carryIsWord = false;
      return this.forcedCut(compiled, bytes, from, spans);
    }
    this.carryIsWord = hold.word;
    return hold.at;
  }

  /** Redact the rest of a secret cut at the previous release; returns where it ends. */
  private continueSecret(entry: CompiledEntry, bytes: Buffer, spans: SecretSpan[], end: boolean): number {
    const regex = entry.continuation;
    regex.lastIndex = 0;
    const match = regex.exec(bytes.toString('latin1'));
    const n = match === null ? 0 : match[0].length;
    if (n > 0) spans.push({ start: 0, end: n, matchStart: 0, matchEnd: n, entry });
    if (n < bytes.length || end) this.continuing = undefined;
    return n;
  }

  /** The hold limit is reached: record all but a trigger's beginning; a secret running into the cut continues. */
  private forcedCut(compiled: CompiledEntries, bytes: Buffer, from: number, spans: SecretSpan[]): number {
    const length = bytes.length;
    const cut = length - compiled.filter.partialSuffix(bytes, from, length);
    for (const span of spans) {
      if (span.matchEnd === length && span.start < cut) this.continuing = span.entry;
    }
    return cut;
  }
}

/** Run each triggered entry over the line around its trigger (from the trigger to the end for block entries). */
function scanWindows(
  compiled: CompiledEntries,
  bytes: Buffer,
  from: number,
  hits: readonly TriggerHit[],
  spans: SecretSpan[],
): void {
  const length = bytes.length;
  const scannedTo = new Map<CompiledEntry, number>();
  for (const hit of hits) {
    for (const entry of compiled.entriesOfTrigger[hit.trigger]!) {
      if (hit.at < (scannedTo.get(entry) ?? -1)) continue;
      const start = entry.multiline ? hit.at : Math.max(from, lineStart(bytes, hit.at));
      const stop = entry.multiline ? length : lineEnd(bytes, hit.at);
      findSpans(entry, bytes.toString('latin1', start, stop), start, spans);
      scannedTo.set(entry, stop);
    }
  }
}

/** Where recording must stop for now (see the header), and whether what is held is only the last word. */
function holdFrom(
  compiled: CompiledEntries,
  bytes: Buffer,
  from: number,
  hits: readonly TriggerHit[],
  spans: readonly SecretSpan[],
): { at: number; word: boolean } {
  const length = bytes.length;
  let hold: number;
  let word = false;
  if (compiled.untriggered.length === 0 && hits.length === 0) {
    // The last line matters only as a bound of the word, and a line break is whitespace that ends the word anyway:
    // no scan back over a long line (binary data has none).
    hold = wordStart(bytes, Math.max(from, length - WORD_LIMIT), length);
    word = true;
  } else {
    const lastLine = Math.max(from, lineStart(bytes, length - 1));
    if (
      lastLine < length &&
      (compiled.untriggered.length > 0 || (hits.length > 0 && hits[hits.length - 1]!.at >= lastLine))
    ) {
      hold = lastLine;
    } else {
      hold = wordStart(bytes, Math.max(lastLine, length - WORD_LIMIT), length);
      word = true;
    }
  }
  for (const span of spans)
    if (span.matchEnd === length && span.matchStart < hold) {
      hold = span.matchStart;
      word = false;
    }
  if (hold < from) return { at: from, word: false };
  return { at: hold, word };
}

/** Where the last word of `bytes[lower, end)` begins (`end` when it ends with whitespace). */
function wordStart(bytes: Buffer, lower: number, end: number): number {
  let i = end;
  while (i > lower && !WHITESPACE[bytes[i - 1]!]) i--;
  return i;
}

const WHITESPACE = new Uint8Array(256);
for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]) WHITESPACE[c] = 1;

function lineStart(bytes: Buffer, at: number): number {
  return Math.max(bytes.lastIndexOf(LF, at), bytes.lastIndexOf(CR, at)) + 1;
}

/** The first line break in `bytes` before `before`, or -1. */
function firstLineBreak(bytes: Buffer, before: number): number {
  const lf = bytes.indexOf(LF);
  const cr = bytes.indexOf(CR);
  const first = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
  return first < before ? first : -1;
}

function lineEnd(bytes: Buffer, at: number): number {
  const lf = bytes.indexOf(LF, at);
  const cr = bytes.indexOf(CR, at);
  if (lf < 0) return cr < 0 ? bytes.length : cr;
  return cr < 0 ? lf : Math.min(lf, cr);
}

/**
 * A scratch buffer for `head` + `data`, reused by every stream: nothing keeps a reference to it (recorded bytes
 * are `head`/`data` themselves or a copy), which spares an allocation per chunk on a busy stream.
 */
let scratch = Buffer.allocUnsafe(128 * 1024);

function joined(head: Buffer, data: Buffer): Buffer {
  const length = head.length + data.length;
  if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, scratch.length * 2));
  head.copy(scratch, 0);
  data.copy(scratch, head.length);
  return scratch.subarray(0, length);
}

/** The first `cut` bytes of `head` + `data`, with the spans inside them overwritten by `*` (line breaks kept). */
function output(head: Buffer, data: Buffer, cut: number, spans: SecretSpan[]): ReleasedBytes {
  if (cut === 0) return NOTHING;
  const applied = spans.length === 0 ? spans : spans.filter((span) => span.start < cut);
  if (applied.length === 0) {
    if (head.length === 0)
      return { pieces: [cut === data.length ? data : data.subarray(0, cut)], fired: NONE };
    if (cut <= head.length) return { pieces: [head.subarray(0, cut)], fired: NONE };
    return { pieces: [head, data.subarray(0, cut - head.length)], fired: NONE };
  }
  const { merged, fired } = mergeSpans(applied);
  const out = Buffer.allocUnsafe(cut);
  head.copy(out, 0, 0, Math.min(cut, head.length));
  if (cut > head.length) data.copy(out, head.length, 0, cut - head.length);
  for (const [start, end] of merged) {
    const stop = Math.min(end, cut);
    for (let i = start; i < stop; i++) if (out[i] !== LF && out[i] !== CR) out[i] = STAR;
  }
  return { pieces: [out], fired };
}
