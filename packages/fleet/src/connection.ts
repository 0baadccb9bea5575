/** node-postgres connection settings from the `fleet.postgres` section (docs/configuration.md). */
import { readFile } from 'node:fs/promises';
import type { PoolConfig } from 'pg';
import { AgentgateError, type FleetPostgresConfig } from '@agentgate/core';

/** Where the fleet database is, for messages: never the password. */
export function describeFleetDatabase(config: FleetPostgresConfig): string {
  if ('url' in config) {
    try {
      const url = new URL(config.url);
      return `${url.username ? `${decodeURIComponent(url.username)}@` : ''}${url.host}${url.pathname}`;
    } catch {
      return 'the fleet database (fleet.postgres)';
    }
  }
  return `${config.user}@${config.host}:${config.port}/${config.database}`;
}

export async function poolConfig(config: FleetPostgresConfig): Promise<PoolConfig> {
  if ('url' in config) return { connectionString: config.url };
  let password = config.password;
  if (config.passwordFile !== undefined) {
    try {
      password = (await readFile(config.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new AgentgateError(
        'CONFIG_INVALID',
        `cannot read fleet.postgres.passwordFile ${config.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  }
  let ssl: PoolConfig['ssl'];
  if (config.tls === true) ssl = { rejectUnauthorized: true };
  else if (typeof config.tls === 'object') {
    try {
      ssl = { rejectUnauthorized: true, ca: await readFile(config.tls.ca, 'utf8') };
    } catch (err) {
      throw new AgentgateError(
        'CONFIG_INVALID',
        `cannot read fleet.postgres.tls.ca ${config.tls.ca}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  }
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    database: config.database,
    ...(password === undefined ? {} : { password }),
    ...(ssl === undefined ? {} : { ssl }),
  };
}
