/**
 * The `fleet` section: where this replica ships its record (a PostgreSQL database shared by every replica) and
 * its name there. Absent, the gateway is a single gateway and nothing of the fleet runs.
 */
import type { FleetConfig, FleetPostgresConfig } from '@agentgate/core';
import { Checker, child } from './checker.js';

/** A node name: printable, short, and safe in logs, metrics and file names. */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DEFAULT_SHIP_RETRY_MAX_MS = 15_000;

export function readFleet(checker: Checker, value: unknown): FleetConfig | undefined {
  const m = checker.mapping(value, 'fleet', ['postgres', 'node', 'approvalsWhenDown', 'shipRetryMax']);
  if (m === undefined) return undefined;
  if (m.postgres === undefined)
    checker.report(
      'fleet.postgres',
      'expected the fleet database: a postgres:// URL or {host, port, user, password|passwordFile, database, tls}, found nothing',
    );
  if (m.node === undefined)
    checker.report('fleet.node', "expected this replica's name in the fleet (e.g. gw-1), found nothing");
  const postgres = m.postgres === undefined ? undefined : readFleetPostgres(checker, m.postgres);
  let node = m.node === undefined ? undefined : checker.string(m.node, 'fleet.node');
  if (node !== undefined && !NODE_NAME.test(node)) {
    checker.expected(
      'fleet.node',
      'a name of letters, digits, ".", "_" and "-" (at most 63, starting with a letter or digit)',
      node,
    );
    node = undefined;
  }
  const approvalsWhenDown = checker.oneOf(
    m.approvalsWhenDown,
    'fleet.approvalsWhenDown',
    ['closed', 'local'] as const,
    'closed',
  );
  let shipRetryMaxMs = checker.duration(m.shipRetryMax, 'fleet.shipRetryMax', DEFAULT_SHIP_RETRY_MAX_MS);
  if (shipRetryMaxMs !== undefined && (shipRetryMaxMs < 1000 || shipRetryMaxMs > 600_000)) {
    checker.expected('fleet.shipRetryMax', 'a duration from 1s to 10m', m.shipRetryMax);
    shipRetryMaxMs = undefined;
  }
  if (
    postgres === undefined ||
    node === undefined ||
    approvalsWhenDown === undefined ||
    shipRetryMaxMs === undefined
  )
    return undefined;
  return { postgres, node, approvalsWhenDown, shipRetryMaxMs };
}

function readFleetPostgres(checker: Checker, value: unknown): FleetPostgresConfig | undefined {
  const path = 'fleet.postgres';
  if (typeof value === 'string') {
    const url = checker.string(value, path, { secret: true });
    if (url === undefined) return undefined;
    if (!/^postgres(ql)?:\/\/\S+$/.test(url)) {
      checker.report(path, 'expected a postgres:// or postgresql:// URL, found a string of another form');
      return undefined;
    }
    return { url };
  }
  const m = checker.mapping(value, path, [
    'host',
    'port',
    'user',
    'password',
    'passwordFile',
    'database',
    'tls',
  ]);
  if (m === undefined) return undefined;
  for (const key of ['host', 'user', 'database'] as const)
    if (m[key] === undefined) checker.report(child(path, key), `expected ${key}, found nothing`);
  const host = m.host === undefined ? undefined : checker.string(m.host, child(path, 'host'));
  const port = checker.integer(m.port, child(path, 'port'), { min: 1, max: 65535, fallback: 5432 });
  const user = m.user === undefined ? undefined : checker.string(m.user, child(path, 'user'));
  const database = m.database === undefined ? undefined : checker.string(m.database, child(path, 'database'));
  if (m.password !== undefined && m.passwordFile !== undefined)
    checker.report(child(path, 'passwordFile'), 'expected either password or passwordFile, found both');
  const password = checker.optionalString(m.password, child(path, 'password'), {
    nonEmpty: false,
    secret: true,
  });
  const passwordFile =
    m.passwordFile === undefined ? undefined : checker.filePath(m.passwordFile, child(path, 'passwordFile'));
  const tls = m.tls === undefined ? undefined : readFleetTls(checker, m.tls, child(path, 'tls'));
  if (
    host === undefined ||
    port === undefined ||
    user === undefined ||
    database === undefined ||
    (m.password !== undefined && password === undefined) ||
    (m.passwordFile !== undefined && passwordFile === undefined) ||
    (m.tls !== undefined && tls === undefined)
  )
    return undefined;
  return {
    host,
    port,
    user,
    database,
    ...(password === undefined ? {} : { password }),
    ...(passwordFile === undefined ? {} : { passwordFile }),
    ...(tls === undefined ? {} : { tls }),
  };
}

function readFleetTls(checker: Checker, value: unknown, path: string): boolean | { ca: string } | undefined {
  if (typeof value === 'boolean') return value;
  const m = checker.mapping(value, path, ['ca']);
  if (m === undefined) return undefined;
  const ca = checker.filePath(m.ca, child(path, 'ca'));
  return ca === undefined ? undefined : { ca };
}
