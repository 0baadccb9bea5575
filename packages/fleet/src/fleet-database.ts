/**
 * The fleet database: one connection pool per process, shared by everything of the fleet in it (the shipper, the
 * readers, and later approvals and SSH keys), and the schema check a gateway makes before it joins.
 */
import pg from 'pg';
import { AgentgateError, type FleetPostgresConfig, type Logger } from '@agentgate/core';
import { describeFleetDatabase, poolConfig } from './connection.js';
import { FleetNotifications, type FleetNotificationsOptions } from './fleet-notifications.js';
import { appliedVersion, knownSchemaVersion, migrate, type MigrationOutcome } from './migrations.js';

export interface FleetDatabaseOptions {
  /** connections the pool may open (default 4: the shipper uses one, readers the rest) */
  readonly maxConnections?: number;
  /** how long to wait for a connection, ms (default 5000) */
  readonly connectTimeoutMs?: number;
  /** how long a query may take before it fails, ms (default 60000) */
  readonly queryTimeoutMs?: number;
  /** `application_name` the database shows for these connections */
  readonly applicationName?: string;
  /** a connection's error between queries (the pool replaces it) */
  readonly onIdleError?: (err: Error) => void;
}

export class FleetDatabase {
  private constructor(
    readonly pool: pg.Pool,
    /** where the database is, for messages (no password) */
    readonly description: string,
    private readonly clientConfig: pg.ClientConfig,
  ) {}

  static async open(config: FleetPostgresConfig, options: FleetDatabaseOptions = {}): Promise<FleetDatabase> {
    const clientConfig: pg.ClientConfig = {
      ...(await poolConfig(config)),
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      // A database that stops answering (a network partition) fails the query instead of hanging the shipper.
      query_timeout: options.queryTimeoutMs ?? 60_000,
      application_name: options.applicationName ?? 'agentgate',
      // A shipped batch counts as acknowledged once its commit returns: with a server default of synchronous_commit
      // off (or local) a crash of the database could lose acknowledged rows, which would never be shipped again.
      options: '-c synchronous_commit=on',
    };
    const pool = new pg.Pool({
      ...clientConfig,
      max: options.maxConnections ?? 4,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection that breaks (the server restarts) must not crash the process: the pool drops it.
    pool.on('error', (err) => options.onIdleError?.(err));
    return new FleetDatabase(pool, describeFleetDatabase(config), clientConfig);
  }

  /** A LISTEN connection of its own (one per process, shared by its subscribers); call start() on it. */
  notifications(log: Logger, options?: FleetNotificationsOptions): FleetNotifications {
    return new FleetNotifications(this.clientConfig, log, options);
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values as unknown[] | undefined);
  }

  /** Apply the migrations this build knows (`agentgate fleet migrate`). */
  async migrate(): Promise<MigrationOutcome> {
    const client = await this.pool.connect();
    try {
      return await migrate(client);
    } finally {
      client.release();
    }
  }

  /**
   * The gateway's check at start: the schema must be exactly the version this build knows. Throws a CONFIG_INVALID
   * error saying what to do otherwise; rejects with the connection error when the database cannot be reached.
   */
  async checkSchema(): Promise<number> {
    const version = await appliedVersion(this.pool);
    const where = `the fleet database ${this.description}`;
    if (version === undefined || version === 0)
      throw new AgentgateError(
        'CONFIG_INVALID',
        `${where} has no agentgate schema: run \`agentgate fleet migrate --config FILE\` (as a role that may create tables and roles) first`,
      );
    if (version < knownSchemaVersion)
      throw new AgentgateError(
        'CONFIG_INVALID',
        `${where} has schema version ${version}, older than this agentgate's ${knownSchemaVersion}: run \`agentgate fleet migrate --config FILE\``,
      );
    if (version > knownSchemaVersion)
      throw new AgentgateError(
        'CONFIG_INVALID',
        `${where} has schema version ${version}, newer than this agentgate knows (${knownSchemaVersion}): upgrade agentgate on this replica`,
      );
    return version;
  }

  /** Privileges the connected role has on shipped events beyond INSERT and SELECT (there should be none). */
  async excessPrivileges(): Promise<string[]> {
    const result = await this.query<{ privilege: string; granted: boolean }>(
      `SELECT p AS privilege, has_table_privilege('agentgate.events', p) AS granted
         FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) AS p`,
    );
    return result.rows.filter((r) => r.granted).map((r) => r.privilege);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
