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
