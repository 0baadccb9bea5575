import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isScalar, parseDocument, visit } from 'yaml';
import type {
  AdminConfig,
  AgentgateConfig,
  ApprovalsConfig,
  ShutdownConfig,
  IdentityConfig,
  ListenerConfig,
  WebhookConfig,
} from '@agentgate/core';
import { Checker, child, item } from './checker.js';
import { ConfigError } from './config-error.js';
import { readConsole } from './console-section.js';
import { readFleet } from './fleet-section.js';
import { readIdentity } from './identity-section.js';
import { checkListenAddress, readListener } from './listeners-section.js';
import { readRedact } from './redact-section.js';
import { readMaskingRule, readRule } from './rules-section.js';
import { readStore } from './store-section.js';

export interface ParseConfigOptions {
  /** Detector names the masking package adds beyond KNOWN_DETECTORS. */
  readonly extraDetectors?: readonly string[];
}

const ROOT_KEYS = [
  'store',
  'signingKey',
  'admin',
  'shutdown',
  'identity',
  'approvals',
  'listeners',
  'rules',
  'masking',
  'redact',
  'console',
  'fleet',
];

function readAdmin(checker: Checker, value: unknown): AdminConfig | undefined {
  if (value === undefined) return { listen: '127.0.0.1:9090' };
  const m = checker.mapping(value, 'admin', ['listen']);
  if (m === undefined) return undefined;
  const listen =
    m.listen === undefined ? '127.0.0.1:9090' : checkListenAddress(checker, m.listen, 'admin.listen', false);
  return listen === undefined ? undefined : { listen };
}

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

function readShutdown(checker: Checker, value: unknown): ShutdownConfig | undefined {
  if (value === undefined) return { drainTimeoutMs: DEFAULT_DRAIN_TIMEOUT_MS };
  const m = checker.mapping(value, 'shutdown', ['drainTimeout']);
  if (m === undefined) return undefined;
  const drainTimeoutMs = checker.duration(m.drainTimeout, 'shutdown.drainTimeout', DEFAULT_DRAIN_TIMEOUT_MS);
  return drainTimeoutMs === undefined ? undefined : { drainTimeoutMs };
}

function readWebhook(checker: Checker, value: unknown, path: string): WebhookConfig | undefined {
  const m = checker.mapping(value, path, ['url', 'timeout', 'retries', 'format']);
  if (m === undefined) return undefined;
  let url = checker.string(m.url, child(path, 'url'));
  if (url !== undefined && !/^https?:\/\/[^\s/]+/i.test(url)) {
    checker.expected(child(path, 'url'), 'an http:// or https:// URL', url);
    url = undefined;
  }
  const timeoutMs = checker.duration(m.timeout, child(path, 'timeout'), 5_000);
  const retries = checker.integer(m.retries, child(path, 'retries'), { min: 0, max: 10, fallback: 3 });
  const format = checker.oneOf(m.format, child(path, 'format'), ['agentgate', 'slack'] as const, 'agentgate');
  if (url === undefined || timeoutMs === undefined || retries === undefined || format === undefined)
    return undefined;
  return { url, timeoutMs, retries, format };
}

function readApprovals(checker: Checker, value: unknown): ApprovalsConfig | undefined {
  const defaults: ApprovalsConfig = { timeoutMs: 120_000, approvers: [] };
  if (value === undefined) return defaults;
  const m = checker.mapping(value, 'approvals', ['timeout', 'approvers', 'webhook']);
  if (m === undefined) return undefined;
  const timeoutMs = checker.duration(m.timeout, 'approvals.timeout', defaults.timeoutMs);
  const approvers = checker.principals(m.approvers, 'approvals.approvers', []);
  const webhook = m.webhook === undefined ? undefined : readWebhook(checker, m.webhook, 'approvals.webhook');
  if (
    timeoutMs === undefined ||
    approvers === undefined ||
    (m.webhook !== undefined && webhook === undefined)
  )
    return undefined;
  return { timeoutMs, approvers, ...(webhook === undefined ? {} : { webhook }) };
}

/** Report the second and later uses of a name, naming where it was first used. */
function checkUnique(checker: Checker, values: unknown, section: string, what: string): void {
  if (!Array.isArray(values)) return;
  const first = new Map<string, number>();
  values.forEach((entry: unknown, index) => {
    const name =
      entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>).name : undefined;
    if (typeof name !== 'string') return;
    const seen = first.get(name);
    if (seen === undefined) first.set(name, index);
    else
      checker.report(
        child(item(section, index), 'name'),
        `expected a unique ${what} name, found "${name}" again (first at ${item(section, seen)}.name)`,
      );
  });
}

/**
 * A docker unix-socket listener's fixed `identity:` acts with the groups of the configured token or SSH key
 * identity of that name (none if there is no such entry: then only `identity:NAME` admits it).
 */
function withSocketIdentityGroups(listener: ListenerConfig, identity: IdentityConfig): ListenerConfig {
  if (listener.protocol !== 'docker' || listener.identity === undefined) return listener;
  const name = listener.identity;
  const groups = new Set<string>();
  for (const entry of [...identity.tokens, ...identity.sshKeys]) {
    if (entry.name === name) for (const g of entry.groups) groups.add(g);
  }
  return { ...listener, identityGroups: [...groups] };
}

/** Two listeners (or a listener and the admin API) cannot bind the same address; port 0 always picks a free one. */
function checkDistinctAddress(
  checker: Checker,
  seen: Map<string, string>,
  listen: string,
  path: string,
): void {
  if (listen.endsWith(':0')) return;
  const first = seen.get(listen);
  if (first === undefined) seen.set(listen, path);
  else
    checker.report(
      path,
      `expected an address no other listener uses, found ${listen}, also used by ${first}`,
    );
}

/**
 * Parse and validate a config text (docs/configuration.md). `file` names the source in errors and anchors relative paths.
 * Throws ConfigError (CONFIG_INVALID) listing every issue found.
 */
export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: ParseConfigOptions = {},
): AgentgateConfig {
  const absoluteFile = resolve(file);
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      absoluteFile,
      doc.errors.map((err) => ({
        path: err.linePos?.[0] ? `line ${err.linePos[0].line}:${err.linePos[0].col}` : '(yaml)',
        message: `expected valid YAML, found ${(err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
    );
  }
  // YAML 1.2 reads `socketMode: 0660` as decimal 660; keep the written digits so they are read as the octal mode meant.
  visit(doc, {
    Pair(_key, pair) {
      if (
        isScalar(pair.key) &&
        pair.key.value === 'socketMode' &&
        isScalar(pair.value) &&
        typeof pair.value.source === 'string' &&
        /^0[0-7]+$/.test(pair.value.source)
      ) {
        pair.value.value = pair.value.source;
      }
    },
  });
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const checker = new Checker(dirname(absoluteFile), env);
  const root = checker.mapping(raw ?? {}, '', ROOT_KEYS);
  if (root === undefined) throw new ConfigError(absoluteFile, checker.issues);

  const store = readStore(checker, root.store);
  const signingKey = checker.filePath(root.signingKey, 'signingKey');
  const admin = readAdmin(checker, root.admin);
  const shutdown = readShutdown(checker, root.shutdown);
  const identity = readIdentity(checker, root.identity, 'identity');
  const approvals = readApprovals(checker, root.approvals);
  const consoleSection =
    root.console === undefined ? undefined : readConsole(checker, root.console, identity);

  checkUnique(checker, root.listeners, 'listeners', 'listener');
  const addresses = new Map<string, string>(admin === undefined ? [] : [[admin.listen, 'admin.listen']]);
  const listeners =
    checker.list(
      root.listeners,
      'listeners',
      (v, p) => {
        const listener = readListener(
          checker,
          v,
          p,
          store?.path ?? resolve(dirname(absoluteFile), 'data', 'transcripts'),
        );
        if (listener !== undefined)
          checkDistinctAddress(checker, addresses, listener.listen, child(p, 'listen'));
        return listener;
      },
      [],
    ) ?? [];
  // Rules may only name listeners that exist; use the raw names so one broken listener does not cascade.
  const listenerNames = new Set<string>();
  if (Array.isArray(root.listeners)) {
    for (const entry of root.listeners as unknown[]) {
      const name =
        entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>).name : undefined;
      if (typeof name === 'string') listenerNames.add(name);
    }
  }
  checkUnique(checker, root.rules, 'rules', 'rule');
  const rules =
    checker.list(root.rules, 'rules', (v, p) => readRule(checker, v, p, listeners, listenerNames), []) ?? [];
  checkUnique(checker, root.masking, 'masking', 'masking rule');
  const masking =
    checker.list(
      root.masking,
      'masking',
      (v, p) => readMaskingRule(checker, v, p, listenerNames, options.extraDetectors ?? []),
      [],
    ) ?? [];
  const redact = readRedact(checker, root.redact);
  const fleet = root.fleet === undefined ? undefined : readFleet(checker, root.fleet);

  if (
    checker.issues.length > 0 ||
    redact === undefined ||
    store === undefined ||
    signingKey === undefined ||
    admin === undefined ||
    shutdown === undefined ||
    approvals === undefined
  ) {
    throw new ConfigError(absoluteFile, checker.issues);
  }
  const config: AgentgateConfig = {
    file: absoluteFile,
    store,
    signingKey,
    admin,
    shutdown,
    identity,
    approvals,
    listeners: (listeners as ListenerConfig[]).map((l) => withSocketIdentityGroups(l, identity)),
    rules,
    masking,
    redact,
    ...(consoleSection === undefined ? {} : { console: consoleSection }),
    ...(fleet === undefined ? {} : { fleet }),
  };
  return config;
}

/** Read, parse and validate a config file. */
export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: ParseConfigOptions = {},
): Promise<AgentgateConfig> {
  const absoluteFile = resolve(file);
  let text: string;
  try {
    text = await readFile(absoluteFile, 'utf8');
  } catch (err) {
    throw new ConfigError(absoluteFile, [
      {
        path: '(file)',
        message: `expected a readable config file, found ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      },
    ]);
  }
  return parseConfig(text, absoluteFile, env, options);
}
