/**
 * A fleet replica's console reads the fleet (docs/configuration.md, "fleet"): every replica's sessions from the
 * fleet database, merged with this replica's own from its store, through a pool of its own so that pages never
 * wait behind the shipper's batches.
 */
import type { FleetConfig, Logger } from '@agentgate/core';
import {
  FleetSessionQuery,
  type FleetNodeStatus,
  type FleetStatus,
  type IndexedSessionQuery,
  type SessionRecords,
} from '@agentgate/console';
import { FleetConsoleQueries, FleetDatabase } from '@agentgate/fleet';
import type { RunningShipper } from './fleet-shipping.js';

export interface FleetConsole {
  readonly query: FleetSessionQuery;
  readonly view: {
    readonly node: string;
    status(): FleetStatus;
    nodes(): Promise<readonly FleetNodeStatus[]>;
  };
  close(): Promise<void>;
}

export async function openFleetConsole(
  fleet: FleetConfig,
  local: IndexedSessionQuery,
  localRecords: SessionRecords,
  shipper: RunningShipper,
  log: Logger,
): Promise<FleetConsole> {
  const clog = log.child({ component: 'console', node: fleet.node });
  const db = await FleetDatabase.open(fleet.postgres, {
    applicationName: `agentgate ${fleet.node} console`,
    maxConnections: 3,
    // A page waits this long at most for an unreachable database before saying so.
    connectTimeoutMs: 3000,
    queryTimeoutMs: 30_000,
    onIdleError: (err) => clog.warn('console: a fleet database connection failed', { error: err.message }),
  });
  const queries = new FleetConsoleQueries(db);
  return {
    query: new FleetSessionQuery({ node: fleet.node, fleet: queries, local, localRecords, log: clog }),
    view: {
      node: fleet.node,
      status: () => shippingStatus(shipper.readiness()),
      nodes: () => queries.nodes(),
    },
    close: () => db.close(),
  };
}

function shippingStatus(readiness: Record<string, unknown>): FleetStatus {
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const connected = readiness['connected'];
  const lagEvents = num(readiness['lagEvents']);
  const lagSeconds = num(readiness['lagSeconds']);
  const lastError = readiness['lastError'];
  return {
    ...(typeof connected === 'boolean' ? { connected } : {}),
    ...(lagEvents === undefined ? {} : { lagEvents }),
    ...(lagSeconds === undefined ? {} : { lagSeconds }),
    ...(typeof lastError === 'string' ? { lastError } : {}),
  };
}
