/**
 * A fleet database for the fleet suites: its own database `fleet` on a PostgreSQL cluster of its own (so it can be
 * stopped while the guarded database keeps serving), a login role for the gateways and one for auditors, the
 * `fleet` section of a replica's configuration, and the wait until a replica has shipped everything.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from '@jest/globals';
import pg from 'pg';
import { runCli } from './cli.js';
import { PASSWORD, startPostgres, type TestPostgres } from './postgres.js';
import type { ServedGateway } from './serve.js';

export const GATEWAY_ROLE_PASSWORD = 'gw-fleet-secret';

export interface TestFleetDatabase {
  readonly cluster: TestPostgres;
  /** A URL of the fleet database as `user` (the cluster's superuser `postgres` owns it). */
  url(user: string, password?: string): string;
  /** The `fleet:` section of replica `node`'s configuration; its password file is written under `home`. */
  configYaml(node: string, home: string): string;
  /** `agentgate fleet migrate` through `configFile`, granting the writer role to `gw` and the reader to `auditor`. */
  migrate(configFile: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startFleetDatabase(): Promise<TestFleetDatabase> {
  const cluster = await startPostgres();
  await cluster.psql(['-d', 'postgres'], {
    input: `
SET password_encryption = 'scram-sha-256';
CREATE ROLE gw LOGIN PASSWORD '${GATEWAY_ROLE_PASSWORD}';
CREATE ROLE auditor LOGIN PASSWORD '${PASSWORD}';
CREATE DATABASE fleet;
`,
  });
  const url = (user: string, password?: string): string =>
    `postgres://${user}${password === undefined ? '' : `:${password}`}@127.0.0.1:${cluster.port}/fleet`;
  return {
    cluster,
    url,
    configYaml(node, home) {
      mkdirSync(home, { recursive: true });
      const passwordFile = join(home, 'fleet-password');
      writeFileSync(passwordFile, GATEWAY_ROLE_PASSWORD + '\n', { mode: 0o600 });
      return `fleet:\n  node: ${node}\n  postgres: { host: 127.0.0.1, port: ${cluster.port}, user: gw, passwordFile: ${passwordFile}, database: fleet }\n`;
    },
    async migrate(configFile) {
      const migrated = await runCli([
        'fleet',
        'migrate',
        '--config',
        configFile,
        '--database-url',
        url('postgres'),
        '--grant-writer',
        'gw',
        '--grant-reader',
        'auditor',
      ]);
      expect(migrated.stderr).toBe('');
      expect(migrated.code).toBe(0);
    },
    stop: () => cluster.stop(),
  };
}

export interface FleetDetail {
  node: string;
  connected: boolean;
  position: number;
  head: number;
  lagEvents: number;
  lagSeconds: number;
  shippedEvents: number;
  lastError?: string;
}

export async function fleetDetail(gateway: ServedGateway): Promise<{ status: number; fleet: FleetDetail }> {
  const res = await fetch(`${gateway.admin}/readyz`);
  const body = (await res.json()) as { detail: { fleet: FleetDetail } };
  return { status: res.status, fleet: body.detail.fleet };
}

/** Wait until the replica has no session open (their ends are recorded) and its shipper has everything. */
export async function shipped(gateway: ServedGateway, timeoutMs = 60_000): Promise<FleetDetail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metrics = await (await fetch(`${gateway.admin}/metrics`)).text();
    if (!/^agentgate_sessions_active\{[^}]*\} [1-9]/m.test(metrics)) break;
    if (Date.now() > deadline) throw new Error('sessions still open');
    await new Promise((r) => setTimeout(r, 100));
  }
  return shippedSoFar(gateway, deadline);
}

/** Wait until the replica's shipper has everything committed so far (sessions may stay open). */
export async function shippedSoFar(
  gateway: ServedGateway,
  deadline = Date.now() + 60_000,
): Promise<FleetDetail> {
  for (;;) {
    const { fleet } = await fleetDetail(gateway);
    if (fleet.connected && fleet.position === fleet.head && fleet.lagEvents === 0) return fleet;
    if (Date.now() > deadline) throw new Error(`not shipped in time: ${JSON.stringify(fleet)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One statement on a connection of its own to `url` (as the owner, the gateways' role or an auditor). */
export async function fleetQuery<R extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<R>(text, values);
  } finally {
    await client.end();
  }
}
