import { AgentgateError } from '@agentgate/core';

/** One problem in a config file: the key path (`listeners[1].upstream.port`) and what was wrong there. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * Every problem found in one config file, reported together so an operator fixes them in one pass.
 * The message has one line per issue: `<file>: <path>: expected …, found …`.
 */
export class ConfigError extends AgentgateError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super('CONFIG_INVALID', issues.map((issue) => `${file}: ${issue.path}: ${issue.message}`).join('\n'), {
      detail: { file, issues: issues.length },
    });
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}
