import {
  DOCKER_ACTIONS,
  type HostNamespace,
  type ListenerConfig,
  type MaskingRuleConfig,
  type Protocol,
  type RuleConfig,
  type RuleMatch,
} from '@agentgate/core';
import { child, item, type Checker, type Mapping } from './checker.js';
import { KNOWN_DETECTORS } from './detectors.js';
import { didYouMean } from './did-you-mean.js';

type MatchKey = keyof RuleMatch;
type MatchKind = 'strings' | 'boolean' | 'pattern' | 'channels' | 'namespaces' | 'actions';

/** Which protocols' facts each match key speaks of (docs/configuration.md, "PostgreSQL / SSH / Docker match keys"), and its value type. */
const MATCH_KEYS: Record<MatchKey, { protocols: readonly Protocol[]; kind: MatchKind }> = {
  commands: { protocols: ['postgres'], kind: 'strings' },
  tables: { protocols: ['postgres'], kind: 'strings' },
  functions: { protocols: ['postgres'], kind: 'strings' },
  unfilteredWrites: { protocols: ['postgres'], kind: 'boolean' },
  pattern: { protocols: ['postgres', 'ssh', 'docker'], kind: 'pattern' },
  programs: { protocols: ['ssh', 'docker'], kind: 'strings' },
  channels: { protocols: ['ssh'], kind: 'channels' },
  paths: { protocols: ['ssh'], kind: 'strings' },
  actions: { protocols: ['docker'], kind: 'actions' },
  privileged: { protocols: ['docker'], kind: 'boolean' },
  hostMounts: { protocols: ['docker'], kind: 'strings' },
  hostNamespaces: { protocols: ['docker'], kind: 'namespaces' },
  capabilities: { protocols: ['docker'], kind: 'strings' },
  images: { protocols: ['docker'], kind: 'strings' },
};
const ALL_MATCH_KEYS = Object.keys(MATCH_KEYS) as MatchKey[];
const CHANNELS = ['port-forward', 'agent-forward', 'x11'] as const;
const HOST_NAMESPACES: readonly HostNamespace[] = ['pid', 'network', 'ipc', 'uts', 'userns', 'cgroup'];

/** `hostNamespaces`: `true`/`false`, or a non-empty list of namespace names. */
function readNamespaces(
  checker: Checker,
  value: unknown,
  path: string,
): boolean | HostNamespace[] | undefined {
  if (typeof value === 'boolean') return value;
  if (!Array.isArray(value)) {
    checker.expected(path, `true, false or a list of ${HOST_NAMESPACES.join(', ')}`, value);
    return undefined;
  }
  if (value.length === 0) {
    checker.expected(path, `a non-empty list of ${HOST_NAMESPACES.join(', ')}`, value);
    return undefined;
  }
  const names = checker.list(value, path, (v, p) => checker.oneOf(v, p, HOST_NAMESPACES));
  return names !== undefined && names.length === value.length ? [...new Set(names)] : undefined;
}

/**
 * Docker `actions`: names or `*` globs (as the policy matches them, case-insensitively), each of which must name at
 * least one action dockerd has; a rule naming none would never match.
 */
function readActions(checker: Checker, value: unknown, path: string): string[] | undefined {
  const names = checker.strings(value, path, undefined, true);
  if (names === undefined) return undefined;
  let ok = true;
  names.forEach((name, index) => {
    const glob = new RegExp(`^${name.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
    if (DOCKER_ACTIONS.some((action) => glob.test(action))) return;
    const hint = didYouMean(name, DOCKER_ACTIONS);
    checker.report(
      item(path, index),
      `expected a Docker action (such as container.create, image.pull or image.*; docs/configuration.md lists them), found unknown action "${name}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
    );
    ok = false;
  });
  return ok ? names : undefined;
}

export function matchKeysOf(protocol: Protocol): MatchKey[] {
  return ALL_MATCH_KEYS.filter((key) => MATCH_KEYS[key].protocols.includes(protocol));
}

function readMatch(
  checker: Checker,
  value: unknown,
  path: string,
  protocol: Protocol | undefined,
): RuleMatch | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    checker.expected(path, 'a mapping of match keys (e.g. commands, programs, actions, pattern)', value);
    return undefined;
  }
  const raw = value as Mapping;
  const keys = Object.keys(raw);
  if (keys.length === 0) {
    checker.expected(path, 'at least one match key', 'an empty mapping');
    return undefined;
  }
  const match: Record<string, unknown> = {};
  const possible = new Set<Protocol>(['postgres', 'ssh', 'docker']);
  let ok = true;
  for (const key of keys) {
    const keyPath = child(path, key);
    const spec = MATCH_KEYS[key as MatchKey] as (typeof MATCH_KEYS)[MatchKey] | undefined;
    if (spec === undefined) {
      const candidates = protocol === undefined ? ALL_MATCH_KEYS : matchKeysOf(protocol);
      const hint = didYouMean(key, candidates);
      checker.report(
        keyPath,
        `expected a match key (${candidates.join(', ')}), found unknown key "${key}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
      );
      ok = false;
      continue;
    }
    if (protocol !== undefined && !spec.protocols.includes(protocol)) {
      checker.report(
        keyPath,
        `expected a ${protocol} match key (${matchKeysOf(protocol).join(', ')}), found "${key}", which is a ${spec.protocols.join('/')} key`,
      );
      ok = false;
      continue;
    }
    for (const p of [...possible]) if (!spec.protocols.includes(p)) possible.delete(p);
    let read: unknown;
    switch (spec.kind) {
      case 'strings':
        read = checker.strings(raw[key], keyPath, undefined, true);
        break;
      case 'actions':
        read = readActions(checker, raw[key], keyPath);
        break;
      case 'boolean':
        read = checker.boolean(raw[key], keyPath);
        break;
      case 'channels':
        read = checker.list(raw[key], keyPath, (v, p) => checker.oneOf(v, p, CHANNELS));
        break;
      case 'namespaces':
        read = readNamespaces(checker, raw[key], keyPath);
        break;
      case 'pattern': {
        const text = checker.string(raw[key], keyPath);
        if (text !== undefined) {
          try {
            new RegExp(text);
            read = text;
          } catch (err) {
            checker.expected(
              keyPath,
              'a valid regular expression',
              `${JSON.stringify(text)} (${(err as Error).message})`,
            );
          }
        }
        break;
      }
    }
    if (read === undefined) ok = false;
    else match[key] = read;
  }
  if (ok && protocol === undefined && possible.size === 0) {
    checker.report(
      path,
      `expected match keys of one protocol (or a protocol key on the rule), found ${keys.join(', ')}, which no single protocol has`,
    );
    ok = false;
  }
  return ok ? (match as RuleMatch) : undefined;
}

export function readRule(
  checker: Checker,
  value: unknown,
  path: string,
  listeners: readonly ListenerConfig[],
  listenerNames: ReadonlySet<string>,
): RuleConfig | undefined {
  const m = checker.mapping(value, path, [
    'name',
    'protocol',
    'listeners',
    'who',
    'match',
    'action',
    'approvers',
  ]);
  if (m === undefined) return undefined;
  const name = checker.string(m.name, child(path, 'name'));
  const protocol =
    m.protocol === undefined
      ? undefined
      : checker.oneOf(m.protocol, child(path, 'protocol'), ['postgres', 'ssh', 'docker'] as const);
  const protocolOk = m.protocol === undefined || protocol !== undefined;
  const ruleListeners =
    m.listeners === undefined
      ? undefined
      : readListenerRefs(checker, m.listeners, child(path, 'listeners'), listenerNames);
  if (ruleListeners !== undefined && protocol !== undefined) {
    ruleListeners.forEach((listenerName, index) => {
      const listener = listeners.find((l) => l.name === listenerName);
      if (listener !== undefined && listener.protocol !== protocol) {
        checker.report(
          child(path, `listeners[${index}]`),
          `expected a ${protocol} listener (the rule's protocol), found "${listenerName}", a ${listener.protocol} listener`,
        );
      }
    });
  }
  const who = m.who === undefined ? undefined : checker.principals(m.who, child(path, 'who'));
  const match = protocolOk ? readMatch(checker, m.match, child(path, 'match'), protocol) : undefined;
  const action = checker.oneOf(m.action, child(path, 'action'), ['allow', 'deny', 'approve'] as const);
  const approvers =
    m.approvers === undefined ? undefined : checker.principals(m.approvers, child(path, 'approvers'));
  if (approvers !== undefined && action !== undefined && action !== 'approve') {
    checker.report(
      child(path, 'approvers'),
      `expected approvers only on a rule with action approve, found action ${action}`,
    );
  }
  if (name === undefined || match === undefined || action === undefined || !protocolOk) return undefined;
  return {
    name,
    ...(protocol === undefined ? {} : { protocol }),
    ...(ruleListeners === undefined ? {} : { listeners: ruleListeners }),
    ...(who === undefined ? {} : { who }),
    match,
    action,
    ...(approvers === undefined ? {} : { approvers }),
  };
}

function readListenerRefs(
  checker: Checker,
  value: unknown,
  path: string,
  listenerNames: ReadonlySet<string>,
): string[] | undefined {
  return checker.list(value, path, (element, p) => {
    const name = checker.string(element, p);
    if (name === undefined || listenerNames.has(name)) return name;
    const hint = didYouMean(name, [...listenerNames]);
    checker.report(
      p,
      `expected the name of a listener (${[...listenerNames].join(', ') || 'none defined'}), found "${name}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
    );
    return undefined;
  });
}

export function readMaskingRule(
  checker: Checker,
  value: unknown,
  path: string,
  listenerNames: ReadonlySet<string>,
  extraDetectors: readonly string[],
): MaskingRuleConfig | undefined {
  const m = checker.mapping(value, path, [
    'name',
    'columns',
    'detectors',
    'replacement',
    'strategy',
    'who',
    'listeners',
  ]);
  if (m === undefined) return undefined;
  const name = checker.string(m.name, child(path, 'name'));
  const columns = checker.list(
    m.columns,
    child(path, 'columns'),
    (element, p) => {
      const column = checker.string(element, p);
      if (column === undefined || /^[^.\s]+(\.[^.\s]+){1,2}$/.test(column)) return column;
      checker.expected(p, 'a column "table.column" or "schema.table.column" (* globs allowed)', column);
      return undefined;
    },
    [],
  );
  const known = [...KNOWN_DETECTORS, ...extraDetectors];
  const detectors = checker.list(
    m.detectors,
    child(path, 'detectors'),
    (element, p) => {
      const detector = checker.string(element, p);
      if (detector === undefined || known.includes(detector)) return detector;
      const hint = didYouMean(detector, known);
      checker.report(
        p,
        `expected a detector (${known.join(', ')}), found "${detector}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
      );
      return undefined;
    },
    [],
  );
  if (
    Array.isArray(m.columns) &&
    Array.isArray(m.detectors) &&
    m.columns.length === 0 &&
    m.detectors.length === 0
  ) {
    checker.report(path, 'expected columns or detectors to mask, found neither');
  } else if (m.columns === undefined && m.detectors === undefined) {
    checker.report(path, 'expected columns or detectors to mask, found neither');
  }
  const replacement =
    m.replacement === undefined
      ? '****'
      : checker.string(m.replacement, child(path, 'replacement'), { nonEmpty: false });
  const strategy = checker.oneOf(
    m.strategy,
    child(path, 'strategy'),
    ['replace', 'partial', 'hash'] as const,
    'replace',
  );
  const who = m.who === undefined ? undefined : checker.principals(m.who, child(path, 'who'));
  const listeners =
    m.listeners === undefined
      ? undefined
      : readListenerRefs(checker, m.listeners, child(path, 'listeners'), listenerNames);
  if (
    name === undefined ||
    columns === undefined ||
    detectors === undefined ||
    replacement === undefined ||
    strategy === undefined
  )
    return undefined;
  return {
    name,
    columns,
    detectors,
    replacement,
    strategy,
    ...(who === undefined ? {} : { who }),
    ...(listeners === undefined ? {} : { listeners }),
  };
}
