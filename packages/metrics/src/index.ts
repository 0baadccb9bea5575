/**
 * Every metric the gateway exports (docs/clients.md, "Metrics"), on one prom-client registry, behind the small interfaces the
 * protocols, the gate, the transcript store and the approvals broker report through.
 */
import client from 'prom-client';
import type { AuthFailureReason, ProtocolMetrics, Protocol, SessionMetrics } from '@agentgate/core';

export interface GatewayMetrics {
  readonly registry: client.Registry;
  /** What engines count, and the connections and sessions counted for them (once each). */
  readonly protocol: ProtocolMetrics & SessionMetrics;
  readonly gate: { command(listener: string, protocol: Protocol, decision: string): void };
  readonly transcript: {
    event(type: string): void;
    writeError(): void;
    writableChanged(writable: boolean): void;
  };
  readonly approvals: { pending(n: number): void; settled(outcome: string, waitSeconds: number): void };
  readonly listenerUp: (listener: string, protocol: Protocol, up: boolean) => void;
  /** Draining for a stop: listeners closed, open sessions finishing. */
  readonly draining: (on: boolean) => void;
}

/**
 * Per label set, one series, found through one Map per label (the label values in their declared order): a lookup
 * builds no key string and no labels object, and V8 keeps each string's hash in the string itself. The labels
 * object is made once, with the series.
 */
class SeriesTable<L extends string, S> {
  private readonly root = new Map<string, unknown>();
  /** every series made, in the order they were first seen */
  readonly all: S[] = [];

  constructor(
    private readonly labelNames: readonly L[],
    private readonly create: (labels: Partial<Record<L, string>>) => S,
  ) {}

  /** The series of these label values, one per label name (as many as there are names). */
  get(a: string, b?: string, c?: string): S {
    const depth = this.labelNames.length;
    let map = this.root;
    let last = a;
    if (depth > 1) {
      map = child(map, a);
      last = b!;
    }
    if (depth > 2) {
      map = child(map, b!);
      last = c!;
    }
    let series = map.get(last) as S | undefined;
    if (series === undefined) {
      const labels: Partial<Record<L, string>> = {};
      const values = [a, b, c];
      this.labelNames.forEach((name, i) => (labels[name] = values[i]));
      series = this.create(labels);
      map.set(last, series);
      this.all.push(series);
    }
    return series;
  }

  clear(): void {
    this.root.clear();
    this.all.length = 0;
  }
}

function child(map: Map<string, unknown>, key: string): Map<string, unknown> {
  let next = map.get(key) as Map<string, unknown> | undefined;
  if (next === undefined) map.set(key, (next = new Map()));
  return next;
}

/**
 * Hot-path counting for a labelled counter: each call adds to a plain number kept per label set, and the sums are
 * folded into prom-client when the metric is collected (every scrape, and `get()`), so what is exported is exact.
 * prom-client's own inc() validates and hashes the labels object on every call, and its `labels()` children do the
 * same, which is too slow for the hot path (docs/performance.md, "Metrics counters on the hot path").
 */
class PendingCounts<L extends string> {
  private readonly series: SeriesTable<L, { labels: Partial<Record<L, string>>; count: number }>;

  constructor(
    private readonly counter: client.Counter<L>,
    labelNames: readonly L[],
  ) {
    this.series = new SeriesTable(labelNames, (labels) => ({ labels, count: 0 }));
  }

  /** Add `n` to the series of these label values (in the counter's label order). */
  add(n: number, a: string, b?: string, c?: string): void {
    const entry = this.series.get(a, b, c);
    if (!(n >= 0) || !Number.isFinite(n)) {
      this.counter.inc(entry.labels, n); // let prom-client reject it where it happened
      return;
    }
    entry.count += n;
  }

  /** Move the sums into the prom-client counter (its `collect` hook). */
  fold(): void {
    for (const entry of this.series.all) {
      if (entry.count === 0) continue;
      this.counter.inc(entry.labels, entry.count);
      entry.count = 0;
    }
  }
}

/**
 * A histogram whose observations on the hot path are a bucket search and three additions on plain numbers per label
 * set (one Map lookup on a joined key), exported in prom-client's histogram format when collected. prom-client's
 * own observe() validates and hashes the labels object on every call, once per statement
 * (docs/performance.md, "PostgreSQL").
 */
class LocalHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series: SeriesTable<
    L,
    { labels: Partial<Record<L, string>>; counts: Float64Array; sum: number; count: number }
  >;

  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly L[],
    private readonly upperBounds: readonly number[],
  ) {
    this.series = new SeriesTable(labelNames, (labels) => ({
      labels,
      counts: new Float64Array(upperBounds.length),
      sum: 0,
      count: 0,
    }));
  }

  /** Observe `value` in the series of these label values (in the histogram's label order). */
  observe(value: number, a: string, b?: string, c?: string): void {
    if (!Number.isFinite(value)) return;
    const series = this.series.get(a, b, c);
    const bounds = this.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        series.counts[i]!++;
        break;
      }
    }
    series.sum += value;
    series.count++;
  }

  /** The registry's view, as prom-client's Histogram renders it: cumulative buckets, +Inf, sum, count. */
  get(): Promise<{
    name: string;
    help: string;
    type: client.MetricType;
    values: client.MetricValueWithName<string>[];
    aggregator: client.Aggregator;
  }> {
    const values: client.MetricValueWithName<string>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, counts, sum, count } of this.series.all) {
      let cumulative = 0;
      this.upperBounds.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: bucket });
      values.push({ labels: { ...labels }, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'histogram' as unknown as client.MetricType,
      values,
      aggregator: this.aggregator,
    });
  }

  reset(): void {
    this.series.clear();
  }
}

export function createGatewayMetrics(options: { collectProcess?: boolean } = {}): GatewayMetrics {
  const registry = new client.Registry();
  if (options.collectProcess !== false)
    client.collectDefaultMetrics({ register: registry, prefix: 'agentgate_' });
  const reg = { registers: [registry] };

  const connections = new client.Counter({
    name: 'agentgate_connections_total',
    help: 'Client connections accepted, by listener.',
    labelNames: ['listener', 'protocol'] as const,
    ...reg,
  });
  const sessionsActive = new client.Gauge({
    name: 'agentgate_sessions_active',
    help: 'Authenticated sessions currently open.',
    labelNames: ['listener', 'protocol'] as const,
    ...reg,
  });
  const commands = new client.Counter({
    name: 'agentgate_commands_total',
    help: 'Commands decided by the gate, by decision (allow, deny, approved, rejected, expired, cancelled, refused).',
    labelNames: ['listener', 'protocol', 'decision'] as const,
    collect: (): void => pendingCommands.fold(),
    ...reg,
  });
  const pendingCommands = new PendingCounts(commands, ['listener', 'protocol', 'decision'] as const);
  const commandDuration = new LocalHistogram(
    'agentgate_command_duration_seconds',
    'Time from forwarding a command upstream to its complete result.',
    ['listener', 'protocol'] as const,
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  registry.registerMetric(commandDuration as unknown as client.Metric);
  const upstreamErrors = new client.Counter({
    name: 'agentgate_upstream_errors_total',
    help: 'Upstream connection failures and losses.',
    labelNames: ['listener', 'protocol', 'kind'] as const,
    ...reg,
  });
  const bytes = new client.Counter({
    name: 'agentgate_bytes_total',
    help: 'Bytes relayed, by direction.',
    labelNames: ['listener', 'protocol', 'direction'] as const,
    collect: (): void => pendingBytes.fold(),
    ...reg,
  });
  const pendingBytes = new PendingCounts(bytes, ['listener', 'protocol', 'direction'] as const);
  const masked = new client.Counter({
    name: 'agentgate_masked_values_total',
    help: 'Values masked, by masking rule and detector (or "column").',
    labelNames: ['rule', 'detector'] as const,
    ...reg,
  });
  const events = new client.Counter({
    name: 'agentgate_transcript_events_total',
    help: 'Transcript events appended, by type.',
    labelNames: ['type'] as const,
    collect: (): void => pendingEvents.fold(),
    ...reg,
  });
  const pendingEvents = new PendingCounts(events, ['type'] as const);
  const writeErrors = new client.Counter({
    name: 'agentgate_transcript_write_errors_total',
    help: 'Transcript batch commits that failed.',
    ...reg,
  });
  const storeWritable = new client.Gauge({
    name: 'agentgate_transcript_writable',
    help: '1 while the transcript store can write, else 0.',
    ...reg,
  });
  storeWritable.set(1);
  const approvalsPending = new client.Gauge({
    name: 'agentgate_approvals_pending',
    help: 'Approval requests waiting for a decision.',
    ...reg,
  });
  const approvalWait = new client.Histogram({
    name: 'agentgate_approval_wait_seconds',
    help: 'Time from an approval request to its settlement, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 900, 3600],
    ...reg,
  });
  const approvalDecisions = new client.Counter({
    name: 'agentgate_approval_decisions_total',
    help: 'Approval requests settled, by outcome.',
    labelNames: ['outcome'] as const,
    ...reg,
  });
  const authFailures = new client.Counter({
    name: 'agentgate_auth_failures_total',
    help: 'Refused authentication attempts, by reason (bad-token, expired, unknown-key, bad-signature, not-allowed, too-many-attempts, ...).',
    labelNames: ['listener', 'protocol', 'reason'] as const,
    ...reg,
  });
  const listenerUp = new client.Gauge({
    name: 'agentgate_listener_up',
    help: '1 while the listener accepts connections.',
    labelNames: ['listener', 'protocol'] as const,
    ...reg,
  });
  const drainingGauge = new client.Gauge({
    name: 'agentgate_draining',
    help: '1 while the gateway drains for a stop (listeners closed, open sessions finishing), else 0.',
    ...reg,
  });
  drainingGauge.set(0);

  return {
    registry,
    protocol: {
      connectionOpened: (listener, protocol) => connections.inc({ listener, protocol }),
      sessionStarted: (listener, protocol) => sessionsActive.inc({ listener, protocol }),
      sessionEnded: (listener, protocol) => sessionsActive.dec({ listener, protocol }),
      commandCompleted: (listener, protocol, seconds) => commandDuration.observe(seconds, listener, protocol),
      upstreamError: (listener, protocol, kind) => upstreamErrors.inc({ listener, protocol, kind }),
      bytes: (listener, protocol, direction, n) => pendingBytes.add(n, listener, protocol, direction),
      maskedValues: (rule, detector, n) => masked.inc({ rule, detector }, n),
      authFailed: (listener: string, protocol: Protocol, reason: AuthFailureReason) =>
        authFailures.inc({ listener, protocol, reason }),
    },
    gate: {
      command: (listener, protocol, decision) => pendingCommands.add(1, listener, protocol, decision),
    },
    transcript: {
      event: (type) => pendingEvents.add(1, type),
      writeError: () => writeErrors.inc(),
      writableChanged: (writable) => storeWritable.set(writable ? 1 : 0),
    },
    approvals: {
      pending: (n) => approvalsPending.set(n),
      settled: (outcome, waitSeconds) => {
        approvalDecisions.inc({ outcome });
        approvalWait.observe({ outcome }, waitSeconds);
      },
    },
    listenerUp: (listener, protocol, up) => listenerUp.set({ listener, protocol }, up ? 1 : 0),
    draining: (on) => drainingGauge.set(on ? 1 : 0),
  };
}

/** What a fleet replica's shipper reports (read at each scrape). */
export interface FleetShipGauges {
  readonly lagEvents: number;
  readonly lagSeconds: number;
  readonly connected: boolean;
  readonly shippedEvents: number;
}

/** The fleet shipper's metrics, on a gateway that is part of a fleet (docs/configuration.md, `fleet`). */
export function registerFleetMetrics(metrics: GatewayMetrics, read: () => FleetShipGauges): void {
  const reg = { registers: [metrics.registry] };
  new client.Gauge({
    name: 'agentgate_fleet_ship_lag_events',
    help: 'Transcript events committed locally and not yet acknowledged by the fleet database.',
    collect() {
      this.set(read().lagEvents);
    },
    ...reg,
  });
  new client.Gauge({
    name: 'agentgate_fleet_ship_lag_seconds',
    help: 'Age of the oldest transcript commit not yet acknowledged by the fleet database, seconds.',
    collect() {
      this.set(read().lagSeconds);
    },
    ...reg,
  });
  new client.Gauge({
    name: 'agentgate_fleet_connected',
    help: "1 while the shipper's last attempt reached the fleet database, else 0.",
    collect() {
      this.set(read().connected ? 1 : 0);
    },
    ...reg,
  });
  new client.Gauge({
    name: 'agentgate_fleet_shipped_events',
    help: 'Transcript events this process inserted into the fleet database since it started.',
    collect() {
      this.set(read().shippedEvents);
    },
    ...reg,
  });
}
