/**
 * RowDescriptions decoded once per distinct message: a session that repeats a statement gets the same column
 * description back each time, so the last one seen is kept (bytes, decoded fields, and the form a `result` event
 * records) and handed out again while the bytes are equal. The objects are shared and never modified.
 */
import { decodeRowDescription, type FieldDescription } from './codec/decode.js';

export interface RowDescription {
  readonly fields: readonly FieldDescription[];
  /** What a `result` event records of it. */
  readonly recorded: { readonly names: readonly string[]; readonly typeOids: readonly number[] };
}

export class RowDescriptions {
  private lastBytes: Buffer | undefined;
  private last: RowDescription | undefined;

  /** The description in the RowDescription message `buf[start, end)`. */
  decode(buf: Buffer, start: number, end: number): RowDescription {
    const bytes = this.lastBytes;
    if (
      bytes !== undefined &&
      this.last !== undefined &&
      bytes.length === end - start &&
      buf.compare(bytes, 0, bytes.length, start, end) === 0
    )
      return this.last;
    const fields = Object.freeze(decodeRowDescription(buf, start, end));
    const description: RowDescription = Object.freeze({
      fields,
      recorded: Object.freeze({
        names: Object.freeze(fields.map((f) => f.name)),
        typeOids: Object.freeze(fields.map((f) => f.typeOid)),
      }),
    });
    // A copy: the region it came from may be a view of a larger chunk that must not be kept alive.
    this.lastBytes = Buffer.from(buf.subarray(start, end));
    this.last = description;
    return description;
  }
}
