import { join } from 'node:path';

/**
 * `BENCH_COMMIT_WINDOW=25ms`: the benchmarked gateway's `store.commitWindow` (docs/configuration.md), to measure it;
 * `window` instead when given (pg-ab.js sets one per side).
 */
export function commitWindowYaml(window = process.env['BENCH_COMMIT_WINDOW']): string {
  return window ? `store: { commitWindow: ${window} }` : '';
}

/**
 * The gateway `docker.js` and `docker-ab.js` benchmark: a TCP listener for the group `agents`, a unix-socket
 * listener with a fixed identity at `unixPath`, one deny rule, and `BENCH_COMMIT_WINDOW` (or `commitWindow`, when
 * given).
 */
export function dockerBenchGatewayYaml(
  dockerdSocket: string,
  unixPath: string,
  commitWindow?: string,
): string {
  return `
${commitWindowYaml(commitWindow)}
listeners:
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { socket: ${dockerdSocket} }
  - name: docker-unix
    protocol: docker
    listen: unix:${unixPath}
    identity: bench
    allow: [identity:bench]
    upstream: { socket: ${dockerdSocket} }
rules:
  - { name: no-privileged, protocol: docker, match: { privileged: true }, action: deny }
`;
}

/**
 * The gateway `pgbench.js` and `pg-ab.js` benchmark: a PostgreSQL listener for the group `agents` in front of the
 * database `app`, two deny rules, and `BENCH_COMMIT_WINDOW` (or `commitWindow`, when given).
 */
export function pgBenchGatewayYaml(upstreamPort: number, password: string, commitWindow?: string): string {
  return `
${commitWindowYaml(commitWindow)}
listeners:
  - name: pg
    protocol: postgres
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${upstreamPort}, user: app, password: "${password}", database: app }
rules:
  - { name: no-ddl-drops, protocol: postgres, match: { commands: [DROP, TRUNCATE, ALTER SYSTEM] }, action: deny }
  - { name: no-file-reads, protocol: postgres, match: { functions: [pg_read_file, lo_import] }, action: deny }
`;
}

/** The packages `openBenchStore` opens a store with: a build's own, for the benchmarks that load another build. */
export interface StorePackages {
  readonly transcript: typeof import('@agentgate/transcript');
  readonly masking: typeof import('@agentgate/masking');
  readonly metrics: typeof import('@agentgate/metrics');
}

/**
 * A store in `dir` as the gateway opens one (fail-closed, default redaction, metrics hooks), with the metrics it
 * reports to; the record-path benchmarks (transcript-record.js, pg-record-ab.js) measure against it.
 */
export async function openBenchStore(packages: StorePackages, dir: string) {
  const { transcript, masking } = packages;
  const metrics = packages.metrics.createGatewayMetrics({ collectProcess: false });
  const store = await transcript.openTranscriptStore({
    path: join(dir, 'store'),
    failMode: 'closed',
    checkpointIntervalMs: 60_000,
    signer: await transcript.loadOrCreateSigningKey(join(dir, 'signing-key.json')),
    redactor: masking.createRedactor({ defaults: true, disable: [], entries: [] }),
    hooks: metrics.transcript,
  });
  return { store, metrics };
}
