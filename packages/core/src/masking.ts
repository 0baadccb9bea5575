/**
 * Masking as protocols see it. `@agentgate/masking` implements it; a protocol asks for a per-session masker once,
 * compiles a plan per result shape and applies it per value.
 * (Owned by the masking package's author: extend as needed, keep it protocol-neutral.)
 */
import type { Identity } from './identity.js';

export interface ColumnSource {
  /** Lower-case schema name, e.g. `public`. */
  readonly schema: string;
  readonly table: string;
  readonly column: string;
}

export interface MaskHit {
  readonly rule: string;
  /** `column` for a column rule, else the detector name. */
  readonly detector: string;
}

export interface ValueMasker {
  /** Mask one text value; returns the original string object when nothing matched (cheap identity check). */
  mask(value: string): string;
}

export interface SessionMasker {
  /** False when no masking rule applies to this session: protocols then skip all masking work. */
  readonly active: boolean;
  /** The column rule's masker for a source column, or undefined when the column is not masked. */
  forColumn(source: ColumnSource): ValueMasker | undefined;
  /** Content detectors for any text value (all columns, notices, env values, output). */
  readonly detectors: ValueMasker | undefined;
  /** True when `table.column` (either part may be `*`) is covered by a column rule: used to refuse derivations. */
  coversColumn(source: ColumnSource): boolean;
}

export interface MaskingService {
  forSession(identity: Identity, listener: string): SessionMasker;
  /**
   * Changes whenever the rules behind `forSession` change (a configuration reload): a long-lived session compares
   * it with the value it built its masker from and asks again at its next safe point. Absent: never changes.
   */
  readonly generation?: number;
}

export const noMasking: MaskingService = {
  forSession: () => ({
    active: false,
    forColumn: () => undefined,
    detectors: undefined,
    coversColumn: () => false,
  }),
};
