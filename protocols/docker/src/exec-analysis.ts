/**
 * Exec commands (`Cmd` of an exec create, `Entrypoint`+`Cmd` of a container) parsed like SSH exec commands by
 * `@agentgate/shell`, which unwraps `sh -c` scripts, pipes, lists and wrappers into simple commands.
 */
import { analyzeArgv, type ShellAnalysis } from '@agentgate/shell';

export type { ShellAnalysis };

export function analyzeExecArgv(argv: readonly string[]): ShellAnalysis {
  try {
    return analyzeArgv(argv);
  } catch (err) {
    return { commands: [], error: err instanceof Error ? err.message : String(err) };
  }
}
