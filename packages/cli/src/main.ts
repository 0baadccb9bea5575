/**
 * The `agentgate` command line (SPEC §5). Errors go to stderr with exit status 1; usage errors exit 2.
 */
import { Command, CommanderError } from 'commander';
import { registerApprovalsCommand } from './commands/approvals.js';
import { registerConsoleCommands } from './commands/console.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerServeCommands } from './commands/serve.js';
import { registerSessionCommands } from './commands/sessions.js';
import { registerSshLoginCommand } from './commands/ssh-login.js';
import { CliError, describeError } from './cli-util.js';

export function buildProgram(): Command {
  const program = new Command('agentgate')
    .description('a recording, policy-enforcing gateway for AI coding agents (PostgreSQL, SSH, Docker)')
    .showHelpAfterError()
    .exitOverride();
  registerServeCommands(program);
  registerSessionCommands(program);
  registerApprovalsCommand(program);
  registerConsoleCommands(program);
  registerSshLoginCommand(program);
  registerKeyCommands(program);
  registerDemoCommand(program);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
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
