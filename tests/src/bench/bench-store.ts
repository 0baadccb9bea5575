/** `BENCH_COMMIT_WINDOW=25ms`: the benchmarked gateway's `store.commitWindow` (docs/configuration.md), to measure it. */
export function commitWindowYaml(): string {
  const window = process.env['BENCH_COMMIT_WINDOW'];
  return window ? `store: { commitWindow: ${window} }` : '';
}
