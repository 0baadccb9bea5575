import { describe, it, expect } from '@jest/globals';
import client from 'prom-client';
import { createGatewayMetrics } from './index.js';

const durationLines = (text: string): string[] =>
  text.split('\n').filter((line) => line.includes('agentgate_command_duration_seconds'));

describe('agentgate_command_duration_seconds', () => {
  it('exports exactly what a prom-client Histogram with the same buckets exports for the same observations', async () => {
    const metrics = createGatewayMetrics({ collectProcess: false });
    const registry = new client.Registry();
    const reference = new client.Histogram({
      name: 'agentgate_command_duration_seconds',
      help: 'Time from forwarding a command upstream to its complete result.',
      labelNames: ['listener', 'protocol'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    const observations: [string, 'postgres' | 'ssh', number][] = [
      ['pg', 'postgres', 0.0001],
      ['pg', 'postgres', 0.0005], // on a bound: counted in that bucket
      ['pg', 'postgres', 0.003],
      ['pg', 'postgres', 0.003],
      ['pg', 'postgres', 0.2],
      ['pg', 'postgres', 45], // beyond the last bound: +Inf only
      ['shell', 'ssh', 0.002],
    ];
    for (const [listener, protocol, seconds] of observations) {
      metrics.protocol.commandCompleted(listener, protocol, seconds);
      reference.observe({ listener, protocol }, seconds);
    }
    const ours = durationLines(await metrics.registry.metrics());
    expect(ours).toEqual(durationLines(await registry.metrics()));
    expect(ours).toContain(
      'agentgate_command_duration_seconds_bucket{le="0.0005",listener="pg",protocol="postgres"} 2',
    );
    expect(ours).toContain('agentgate_command_duration_seconds_count{listener="pg",protocol="postgres"} 6');
    const json = await metrics.registry.getMetricsAsJSON();
    expect(json.find((m) => m.name === 'agentgate_command_duration_seconds')?.type).toBe('histogram');
  });

  it('is emptied by resetMetrics, like the other metrics', async () => {
    const metrics = createGatewayMetrics({ collectProcess: false });
    metrics.protocol.commandCompleted('pg', 'postgres', 0.001);
    metrics.registry.resetMetrics();
    expect(durationLines(await metrics.registry.metrics()).filter((l) => !l.startsWith('#'))).toEqual([]);
  });
});

describe('hot-path counters', () => {
  const lines = (text: string, name: string): string[] =>
    text.split('\n').filter((line) => line.startsWith(name + '{') || line.startsWith(name + ' '));

  it('export per label set exactly what prom-client counters given the same increments export', async () => {
    const metrics = createGatewayMetrics({ collectProcess: false });
    const registry = new client.Registry();
    const commands = new client.Counter({
      name: 'agentgate_commands_total',
      help: 'h',
      labelNames: ['listener', 'protocol', 'decision'] as const,
      registers: [registry],
    });
    const bytes = new client.Counter({
      name: 'agentgate_bytes_total',
      help: 'h',
      labelNames: ['listener', 'protocol', 'direction'] as const,
      registers: [registry],
    });
    const events = new client.Counter({
      name: 'agentgate_transcript_events_total',
      help: 'h',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    // Label sets that share values in every position but one, in both orders of first use.
    const decided: [string, 'postgres' | 'ssh', string][] = [
      ['pg', 'postgres', 'allow'],
      ['pg', 'postgres', 'deny'],
      ['pg', 'postgres', 'allow'],
      ['shell', 'ssh', 'allow'],
      ['pg2', 'postgres', 'allow'],
      ['shell', 'postgres', 'allow'],
    ];
    for (const [listener, protocol, decision] of decided) {
      metrics.gate.command(listener, protocol, decision);
      commands.inc({ listener, protocol, decision });
    }
    const up = 'client_to_upstream' as const;
    const down = 'upstream_to_client' as const;
    const moved: [string, 'postgres' | 'ssh', typeof up | typeof down, number][] = [
      ['pg', 'postgres', up, 62],
      ['pg', 'postgres', down, 67],
      ['pg', 'postgres', up, 10],
      ['shell', 'ssh', down, 5],
      ['pg', 'postgres', down, 0],
    ];
    for (const [listener, protocol, direction, n] of moved) {
      metrics.protocol.bytes(listener, protocol, direction, n);
      bytes.inc({ listener, protocol, direction }, n);
    }
    for (const type of ['command', 'decision', 'result', 'command', 'io']) {
      metrics.transcript.event(type);
      events.inc({ type });
    }
    const ours = await metrics.registry.metrics();
    const reference = await registry.metrics();
    for (const name of [
      'agentgate_commands_total',
      'agentgate_bytes_total',
      'agentgate_transcript_events_total',
    ]) {
      expect(lines(ours, name).sort()).toEqual(lines(reference, name).sort());
    }
    expect(lines(ours, 'agentgate_commands_total')).toContain(
      'agentgate_commands_total{listener="pg",protocol="postgres",decision="allow"} 2',
    );
    // Folded sums are not counted twice by a second scrape.
    metrics.gate.command('pg', 'postgres', 'allow');
    expect(lines(await metrics.registry.metrics(), 'agentgate_commands_total')).toContain(
      'agentgate_commands_total{listener="pg",protocol="postgres",decision="allow"} 3',
    );
  });

  it('reject a negative count where it happened, as prom-client does', () => {
    const metrics = createGatewayMetrics({ collectProcess: false });
    expect(() => metrics.protocol.bytes('pg', 'postgres', 'client_to_upstream', -1)).toThrow();
  });
});
