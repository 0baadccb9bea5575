/**
 * The `agentgate` command line (docs/cli.md). Errors go to stderr with exit status 1; usage errors exit 2.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerApprovalsCommand } from './commands/approvals.js';
import { registerConsoleCommands } from './commands/console.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerFleetCommands } from './commands/fleet.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerServeCommands } from './commands/serve.js';
import { registerSessionCommands } from './commands/sessions.js';
import { registerSshLoginCommand } from './commands/ssh-login.js';
import { registerStoreCommands } from './commands/store.js';
import { CliError, describeError } from './cli-util.js';
import { exitQuietlyOnClosedOutput } from './output.js';

/** The version of this package (packages/cli/package.json, next to dist/). */
export function agentgateVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

export function buildProgram(): Command {
  const program = new Command('agentgate')
    .description('a recording, policy-enforcing gateway for AI coding agents (PostgreSQL, SSH, Docker)')
    .version(agentgateVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  registerServeCommands(program);
  registerSessionCommands(program);
  registerStoreCommands(program);
  registerApprovalsCommand(program);
  registerConsoleCommands(program);
  registerSshLoginCommand(program);
  registerKeyCommands(program);
  registerFleetCommands(program);
  registerDemoCommand(program);
  const exitOverride = (cmd: Command): void => {
    cmd.exitOverride();
    for (const sub of cmd.commands) exitOverride(sub);
  };
  exitOverride(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  exitQuietlyOnClosedOutput();
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" with exit code 0
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`agentgate: ${describeError(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}
