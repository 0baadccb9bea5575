/**
 * The rule engine: pure, synchronous `decide(command, identity, listener) → PolicyDecision`.
 * Every matching rule counts; deny beats approve beats allow (docs/configuration.md). With the listener's default
 * `allow`, no matching rule allows, except where the gateway must fail closed: a command it could not analyse, and
 * SSH forwarding channels (allowed only by a rule). With `default: deny` (allow-list mode) a command runs only when
 * allow or approve rules permit every part of it.
 */
import {
  matchesPrincipal,
  type Command,
  type DockerCommand,
  type Identity,
  type ListenerConfig,
  type RuleAction,
  type RuleConfig,
} from '@agentgate/core';
import {
  compileMatch,
  dockerRequestCovered,
  isSessionStatement,
  matchDocker,
  matchPostgres,
  matchSsh,
  protocolKeys,
  simpleCommandCovered,
  sshRequestCovered,
  statementCovered,
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
export const BUILTIN_DEFAULT_DENY = 'builtin:default-deny';

/** What the policy needs of a listener: its name and what happens to a command no rule permits. */
export type ListenerDefault = Pick<ListenerConfig, 'name' | 'default'>;

function protocolsFor(rule: RuleConfig): Set<string> {
  if (rule.protocol) return new Set([rule.protocol]);
  const given = Object.keys(rule.match).filter((k) => rule.match[k as keyof typeof rule.match] !== undefined);
  return new Set(
    Object.entries(protocolKeys)
      .filter(([, keys]) => given.every((k) => (keys as readonly string[]).includes(k)))
      .map(([p]) => p),
  );
}

export function createPolicy(
  rules: readonly RuleConfig[],
  listeners: readonly ListenerDefault[] = [],
): Policy {
  const compiled: CompiledRule[] = rules.map((config) => ({
    config,
    match: compileMatch(config.match),
    protocols: protocolsFor(config),
  }));
  const allowListed = new Set(listeners.filter((l) => l.default === 'deny').map((l) => l.name));

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
    }
  }

  return {
    decide(command, identity, listener) {
      if (command.unanalysable !== undefined) {
        return { action: 'deny', rule: BUILTIN_UNANALYSABLE, matched: [], reason: command.unanalysable };
      }
      const matched: CompiledRule[] = [];
      const applicable: CompiledRule[] = [];
      for (const rule of compiled) {
        const c = rule.config;
        if (!rule.protocols.has(command.protocol)) continue;
        if (c.listeners && !c.listeners.includes(listener)) continue;
        if (c.who && !matchesPrincipal(identity, c.who)) continue;
        applicable.push(rule);
        if (ruleMatches(rule, command)) matched.push(rule);
      }
      const names = matched.map((r) => r.config.name);
      let winner: CompiledRule | undefined;
      for (const r of matched) if (!winner || rank[r.config.action] > rank[winner.config.action]) winner = r;

      const unknownDenied = builtinDenial(command, matched);
      if (unknownDenied && (!winner || winner.config.action !== 'deny')) {
        return { action: 'deny', rule: unknownDenied.rule, matched: names, reason: unknownDenied.reason };
      }
      if (allowListed.has(listener) && winner?.config.action !== 'deny') {
        const permits = applicable.filter((r) => r.config.action !== 'deny').map((r) => r.match);
        const part = unpermittedPart(command, permits);
        if (part !== undefined) {
          const reason = `no allow rule matches ${part} (listener default: deny)`;
          return { action: 'deny', rule: BUILTIN_DEFAULT_DENY, matched: names, reason };
        }
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

/**
 * Allow-list mode: the first part of the command that no allow or approve rule permits, described for the client
 * and the record (by its facts, never its text, which may hold a credential), or undefined when every part is
 * permitted. Parts: each SQL statement (nested ones included), each simple command of a shell line or subsystem
 * request, the Docker request and each program its exec runs, a forwarding channel, a file write.
 */
function unpermittedPart(command: Command, permits: readonly CompiledMatch[]): string | undefined {
  switch (command.protocol) {
    case 'postgres': {
      const s = command.statements.find(
        (st) => !isSessionStatement(st) && !permits.some((m) => statementCovered(st, m)),
      );
      if (s === undefined) return undefined;
      if (s.dynamic) return 'dynamic SQL that cannot be known before it runs';
      return `${s.command}${s.tables.length > 0 ? ` on ${s.tables.join(', ')}` : ''}`;
    }
    case 'ssh': {
      if (command.kind === 'channel') {
        return permits.some((m) => sshRequestCovered(command, m))
          ? undefined
          : `a ${command.channel} channel`;
      }
      if (command.kind === 'file-write' || command.kind === 'file-read') {
        if (permits.some((m) => sshRequestCovered(command, m))) return undefined;
        return `a file ${command.kind === 'file-write' ? 'write' : 'read'} of ${command.path ?? '?'}`;
      }
      const c = command.simpleCommands.find((sc) => !permits.some((m) => simpleCommandCovered(sc, m)));
      return c === undefined ? undefined : programPart(c.program);
    }
    case 'docker': {
      const fitting = permits.filter((m) => dockerRequestCovered(command, m));
      if (fitting.length === 0) return dockerPart(command);
      const c = (command.exec ?? []).find(
        (sc) =>
          !fitting.some(
            (m) => (m.programs === undefined && m.pattern === undefined) || simpleCommandCovered(sc, m),
          ),
      );
      return c === undefined ? undefined : programPart(c.program);
    }
  }
}

function programPart(program: string | null): string {
  return program === null ? 'a program that cannot be known before it runs' : `program ${program}`;
}

function dockerPart(command: DockerCommand): string {
  const facts: string[] = [];
  if (command.privileged) facts.push('privileged');
  if (command.hostMounts.length > 0) facts.push(`host mounts ${command.hostMounts.join(', ')}`);
  if (command.capabilities.length > 0) facts.push(`capabilities ${command.capabilities.join(', ')}`);
  if (command.hostNamespaces.length > 0) facts.push(`host namespaces ${command.hostNamespaces.join(', ')}`);
  if (command.images.length > 0) facts.push(`images ${command.images.join(', ')}`);
  return facts.length > 0 ? `${command.action} (${facts.join('; ')})` : command.action;
}

function unknownReason(command: Command): string {
  return command.protocol === 'postgres'
    ? 'it runs dynamic SQL that cannot be analysed before it runs, so it counts as matching every rule'
    : 'it runs a program that cannot be known before it runs, so it counts as matching every rule';
}
