/**
 * The `store` section (and `signingKey`), and reading only those from a file: the auditor's commands need the
 * store's location and nothing else, so a configuration whose other sections they cannot satisfy (an upstream
 * password in an unset variable, a TLS key they may not read) still serves them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { FleetConfig, RetentionConfig, StoreConfig } from '@agentgate/core';
import { Checker, child } from './checker.js';
import { ConfigError } from './config-error.js';
import { readFleet } from './fleet-section.js';

export function readStore(checker: Checker, value: unknown): StoreConfig | undefined {
  const m = checker.mapping(value, 'store', [
    'path',
    'failMode',
    'checkpointInterval',
    'checkpointIntervalMs',
    'commitWindow',
    'retention',
  ]);
  if (m === undefined) return undefined;
  const path = checker.filePath(m.path, 'store.path');
  const failMode = checker.oneOf(m.failMode, 'store.failMode', ['closed', 'open'] as const, 'closed');
  let checkpointIntervalMs: number | undefined = 60_000;
  if (m.checkpointInterval !== undefined && m.checkpointIntervalMs !== undefined) {
    checker.report(
      'store.checkpointIntervalMs',
      'expected either checkpointInterval or checkpointIntervalMs, found both',
    );
  } else if (m.checkpointInterval !== undefined) {
    checkpointIntervalMs = checker.duration(m.checkpointInterval, 'store.checkpointInterval');
  } else if (m.checkpointIntervalMs !== undefined) {
    checkpointIntervalMs = checker.integer(m.checkpointIntervalMs, 'store.checkpointIntervalMs', { min: 1 });
  }
  const commitWindowMs = readCommitWindow(checker, m.commitWindow);
  const retention = m.retention === undefined ? undefined : readRetention(checker, m.retention);
  if (
    path === undefined ||
    failMode === undefined ||
    checkpointIntervalMs === undefined ||
    (m.commitWindow !== undefined && commitWindowMs === undefined) ||
    (m.retention !== undefined && retention === undefined)
  )
    return undefined;
  return {
    path,
    failMode,
    checkpointIntervalMs,
    ...(commitWindowMs !== undefined ? { commitWindowMs } : {}),
    ...(retention ? { retention } : {}),
  };
}

/** The crash window is bounded by this, so it stays short; zero would start a transaction per turn. */
function readCommitWindow(checker: Checker, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ms = checker.duration(value, 'store.commitWindow');
  if (ms === undefined) return undefined;
  if (ms < 1 || ms > 1000) {
    checker.expected('store.commitWindow', 'a duration from 1ms to 1s', value);
    return undefined;
  }
  return ms;
}

function readRetention(checker: Checker, value: unknown): RetentionConfig | undefined {
  const path = 'store.retention';
  const m = checker.mapping(value, path, ['keep', 'coveredBy', 'interval']);
  if (m === undefined) return undefined;
  if (m.keep === undefined)
    checker.report(child(path, 'keep'), 'expected a duration such as 90d, found nothing');
  if (m.coveredBy === undefined)
    checker.report(
      child(path, 'coveredBy'),
      'expected the directory your backups (agentgate backup) or exports are written to, found nothing',
    );
  const keepMs = m.keep === undefined ? undefined : checker.duration(m.keep, child(path, 'keep'));
  if (keepMs !== undefined && keepMs <= 0) {
    checker.expected(child(path, 'keep'), 'a duration longer than 0', m.keep);
    return undefined;
  }
  const coveredBy =
    m.coveredBy === undefined ? undefined : checker.filePath(m.coveredBy, child(path, 'coveredBy'));
  const intervalMs = checker.duration(m.interval, child(path, 'interval'), 3_600_000);
  if (intervalMs !== undefined && intervalMs < 1000) {
    checker.expected(child(path, 'interval'), 'a duration of at least 1s', m.interval);
    return undefined;
  }
  if (keepMs === undefined || coveredBy === undefined || intervalMs === undefined) return undefined;
  return { keepMs, coveredBy, intervalMs };
}

/** What the store commands read from a configuration file. */
export interface StoreLocation {
  readonly file: string;
  readonly store: StoreConfig;
  /** the signing key's path, when the file names one */
  readonly signingKey: string | undefined;
}

/** The root mapping of a configuration file, parsed but not validated beyond YAML. */
async function readRoot(
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<{
  absoluteFile: string;
  root: Record<string, unknown> | undefined;
  raw: unknown;
  checker: Checker;
}> {
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
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const checker = new Checker(dirname(absoluteFile), env);
  const root =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw)
      ? (raw as Record<string, unknown>)
      : undefined;
  return { absoluteFile, root, raw, checker };
}

/**
 * Read `store` and `signingKey` from a configuration file and nothing else: other sections are neither validated
 * nor expanded. Throws ConfigError for problems in those two keys only.
 */
export async function loadStoreLocation(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<StoreLocation> {
  const { absoluteFile, root, raw, checker } = await readRoot(file, env);
  if (root === undefined) checker.expected('', 'a mapping with a store section', raw);
  else if (root['store'] === undefined) checker.report('store', 'expected the store section, found nothing');
  const store = root?.['store'] === undefined ? undefined : readStore(checker, root['store']);
  const signingKey =
    root?.['signingKey'] === undefined ? undefined : checker.filePath(root['signingKey'], 'signingKey');
  if (checker.issues.length > 0 || store === undefined) throw new ConfigError(absoluteFile, checker.issues);
  return { file: absoluteFile, store, signingKey };
}

/** What the fleet's readers take from a configuration file: `fleet`, and `store` when it has one. */
export interface FleetLocation {
  readonly file: string;
  /** undefined: the file has no fleet section (the readers then read the local store) */
  readonly fleet: FleetConfig | undefined;
  readonly store: StoreConfig | undefined;
  readonly signingKey: string | undefined;
}

/**
 * Read `fleet` (and `store`, `signingKey`) and nothing else: an auditor's configuration may hold only `fleet`
 * (read-only credentials to the fleet database) and no store.
 */
export async function loadFleetLocation(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<FleetLocation> {
  const { absoluteFile, root, raw, checker } = await readRoot(file, env);
  if (root === undefined) checker.expected('', 'a mapping with a fleet or store section', raw);
  else if (root['fleet'] === undefined && root['store'] === undefined)
    checker.report('fleet', 'expected a fleet or a store section, found neither');
  const fleet = root?.['fleet'] === undefined ? undefined : readFleet(checker, root['fleet']);
  const store = root?.['store'] === undefined ? undefined : readStore(checker, root['store']);
  const signingKey =
    root?.['signingKey'] === undefined ? undefined : checker.filePath(root['signingKey'], 'signingKey');
  if (checker.issues.length > 0) throw new ConfigError(absoluteFile, checker.issues);
  return { file: absoluteFile, fleet, store, signingKey };
}
