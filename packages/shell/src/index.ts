/**
 * @agentgate/shell: which simple commands a shell command line runs. Synchronous: the parser (mvdan/sh via
 * GopherJS) loads on import (~110 ms once); `initShellAnalyzer()` exists only to move that cost to start-up.
 */
export {
  analyzeShellCommand,
  analyzeArgv,
  analyzeEnvironment,
  MAX_COMMAND_BYTES,
  type ShellAnalysis,
} from './analyze.js';
export { mayExpandHistory } from './history-expansion.js';
export { WRAPPERS } from './wrappers.js';
export { SHELLS } from './shells.js';
export { CATALOGUE, programExecution, type ExecutionClass, type ProgramExecution } from './catalogue.js';

/** Optional warm-up: the analyzer is ready once this module is imported; awaiting this is harmless. */
export async function initShellAnalyzer(): Promise<void> {
  const { analyzeShellCommand } = await import('./analyze.js');
  analyzeShellCommand('true');
}
