/**
 * What the overview page reads that is costly: the 24 h chart (every recent session's events; with a fleet, every
 * replica's) and the fleet's per-replica counts. Each is computed at most every 30 s; once there is a chart, a stale
 * one is shown while the next is computed.
 */
import type { Logger } from '@agentgate/core';
import type { FleetNodeStatus, FleetStatus } from './pages/overview.js';
import type { ActivityBucket, SessionQuery } from './session-query.js';

/** With a fleet: this replica's name, its shipping, and the replicas the fleet database knows. */
export interface ConsoleFleet {
  readonly node: string;
  status(): FleetStatus;
  nodes(): Promise<readonly FleetNodeStatus[]>;
}

export interface FleetOverview {
  node: string;
  status: FleetStatus;
  nodes?: readonly FleetNodeStatus[];
  error?: string;
}

const REFRESH_MS = 30_000;

export function createOverviewData(query: SessionQuery, now: () => number, log: Logger) {
  let fleetNodes: { at: number; nodes: readonly FleetNodeStatus[] } | undefined;
  let chart: { at: number; buckets: ActivityBucket[] } | undefined;
  let refreshing: Promise<void> | undefined;

  async function activity(): Promise<ActivityBucket[]> {
    if (chart === undefined || now() - chart.at > REFRESH_MS) {
      refreshing ??= query
        .activity(now(), 3_600_000, 24)
        .then((buckets) => void (chart = { at: now(), buckets }))
        .catch((err: unknown) => log.warn('console: the overview chart failed', { error: String(err) }))
        .finally(() => (refreshing = undefined));
      if (chart === undefined) await refreshing;
    }
    return chart?.buckets ?? [];
  }

  async function fleet(consoleFleet: ConsoleFleet): Promise<FleetOverview> {
    const { node } = consoleFleet;
    const status = consoleFleet.status();
    try {
      if (fleetNodes === undefined || now() - fleetNodes.at > REFRESH_MS)
        fleetNodes = { at: now(), nodes: await consoleFleet.nodes() };
      return { node, status, nodes: fleetNodes.nodes };
    } catch (err) {
      log.warn('console: the fleet database could not be read for the overview', { error: String(err) });
      return { node, status, error: (err as Error).message };
    }
  }

  return { activity, fleet };
}
