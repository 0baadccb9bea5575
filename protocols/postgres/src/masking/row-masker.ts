/**
 * DataRow rewriting (PostgreSQL docs "Message Formats", DataRow: Int16 count, then per column Int32 length, -1 for
 * NULL, and the bytes). A plan is compiled once per result shape (RowDescription × statement plan); rows in which
 * nothing matched are returned as the same Buffer, so a clean row costs only the reads of its values.
 */
import type { ValueMasker } from '@agentgate/core';
import { BackendMessage } from '../codec/message-types.js';

/** Type OIDs whose binary format is the text itself (pg_type: text, varchar, bpchar, name, json, xml, unknown). */
const BINARY_IS_TEXT = new Set([25, 1043, 1042, 19, 114, 142, 705]);

/**
 * Types whose text form cannot hold free text or a detector match (pg_type OIDs: bool, int2, int4, oid, float4,
 * float8, date, time, timestamp, timestamptz, interval, timetz, uuid, inet, cidr, macaddr): content detectors skip
 * them. int8 and numeric are scanned (a card number fits in them).
 */
const NO_FREE_TEXT = new Set([
  16, 21, 23, 26, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 2950, 869, 650, 829,
]);

export const enum ColumnMode {
  /** Text-format value: column masker if any, then detectors. */
  Text = 0,
  /** Binary value whose bytes are UTF-8 text: as Text. */
  BinaryText = 1,
  /** Binary value of a type without free text (NO_FREE_TEXT): a masked one is sent as NULL. */
  BinaryOpaque = 2,
  /** Text-format value of a type without free text (NO_FREE_TEXT): column masker only. */
  NoFreeText = 3,
  /**
   * Binary value of another type that can hold text (jsonb, arrays, records, bytea): it cannot be re-encoded with a
   * replacement, so a masked one, or one in which a detector finds something, is sent as NULL.
   */
  BinaryScanned = 4,
}

export interface RowPlan {
  readonly maskers: readonly (ValueMasker | undefined)[];
  readonly modes: readonly ColumnMode[];
  readonly detectors: ValueMasker | undefined;
  /** Nothing can change in any row: DataRows are forwarded as they are. */
  readonly inert: boolean;
}

export function compileRowPlan(
  count: number,
  formatOf: (i: number) => number,
  typeOf: (i: number) => number,
  maskerOf: (i: number) => ValueMasker | undefined,
  detectors: ValueMasker | undefined,
): RowPlan {
  const maskers: (ValueMasker | undefined)[] = [];
  const modes: ColumnMode[] = [];
  let anyMask = false;
  let anyText = false;
  for (let i = 0; i < count; i++) {
    const m = maskerOf(i);
    maskers.push(m);
    if (m) anyMask = true;
    const type = typeOf(i);
    const mode =
      formatOf(i) === 1
        ? BINARY_IS_TEXT.has(type)
          ? ColumnMode.BinaryText
          : NO_FREE_TEXT.has(type)
            ? ColumnMode.BinaryOpaque
            : ColumnMode.BinaryScanned
        : NO_FREE_TEXT.has(type)
          ? ColumnMode.NoFreeText
          : ColumnMode.Text;
    modes.push(mode);
    if (mode === ColumnMode.Text || mode === ColumnMode.BinaryText || mode === ColumnMode.BinaryScanned)
      anyText = true;
  }
  return { maskers, modes, detectors, inert: !anyMask && !(anyText && detectors) };
}

const NULL_VALUE = -1;
const SEPARATOR = 0; // PostgreSQL text values never contain NUL, so it cannot be confused with data

/** Reused per-row scratch: value offsets and the joined detector probe (no per-row allocation on clean rows). */
let starts = new Int32Array(64);
let lengths = new Int32Array(64);
let probe: Buffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Masks one DataRow. `remember` receives each original value replaced by a column masker (for scrubbing it out of
 * later error texts). Returns the same buffer when nothing changed.
 *
 * Detectors run once per row over the row's text values joined by NUL (a non-word character, so look-arounds and
 * `\b` see value boundaries as in separate scans); a clean row costs one decode and one pre-filter test. When the
 * joined scan changed something, the per-value results are read back from it by splitting on NUL; where a match
 * could have spanned a separator (URLs with credentials, key blocks, or a changed separator count) the row's values
 * are scanned one by one instead.
 */
export function maskDataRow(message: Buffer, plan: RowPlan, remember: (value: string) => void): Buffer {
  if (plan.inert) return message;
  const count = message.readInt16BE(5);
  if (count > starts.length) {
    starts = new Int32Array(count * 2);
    lengths = new Int32Array(count * 2);
  }
  let offset = 7;
  let probeLength = 0;
  let probed = 0;
  const maskers = plan.maskers;
  const modes = plan.modes;
  const detectors = plan.detectors;
  let replaced: (Buffer | null | undefined)[] | undefined;
  for (let i = 0; i < count; i++) {
    const len = message.readInt32BE(offset);
    offset += 4;
    starts[i] = offset;
    lengths[i] = len;
    if (len === NULL_VALUE) continue;
    offset += len;
    const masker = maskers[i];
    const mode = modes[i] ?? ColumnMode.Text;
    if (masker) {
      if (mode === ColumnMode.BinaryOpaque || mode === ColumnMode.BinaryScanned) {
        (replaced ??= new Array(count))[i] = null;
        continue;
      }
      const value = message.toString('utf8', starts[i]!, offset);
      const out = masker.mask(value);
      if (out !== value) {
        remember(value);
        (replaced ??= new Array(count))[i] = encode(out);
      }
      continue;
    }
    if (!detectors || mode === ColumnMode.BinaryOpaque || mode === ColumnMode.NoFreeText || len === 0)
      continue;
    if (mode === ColumnMode.BinaryScanned) {
      const value = message.toString('utf8', starts[i]!, offset);
      if (detectors.mask(value) !== value) (replaced ??= new Array(count))[i] = null;
      continue;
    }
    if (probeLength + len + 1 > probe.length) probe = grow(probe, probeLength + len + 1);
    if (probed > 0) probe[probeLength++] = SEPARATOR;
    probeLength = copyBytes(message, starts[i]!, offset, probe, probeLength);
    probed++;
  }
  if (probed > 0) replaced = detectInRow(message, count, plan, probeLength, probed, replaced);
  if (!replaced) return message;
  return rebuild(message, count, replaced);
}

function detectInRow(
  message: Buffer,
  count: number,
  plan: RowPlan,
  probeLength: number,
  probed: number,
  replaced: (Buffer | null | undefined)[] | undefined,
): (Buffer | null | undefined)[] | undefined {
  const detectors = plan.detectors!;
  const joined = probe.toString('utf8', 0, probeLength);
  const spanning = joined.includes('://') || joined.includes('-----');
  if (!spanning) {
    const out = detectors.mask(joined);
    if (out === joined) return replaced;
    const parts = out.split('\u0000');
    const originals = joined.split('\u0000');
    // A value holding NUL (binary bytes read as text when the result's formats are unknown) shifts the parts.
    if (parts.length === probed && originals.length === probed) {
      let p = 0;
      for (let i = 0; i < count; i++) {
        if (!isProbed(plan, i)) continue;
        const part = parts[p]!;
        if (part !== originals[p]) (replaced ??= new Array(count))[i] = Buffer.from(part, 'utf8');
        p++;
      }
      return replaced;
    }
  }
  // Per value (rare): a match may cross values, so each is scanned on its own.
  for (let i = 0; i < count; i++) {
    if (!isProbed(plan, i)) continue;
    const value = message.toString('utf8', starts[i]!, starts[i]! + lengths[i]!);
    const out = detectors.mask(value);
    if (out !== value) (replaced ??= new Array(count))[i] = Buffer.from(out, 'utf8');
  }
  return replaced;

  function isProbed(p: RowPlan, i: number): boolean {
    const mode = p.modes[i];
    return (
      !p.maskers[i] &&
      mode !== ColumnMode.BinaryOpaque &&
      mode !== ColumnMode.BinaryScanned &&
      mode !== ColumnMode.NoFreeText &&
      lengths[i]! > 0
    );
  }
}

function grow(buf: Buffer, needed: number): Buffer {
  const next = Buffer.allocUnsafe(Math.max(needed, buf.length * 2));
  buf.copy(next);
  return next;
}

// The replacement is usually the same string for every row: encode it once.
let lastText = '';
let lastBytes = Buffer.alloc(0);
function encode(text: string): Buffer {
  if (text !== lastText) {
    lastBytes = Buffer.from(text, 'utf8');
    lastText = text;
  }
  return lastBytes;
}

/** Buffer#copy has a fixed cost that dominates for the short values of a row: copy small runs by hand. */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  if (to - from > 64) return at + src.copy(dst, at, from, to);
  for (let i = from; i < to; i++) dst[at++] = src[i]!;
  return at;
}

/**
 * Rewritten rows are carved one after another from a slab, so consecutive rewritten rows are adjacent views of one
 * ArrayBuffer and the session's write coalescer sends a run of them as a single write. Slab memory is never reused.
 */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

function allocateRow(size: number): Buffer {
  if (size > SLAB_BYTES / 8) return Buffer.allocUnsafe(size);
  if (slabUsed + size > slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const row = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += size;
  return row;
}

/** A new DataRow: runs of unchanged columns (headers included) are copied whole, replaced columns re-encoded. */
function rebuild(message: Buffer, count: number, replaced: readonly (Buffer | null | undefined)[]): Buffer {
  let size = message.length;
  for (let i = 0; i < count; i++) {
    const r = replaced[i];
    if (r === undefined) continue;
    size += (r === null ? 0 : r.length) - Math.max(lengths[i]!, 0);
  }
  const out = allocateRow(size);
  out[0] = BackendMessage.DataRow;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(count, 5);
  let w = 7;
  let runStart = 7;
  for (let i = 0; i < count; i++) {
    const r = replaced[i];
    if (r === undefined) continue;
    const headerStart = starts[i]! - 4;
    w = copyBytes(message, runStart, headerStart, out, w);
    out.writeInt32BE(r === null ? NULL_VALUE : r.length, w);
    w += 4;
    if (r !== null) w = copyBytes(r, 0, r.length, out, w);
    runStart = starts[i]! + Math.max(lengths[i]!, 0);
  }
  copyBytes(message, runStart, message.length, out, w);
  return out;
}
