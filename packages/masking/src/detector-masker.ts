/**
 * One compiled scanner for a set of content detectors: a trigger pre-filter (a single regex test; most values of a
 * result, such as numbers, names and dates, fail it and are returned untouched at once) and a combined alternation
 * of every detector, so a value is scanned once however many detectors are enabled.
 */
import type { ValueMasker } from '@agentgate/core';
import type { DetectorDefinition } from './detectors.js';
import type { MaskFunction } from './strategies.js';
import { textFeatures } from './text-features.js';

export interface DetectorBinding {
  readonly detector: DetectorDefinition;
  /** The masking rule that enabled this detector (first in config order): its strategy and name apply. */
  readonly rule: string;
  readonly mask: MaskFunction;
}

export type MaskedCounter = (rule: string, detector: string, n: number) => void;

export class DetectorMasker implements ValueMasker {
  private readonly triggers: readonly RegExp[];
  private readonly scanner: RegExp;
  private readonly minLength: number;
  private readonly counts: Uint32Array;

  constructor(
    private readonly bindings: readonly DetectorBinding[],
    private readonly onMasked: MaskedCounter | undefined,
  ) {
    this.triggers = bindings.map((b) => new RegExp(b.detector.trigger));
    // `d` gives group indices, so only a detector's secret part is replaced (`Bearer ****`).
    this.scanner = new RegExp(
      bindings.map((b, i) => `(?<d${i}>${b.detector.pattern.replace('(?<S>', `(?<d${i}s>`)})`).join('|'),
      'dg',
    );
    this.minLength = Math.min(...bindings.map((b) => b.detector.minLength));
    this.counts = new Uint32Array(bindings.length);
  }

  /** Pre-filter: the char-code features rule out most detectors; the survivors' trigger regexes decide. */
  private mayMatch(value: string): boolean {
    const features = textFeatures(value);
    for (let index = 0; index < this.bindings.length; index++) {
      if (this.bindings[index]!.detector.candidate(features) && this.triggers[index]!.test(value))
        return true;
    }
    return false;
  }

  mask(value: string): string {
    if (value.length < this.minLength || !this.mayMatch(value)) return value;
    const scanner = this.scanner;
    const counts = this.counts;
    scanner.lastIndex = 0;
    let output = '';
    let copiedUpTo = 0;
    let changed = false;
    let match: RegExpExecArray | null;
    while ((match = scanner.exec(value)) !== null) {
      if (match[0].length === 0) {
        scanner.lastIndex++;
        continue;
      }
      const groups = match.groups!;
      let index = 0;
      while (groups[`d${index}`] === undefined) index++;
      const binding = this.bindings[index]!;
      if (binding.detector.validate && !binding.detector.validate(match[0])) continue;
      const [start, end] = match.indices!.groups![`d${index}s`] ?? match.indices!.groups![`d${index}`]!;
      output += value.slice(copiedUpTo, start) + binding.mask(value.slice(start, end));
      copiedUpTo = end;
      changed = true;
      counts[index]!++;
    }
    if (!changed) return value;
    output += value.slice(copiedUpTo);
    for (let index = 0; index < counts.length; index++) {
      const n = counts[index]!;
      if (n === 0) continue;
      counts[index] = 0;
      const binding = this.bindings[index]!;
      this.onMasked?.(binding.rule, binding.detector.name, n);
    }
    return output;
  }
}
