/**
 * The rule engine: pure, synchronous `decide(command, identity, listener) → PolicyDecision`.
 * Every matching rule counts; deny beats approve beats allow (SPEC §3). No matching rule allows, except where the
 * gateway must fail closed: a command it could not analyse, and SSH forwarding channels (allowed only by a rule).
 */
import {
  matchesPrincipal,
  type Command,
  type Identity,
  type RuleAction,
  type RuleConfig,
} from '@agentgate/core';
import {
  compileMatch,
  matchDocker,
  matchPostgres,
  matchSsh,
  matchTest,
  protocolKeys,
  type CompiledMatch,
} from './matchers.js';

export interface PolicyDecision {
  readonly action: RuleAction;
  /** The deciding rule (first in config order among those with the winning action); built-ins are `builtin:*`. */
  readonly rule?: string;
  /** Every rule that matched, in config order. */
  readonly matched: readonly string[];
  /** The approvers for an `approve` decision, when the rule overrides `approvals.approvers`. */
  readonly approvers?: readonly string[];
  /** Why a built-in rule denied. */
  readonly reason?: string;
}

interface CompiledRule {
  readonly config: RuleConfig;
  readonly match: CompiledMatch;
  readonly protocols: ReadonlySet<string>;
}

export interface Policy {
  decide(command: Command, identity: Identity, listener: string): PolicyDecision;
}

const rank: Record<RuleAction, number> = { allow: 0, approve: 1, deny: 2 };

export const BUILTIN_UNANALYSABLE = 'builtin:unanalysable';
export const BUILTIN_DYNAMIC = 'builtin:dynamic-sql';
export const BUILTIN_UNKNOWN_PROGRAM = 'builtin:unknown-program';
export const BUILTIN_FORWARDING = 'builtin:forwarding-not-allowed';

function protocolsFor(rule: RuleConfig): Set<string> {
  if (rule.protocol) return new Set([rule.protocol]);
  const given = Object.keys(rule.match).filter((k) => rule.match[k as keyof typeof rule.match] !== undefined);
  return new Set(
    Object.entries(protocolKeys)
      .filter(([, keys]) => given.every((k) => (keys as readonly string[]).includes(k)))
      .map(([p]) => p),
  );
}

export function createPolicy(rules: readonly RuleConfig[]): Policy {
  const compiled: CompiledRule[] = rules.map((config) => ({
    config,
    match: compileMatch(config.match),
    protocols: protocolsFor(config),
  }));

  function ruleMatches(
    rule: CompiledRule,
    command: Command,
    widen = rule.config.action !== 'allow',
  ): boolean {
    // Unknown facts (dynamic SQL, a program computed at run time) widen only deny/approve rules: an unknown
    // command must never be *allowed* because of what it might be.
    switch (command.protocol) {
      case 'postgres':
        return matchPostgres(command, rule.match, widen);
      case 'ssh':
        return matchSsh(command, rule.match, widen);
      case 'docker':
        return matchDocker(command, rule.match, widen);
      case 'test':
        return matchTest(command, rule.match);
    }
  }

  return {
    decide(command, identity, listener) {
      if (command.unanalysable !== undefined) {
        return { action: 'deny', rule: BUILTIN_UNANALYSABLE, matched: [], reason: command.unanalysable };
      }
      const matched: CompiledRule[] = [];
      for (const rule of compiled) {
        const c = rule.config;
        if (!rule.protocols.has(command.protocol)) continue;
        if (c.listeners && !c.listeners.includes(listener)) continue;
        if (c.who && !matchesPrincipal(identity, c.who)) continue;
        if (ruleMatches(rule, command)) matched.push(rule);
      }
      const names = matched.map((r) => r.config.name);
      let winner: CompiledRule | undefined;
      for (const r of matched) if (!winner || rank[r.config.action] > rank[winner.config.action]) winner = r;

      const unknownDenied = builtinDenial(command, matched);
      if (unknownDenied && (!winner || winner.config.action !== 'deny')) {
        return { action: 'deny', rule: unknownDenied.rule, matched: names, reason: unknownDenied.reason };
      }
      if (!winner) return { action: 'allow', matched: names };
      const decision: PolicyDecision = {
        action: winner.config.action,
        rule: winner.config.name,
        matched: names,
        // Say so when the rule holds only because part of the command cannot be known before it runs.
        ...(winner.config.action !== 'allow' && !ruleMatches(winner, command, false)
          ? { reason: unknownReason(command) }
          : {}),
      };
      return winner.config.approvers ? { ...decision, approvers: winner.config.approvers } : decision;
    },
  };

  /** Fail-closed cases: unknown facts the listener says to deny, and forwarding no allow rule opened. */
  function builtinDenial(
    command: Command,
    matched: readonly CompiledRule[],
  ): { rule: string; reason: string } | undefined {
    if (command.protocol === 'postgres' && command.unknownMatchesAll === false) {
      if (command.statements.some((s) => s.dynamic)) {
        return { rule: BUILTIN_DYNAMIC, reason: 'dynamic SQL that cannot be analysed before it runs' };
      }
    }
    if (command.protocol === 'ssh' || command.protocol === 'docker') {
      const simple = command.protocol === 'ssh' ? command.simpleCommands : (command.exec ?? []);
      if (command.unknownMatchesAll === false && simple.some((c) => c.program === null)) {
        return { rule: BUILTIN_UNKNOWN_PROGRAM, reason: 'a program that cannot be known before it runs' };
      }
    }
    if (
      command.protocol === 'ssh' &&
      command.kind === 'channel' &&
      command.channel &&
      command.channel !== 'session'
    ) {
      const channel = command.channel;
      const opened = matched.some(
        (r) => r.config.action !== 'deny' && r.config.match.channels?.includes(channel),
      );
      if (!opened)
        return {
          rule: BUILTIN_FORWARDING,
          reason: `${channel} channels are denied unless a rule allows them`,
        };
    }
    return undefined;
  }
}

function unknownReason(command: Command): string {
  return command.protocol === 'postgres'
    ? 'it runs dynamic SQL that cannot be analysed before it runs, so it counts as matching every rule'
    : 'it runs a program that cannot be known before it runs, so it counts as matching every rule';
}
