/**
 * A fleet replica's shipping (docs/configuration.md, `fleet`): open the fleet database, check its schema and the
 * role's privileges, and ship the store's commit feed; a database that is away at start is not an error.
 */
import { isAgentgateError, type FleetConfig, type Logger } from '@agentgate/core';
import { FleetDatabase, positionFileFor, Shipper, type FleetNotifications } from '@agentgate/fleet';
import { registerFleetMetrics, type GatewayMetrics } from '@agentgate/metrics';
import type { TranscriptStore } from '@agentgate/transcript';

/** A fleet replica's shipping: the fleet database, its schema check, and the shipper (docs/configuration.md). */
export interface RunningShipper {
  /** the process's fleet database pool and LISTEN connection, for the fleet's shared state */
  readonly db: FleetDatabase;
  readonly notifications: FleetNotifications;
  readiness(): Record<string, unknown>;
  stop(): Promise<void>;
}

/** How long a stopping gateway goes on shipping what its last sessions recorded. */
const shipDrainMs = 3000;

export async function startShipper(
  fleet: FleetConfig,
  storePath: string,
  store: TranscriptStore,
  signer: { publicJwks(): { keys: Record<string, unknown>[] } },
  log: Logger,
  metrics: GatewayMetrics,
): Promise<RunningShipper> {
  const flog = log.child({ component: 'fleet', node: fleet.node });
  const db = await FleetDatabase.open(fleet.postgres, {
    applicationName: `agentgate ${fleet.node}`,
    onIdleError: (err) => flog.warn('fleet: a fleet database connection failed', { error: err.message }),
  });
  try {
    await db.checkSchema();
    const excess = await db.excessPrivileges();
    if (excess.length > 0)
      flog.warn(
        'fleet: the fleet database role may alter shipped events; give the gateway a role granted only agentgate_fleet_writer',
        { privileges: excess },
      );
  } catch (err) {
    if (isAgentgateError(err)) {
      await db.close();
      throw err;
    }
    // Unreachable now: serve and record locally; the shipper checks the schema before it ships anything.
    flog.warn(
      'fleet: the fleet database is unreachable at start; recording locally and shipping when it is back',
      {
        database: db.description,
        error: (err as Error).message,
      },
    );
  }
  const shipper = new Shipper({
    db,
    source: store.feed,
    node: fleet.node,
    positionFile: positionFileFor(storePath),
    publicKeys: () => {
      const byKid = new Map<string, Record<string, unknown>>();
      for (const key of [...signer.publicJwks().keys, ...store.keyHistory().map((k) => k.jwk)])
        if (typeof key['kid'] === 'string' && !byKid.has(key['kid'])) byKid.set(key['kid'], key);
      return [...byKid.values()];
    },
    log: flog,
    retryMaxMs: fleet.shipRetryMaxMs,
  });
  await shipper.start();
  registerFleetMetrics(metrics, () => shipper.status());
  const notifications = db.notifications(flog, { claimNode: fleet.node });
  notifications.start();
  return {
    db,
    notifications,
    readiness: () => {
      const status = shipper.status();
      return { node: fleet.node, database: db.description, ...status };
    },
    stop: async () => {
      await shipper.stop(shipDrainMs);
      await notifications.close();
      await db.close();
    },
  };
}
