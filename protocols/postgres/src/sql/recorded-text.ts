/**
 * What the transcript stores of analysed SQL: statement texts with their credential literals replaced
 * (credentials.ts). Decisions keep using `text`; `recordedText` is set only where it differs.
 */
import type { SqlStatementFacts } from '@agentgate/core';
import { redactText, REDACTED, UNREADABLE_REDACTED, type Secret } from './credentials.js';
import type { Credentials, SqlAnalysis } from './sql-analyzer.js';

/** `analysis.statements`, each with `recordedText` where its text holds a credential. */
export function recordedStatements(analysis: SqlAnalysis): readonly SqlStatementFacts[] {
  const credentials = analysis.credentials;
  if (credentials === undefined) return analysis.statements;
  return analysis.statements.map((s) => withRecordedText(s, credentials));
}

export function withRecordedText(s: SqlStatementFacts, credentials: Credentials): SqlStatementFacts {
  const recorded = recordedTextOf(s.text, credentials);
  return recorded === undefined ? s : Object.freeze({ ...s, recordedText: recorded });
}

/** `text` as recorded: credentials replaced, or undefined when it holds none. */
export function recordedTextOf(text: string, credentials: Credentials): string | undefined {
  if (credentials.unreadable) return UNREADABLE_REDACTED;
  return redactText(text, credentials.secrets);
}

/** A message about the text (a parse error quoting a token) with the credential values in it replaced. */
export function recordedMessage(message: string, secrets: readonly Secret[]): string {
  let out = message;
  for (const s of secrets) {
    const values = s.kind === 'literal' ? [s.value] : s.kind === 'conninfo' ? [s.value, ...s.passwords] : [];
    for (const v of values) if (v !== '') out = out.split(v).join(REDACTED);
  }
  return out;
}
