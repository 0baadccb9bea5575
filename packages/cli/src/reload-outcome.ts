import { isDeepStrictEqual } from 'node:util';
import type { AgentgateConfig, ListenerConfig } from '@agentgate/core';
import type { IdentityChanges } from '@agentgate/identity';
import { redactionEntries } from '@agentgate/masking';

/** A reloaded rule or masking rule, and the listeners it names that the running gateway does not have. */
export type ScopedToAbsentListeners =
  | { readonly rule: string; readonly listeners: readonly string[] }
  | { readonly masking: string; readonly listeners: readonly string[] };

/** What a reload applied, and what it could not apply without a restart. */
export interface ReloadOutcome {
  readonly rules: number;
  readonly masking: number;
  /** Redaction entries in force. */
  readonly redact: number;
  /** Top-level sections that differ from the running configuration; they take effect at the next restart. */
  readonly needsRestart: readonly string[];
  /** Reloaded rules scoped to listeners that are not running (a renamed listener): absent when there are none. */
  readonly absentListeners?: readonly ScopedToAbsentListeners[];
  /** What the reloaded `identity` section removed and added; removed credentials' sessions were ended. */
  readonly identity: IdentityChanges;
  /** Listeners whose `allow` the reload replaced, and how many open sessions it no longer admitted (ended). */
  readonly allow?: AllowChanges;
}

export interface AllowChanges {
  readonly listeners: readonly string[];
  readonly sessionsEnded: number;
}

/** Sections a running gateway cannot swap: they own sockets, keys, the store or the identity caches. */
const RESTART_SECTIONS = ['store', 'signingKey', 'admin', 'listeners', 'console', 'fleet'] as const;

/** The sections of a reloaded file that differ from the running configuration and wait for a restart. */
export function sectionsNeedingRestart(running: AgentgateConfig, next: AgentgateConfig): string[] {
  return RESTART_SECTIONS.filter((k) => !isDeepStrictEqual(next[k], running[k]));
}

/**
 * Rules and masking rules of a reloaded file that name listeners the gateway is not running. Listeners change only
 * at a restart, so a file that renamed `db` to `prod-db` scopes its rules to a listener that does not run yet, and
 * they do not apply to the `db` still running: the operator is told; the reload applies as usual.
 */
export function scopedToAbsentListeners(
  running: readonly Pick<ListenerConfig, 'name'>[],
  next: Pick<AgentgateConfig, 'rules' | 'masking'>,
): ScopedToAbsentListeners[] {
  const absent = (names: readonly string[] | undefined): string[] =>
    (names ?? []).filter((name) => !running.some((l) => l.name === name));
  return [
    ...next.rules.map((r) => ({ rule: r.name, listeners: absent(r.listeners) })),
    ...next.masking.map((m) => ({ masking: m.name, listeners: absent(m.listeners) })),
  ].filter((entry) => entry.listeners.length > 0);
}

/** The outcome of applying `next` over the `running` configuration (the reload record and the log line). */
export function reloadOutcome(
  running: AgentgateConfig,
  next: AgentgateConfig,
  needsRestart: readonly string[],
  identity: IdentityChanges,
  allow: AllowChanges = { listeners: [], sessionsEnded: 0 },
): ReloadOutcome {
  const absentListeners = scopedToAbsentListeners(running.listeners, next);
  return {
    rules: next.rules.length,
    masking: next.masking.length,
    redact: redactionEntries(next.redact).length,
    needsRestart,
    identity,
    ...(absentListeners.length === 0 ? {} : { absentListeners }),
    ...(allow.listeners.length === 0 ? {} : { allow }),
  };
}
