/**
 * Exec commands (`Cmd` of an exec create, `Entrypoint`+`Cmd` of a container) parsed like SSH exec commands by
 * `@agentgate/shell`, which unwraps `sh -c` scripts, pipes, lists and wrappers into simple commands.
 */
import { analyzeArgv, analyzeEnvironment, type ShellAnalysis } from '@agentgate/shell';

export type { ShellAnalysis };

export function analyzeExecArgv(argv: readonly string[]): ShellAnalysis {
  try {
    return analyzeArgv(argv);
  } catch (err) {
    return { commands: [], error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * A process's `Env`, judged as `env NAME=value cmd` is over SSH: bash runs `BASH_FUNC_name%%` values as functions,
 * `PROMPT_COMMAND` and prompts as code, and `BASH_ENV` or `LD_PRELOAD` load what the analysis cannot see.
 */
export function analyzeExecEnv(env: readonly string[]): ShellAnalysis {
  return analyzeEnvironment(env);
}
