/** `BENCH_COMMIT_WINDOW=25ms`: the benchmarked gateway's `store.commitWindow` (docs/configuration.md), to measure it. */
export function commitWindowYaml(): string {
  const window = process.env['BENCH_COMMIT_WINDOW'];
  return window ? `store: { commitWindow: ${window} }` : '';
}

/**
 * The gateway `docker.js` and `docker-ab.js` benchmark: a TCP listener for the group `agents`, a unix-socket
 * listener with a fixed identity at `unixPath`, one deny rule, and `BENCH_COMMIT_WINDOW`.
 */
export function dockerBenchGatewayYaml(dockerdSocket: string, unixPath: string): string {
  return `
${commitWindowYaml()}
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
