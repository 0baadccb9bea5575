/**
 * deploy/grafana/agentgate.json is built on the metrics that exist: every metric a panel queries is one a running
 * gateway serves on /metrics (histograms by their _bucket series), and every panel reads the dashboard's data source
 * variable, so the file imports into any Grafana with a Prometheus data source.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from './harness/cli.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway('', { testListeners: [{ name: 'line', allow: ['group:agents'] }] });
});
afterAll(async () => {
  await gw?.stop();
});

describe('Grafana dashboard', () => {
  it('queries only metrics the gateway serves, through the data source variable', async () => {
    const dashboard = JSON.parse(
      readFileSync(join(repoRoot, 'deploy', 'grafana', 'agentgate.json'), 'utf8'),
    ) as {
      panels: Panel[];
      templating: { list: { name: string; type: string }[] };
    };
    const served = new Set(
      [...(await (await fetch(`${gw.adminUrl}/metrics`)).text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(
        (m) => m[1],
      ),
    );
    const queried = new Set<string>();
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) {
      expect({ panel: panel.title, uid: panel.datasource?.uid }).toEqual({
        panel: panel.title,
        uid: '${datasource}',
      });
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? [])
        for (const [name] of target.expr.matchAll(/\bagentgate_[a-z0-9_]+/g)) queried.add(name);
    }
    const missing = [...queried].filter(
      (name) => !served.has(name) && !served.has(name.replace(/_(bucket|sum|count)$/, '')),
    );
    expect(missing).toEqual([]);
    // The metrics operators act on are all on it.
    for (const name of [
      'agentgate_listener_up',
      'agentgate_transcript_writable',
      'agentgate_approvals_pending',
      'agentgate_auth_failures_total',
      'agentgate_upstream_errors_total',
      'agentgate_commands_total',
    ])
      expect(queried).toContain(name);
    expect(dashboard.templating.list.map((v) => [v.name, v.type])).toEqual([
      ['datasource', 'datasource'],
      ['listener', 'query'],
    ]);
  });
});
