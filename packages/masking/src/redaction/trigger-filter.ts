/**
 * The redaction pre-filter: where any trigger literal occurs (ASCII, compared case-insensitively, at least 3
 * characters), fast enough to run over every recorded byte. A table of the 2-byte blocks that begin a trigger
 * (at its offset 0 or 1) is probed at every second position (a Wu–Manber filter), so most bytes cost half a
 * table lookup; each probe that hits is confirmed by comparing the literals that have that block.
 */

/** Shortest trigger: a block of 2 sampled at every 2nd position covers every occurrence of 3 or more bytes. */
export const MIN_TRIGGER_LENGTH = 3;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const FOLD = new Uint8Array(256);
for (let c = 0; c < 256; c++) FOLD[c] = c >= 65 && c <= 90 ? c + 32 : c;

/**
 * Text at least this long is probed as bytes (`probeTextAsBytes`); shorter text is not worth the copy. The scratch
 * buffer is shared: a probe runs to its end without yielding.
 */
const minByteProbedText = 48;
const textScratch = Buffer.allocUnsafeSlow(64 * 1024) as Buffer & {
  latin1Write(text: string, offset: number, length: number): number;
};
const textScratchWords = new Uint16Array(textScratch.buffer, textScratch.byteOffset, textScratch.length >> 1);

export interface TriggerHit {
  /** Offset of the literal in the scanned bytes. */
  readonly at: number;
  /** Index into the filter's triggers. */
  readonly trigger: number;
}

export class TriggerFilter {
  /** Per raw 2-byte block (first byte × 256 + second): 1 when some trigger has it (any case) at offset 0 or 1. */
  private readonly blocks = new Uint8Array(65536);
  /** The same, indexed by the block read as a 16-bit word in this machine's byte order. */
  private readonly wordBlocks = new Uint8Array(65536);
  /** Per folded block: the (trigger, offset) pairs to confirm, flattened (an array: probes that hit are common in text). */
  private readonly candidates: (number[] | undefined)[] = new Array<number[] | undefined>(65536).fill(
    undefined,
  );
  private readonly literals: readonly Buffer[];
  /** Every proper prefix (folded, as latin1 text) of every trigger, for `partialSuffix`. */
  private readonly prefixes = new Set<string>();
  /** Bytes (any case) a trigger begins with. */
  private readonly firstBytes = new Uint8Array(256);
  readonly longest: number;
  /** Some trigger contains a space (then one can span two words joined by a space). */
  readonly spaced: boolean;

  constructor(readonly triggers: readonly string[]) {
    this.literals = triggers.map((t) => {
      if (t.length < MIN_TRIGGER_LENGTH || !/^[\x20-\x7e]+$/.test(t))
        throw new Error(`redaction trigger "${t}" must be at least 3 printable ASCII characters`);
      return Buffer.from(t.toLowerCase(), 'latin1');
    });
    this.longest = Math.max(0, ...triggers.map((t) => t.length));
    this.spaced = triggers.some((t) => t.includes(' '));
    this.literals.forEach((literal, index) => {
      for (let offset = 0; offset < 2; offset++) {
        const folded = (literal[offset]! << 8) | literal[offset + 1]!;
        let list = this.candidates[folded];
        if (list === undefined) this.candidates[folded] = list = [];
        list.push(index, offset);
        for (const first of caseVariants(literal[offset]!))
          for (const second of caseVariants(literal[offset + 1]!)) {
            this.blocks[(first << 8) | second] = 1;
            this.wordBlocks[LITTLE_ENDIAN ? (second << 8) | first : (first << 8) | second] = 1;
          }
      }
      for (const first of caseVariants(literal[0]!)) this.firstBytes[first] = 1;
      const text = literal.toString('latin1');
      for (let length = 1; length < text.length; length++) this.prefixes.add(text.slice(0, length));
    });
  }

  /** Every occurrence of a trigger within `bytes[from, to)`, in no particular order (possibly repeated). */
  scan(bytes: Uint8Array, from: number, to: number, hits: TriggerHit[]): void {
    // Blocks are read as aligned 16-bit words, one load per probe: the probed positions are those at an even
    // address, every second one, which covers every trigger of 3 or more bytes just as well.
    const at = from + ((bytes.byteOffset + from) & 1);
    const count = (to - at) >> 1;
    if (count <= 0) return;
    const words = new Uint16Array(bytes.buffer, bytes.byteOffset + at, count);
    const blocks = this.wordBlocks;
    let k = 0;
    // Four probes per turn; almost every turn finds none of them set.
    for (; k + 3 < count; k += 4) {
      if (
        (blocks[words[k]!]! | blocks[words[k + 1]!]! | blocks[words[k + 2]!]! | blocks[words[k + 3]!]!) ===
        0
      )
        continue;
      for (let j = k; j < k + 4; j++)
        if (blocks[words[j]!] !== 0) this.confirm(bytes, from, to, at + 2 * j, hits);
    }
    for (; k < count; k++) if (blocks[words[k]!] !== 0) this.confirm(bytes, from, to, at + 2 * k, hits);
  }

  /** `scan` over a string's UTF-16 code units (a unit above 0xff never begins a trigger). */
  scanText(text: string, hits: TriggerHit[]): void {
    this.probeText(text, hits);
  }

  /** Whether any trigger occurs in `text`: `scanText` that stops at the first, with nothing allocated. */
  occursInText(text: string): boolean {
    return this.probeText(text, undefined);
  }

  /** The probes of `scanText`; with no `hits`, true at the first trigger found. */
  private probeText(text: string, hits: TriggerHit[] | undefined): boolean {
    if (text.length >= minByteProbedText && text.length <= textScratch.length)
      return this.probeTextAsBytes(text, hits);
    const blocks = this.blocks;
    const last = text.length - 1;
    for (let i = 1; i < last; i += 2) {
      const a = text.charCodeAt(i);
      const b = text.charCodeAt(i + 1);
      if ((a | b) > 0xff || blocks[(a << 8) | b] === 0) continue;
      if (this.confirmText(text, i, hits)) return true;
    }
    return false;
  }

  /**
   * `probeText` over the text copied into a scratch buffer, one byte per UTF-16 unit, and read as aligned 16-bit
   * words like `scan`: one load per probe instead of two `charCodeAt`. A unit above 0xff leaves only its low byte,
   * which at worst makes a probe hit that `confirmText`, reading the text itself, then rejects; an ASCII unit is
   * its own byte, so no trigger is missed.
   */
  private probeTextAsBytes(text: string, hits: TriggerHit[] | undefined): boolean {
    const count = textScratch.latin1Write(text, 0, text.length) >> 1;
    const words = textScratchWords;
    const blocks = this.wordBlocks;
    let k = 0;
    for (; k + 3 < count; k += 4) {
      if (
        (blocks[words[k]!]! | blocks[words[k + 1]!]! | blocks[words[k + 2]!]! | blocks[words[k + 3]!]!) ===
        0
      )
        continue;
      for (let j = k; j < k + 4; j++)
        if (blocks[words[j]!] !== 0 && this.confirmText(text, 2 * j, hits)) return true;
    }
    for (; k < count; k++) if (blocks[words[k]!] !== 0 && this.confirmText(text, 2 * k, hits)) return true;
    return false;
  }

  /** Confirm the candidates at `i`; pushes each into `hits`, or with no `hits` returns true at the first. */
  private confirmText(text: string, i: number, hits: TriggerHit[] | undefined): boolean {
    const list = this.candidates[(FOLD[text.charCodeAt(i)]! << 8) | FOLD[text.charCodeAt(i + 1)]!];
    if (list === undefined) return false;
    for (let k = 0; k < list.length; k += 2) {
      const trigger = list[k]!;
      const start = i - list[k + 1]!;
      const literal = this.literals[trigger]!;
      if (start < 0 || start + literal.length > text.length) continue;
      let n = 0;
      while (n < literal.length) {
        const c = text.charCodeAt(start + n);
        if (c > 0xff || FOLD[c] !== literal[n]) break;
        n++;
      }
      if (n !== literal.length) continue;
      if (hits === undefined) return true;
      hits.push({ at: start, trigger });
    }
    return false;
  }

  private confirm(bytes: Uint8Array, from: number, to: number, i: number, hits: TriggerHit[]): void {
    const list = this.candidates[(FOLD[bytes[i]!]! << 8) | FOLD[bytes[i + 1]!]!];
    if (list === undefined) return;
    for (let k = 0; k < list.length; k += 2) {
      const trigger = list[k]!;
      const start = i - list[k + 1]!;
      const literal = this.literals[trigger]!;
      if (start < from || start + literal.length > to) continue;
      let n = 0;
      while (n < literal.length && FOLD[bytes[start + n]!] === literal[n]) n++;
      if (n === literal.length) hits.push({ at: start, trigger });
    }
  }

  /**
   * Length of the longest tail of `bytes[from, to)` that is the beginning of a trigger (the rest of it may be in
   * the next chunk), at most `longest - 1`.
   */
  partialSuffix(bytes: Uint8Array, from: number, to: number): number {
    for (let length = Math.min(this.longest - 1, to - from); length > 0; length--) {
      if (this.firstBytes[bytes[to - length]!] === 0) continue;
      let text = '';
      for (let i = to - length; i < to; i++) text += String.fromCharCode(FOLD[bytes[i]!]!);
      if (this.prefixes.has(text)) return length;
    }
    return 0;
  }
}

function caseVariants(folded: number): number[] {
  return folded >= 97 && folded <= 122 ? [folded, folded - 32] : [folded];
}
