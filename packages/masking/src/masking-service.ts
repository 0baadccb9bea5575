/**
 * The masking service: compiles the config's masking rules once, hands each session a SessionMasker for the rules
 * that apply to its identity and listener, and caches per rule set, so sessions with the same rules share one
 * compiled detector scanner and one column lookup cache.
 */
import { randomBytes } from 'node:crypto';
import {
  AgentgateError,
  matchesPrincipal,
  type ColumnSource,
  type Identity,
  type MaskingRuleConfig,
  type MaskingService,
  type SessionMasker,
  type ValueMasker,
} from '@agentgate/core';
import { compileColumnPattern, type ColumnPattern } from './column-pattern.js';
import { DetectorMasker, type DetectorBinding, type MaskedCounter } from './detector-masker.js';
import { detectorByName, KNOWN_DETECTORS } from './detectors.js';
import { maskFunction, type MaskFunction } from './strategies.js';

export interface MaskingServiceOptions {
  /** Key of the `hash` strategy; a random per-process key when absent (hashes then differ across restarts). */
  readonly hashKey?: Buffer;
  /** Called for every masked value (n = 1 per column value, n = hits per detector in a text value). */
  readonly onMasked?: MaskedCounter;
}

interface CompiledRule {
  readonly config: MaskingRuleConfig;
  readonly columns: readonly ColumnPattern[];
  readonly mask: MaskFunction;
  readonly columnMasker: ValueMasker;
}

/** A bound on distinct (schema, table, column) entries per rule set, against clients inventing names. */
const MAX_CACHED_COLUMNS = 10_000;
const MAX_CACHED_RULE_SETS = 256;

export const DEFAULT_REPLACEMENT = '****';

export function createMaskingService(
  rules: readonly MaskingRuleConfig[],
  options: MaskingServiceOptions = {},
): MaskingService {
  const hashKey = options.hashKey ?? randomBytes(32);
  const onMasked = options.onMasked;
  const compiled = rules.map((rule) => compileRule(rule, hashKey, onMasked));
  const inactive: SessionMasker = {
    active: false,
    forColumn: () => undefined,
    detectors: undefined,
    coversColumn: () => false,
  };
  const byRuleSet = new Map<string, SessionMasker>();

  return {
    forSession(identity: Identity, listener: string): SessionMasker {
      const applicable = compiled.filter((rule) => ruleApplies(rule.config, identity, listener));
      if (applicable.length === 0) return inactive;
      const key = applicable.map((rule) => compiled.indexOf(rule)).join(',');
      let masker = byRuleSet.get(key);
      if (!masker) {
        if (byRuleSet.size >= MAX_CACHED_RULE_SETS) byRuleSet.clear();
        masker = new RuleSetMasker(applicable, onMasked);
        byRuleSet.set(key, masker);
      }
      return masker;
    },
  };
}

function compileRule(
  rule: MaskingRuleConfig,
  hashKey: Buffer,
  onMasked: MaskedCounter | undefined,
): CompiledRule {
  for (const name of rule.detectors) {
    if (!detectorByName(name)) {
      throw new AgentgateError(
        'CONFIG_INVALID',
        `masking rule "${rule.name}": unknown detector "${name}" (known: ${KNOWN_DETECTORS.join(', ')})`,
      );
    }
  }
  const mask = maskFunction(rule.strategy ?? 'replace', rule.replacement ?? DEFAULT_REPLACEMENT, hashKey);
  const name = rule.name;
  return {
    config: rule,
    columns: rule.columns.map(compileColumnPattern),
    mask,
    columnMasker: {
      mask(value: string): string {
        const masked = mask(value);
        if (masked === value) return value;
        onMasked?.(name, 'column', 1);
        return masked;
      },
    },
  };
}

function ruleApplies(rule: MaskingRuleConfig, identity: Identity, listener: string): boolean {
  if (rule.listeners && rule.listeners.length > 0 && !rule.listeners.includes(listener)) return false;
  if (rule.who && rule.who.length > 0 && !matchesPrincipal(identity, rule.who)) return false;
  return true;
}

class RuleSetMasker implements SessionMasker {
  readonly active = true;
  readonly detectors: ValueMasker | undefined;
  private readonly columnCache = new Map<string, ValueMasker | null>();
  private readonly coverCache = new Map<string, boolean>();

  constructor(
    private readonly rules: readonly CompiledRule[],
    onMasked: MaskedCounter | undefined,
  ) {
    // Each detector is bound to the first rule (config order) that enables it.
    const bindings: DetectorBinding[] = [];
    const enabled = new Map<string, CompiledRule>();
    for (const rule of rules) {
      for (const name of rule.config.detectors) if (!enabled.has(name)) enabled.set(name, rule);
    }
    // Alternation order follows the detector table (most specific first), not the config.
    for (const name of KNOWN_DETECTORS) {
      const rule = enabled.get(name);
      if (!rule) continue;
      bindings.push({ detector: detectorByName(name)!, rule: rule.config.name, mask: rule.mask });
    }
    this.detectors = bindings.length > 0 ? new DetectorMasker(bindings, onMasked) : undefined;
  }

  forColumn(source: ColumnSource): ValueMasker | undefined {
    const key = `${source.schema}\u0000${source.table}\u0000${source.column}`;
    const cached = this.columnCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const rule = this.rules.find((r) => r.columns.some((pattern) => pattern.matches(source)));
    const masker = rule ? rule.columnMasker : null;
    if (this.columnCache.size >= MAX_CACHED_COLUMNS) this.columnCache.clear();
    this.columnCache.set(key, masker);
    return masker ?? undefined;
  }

  coversColumn(source: ColumnSource): boolean {
    const key = `${source.schema}\u0000${source.table}\u0000${source.column}`;
    const cached = this.coverCache.get(key);
    if (cached !== undefined) return cached;
    const covered = this.rules.some((r) => r.columns.some((pattern) => pattern.overlaps(source)));
    if (this.coverCache.size >= MAX_CACHED_COLUMNS) this.coverCache.clear();
    this.coverCache.set(key, covered);
    return covered;
  }
}
