/**
 * The commands put to the gate: a Query's or a portal's texts as analysed, a fastpath FunctionCall, and the
 * SQLSTATE a refusal is rendered with.
 */
import type { PostgresCommand, SqlStatementFacts, Verdict } from '@agentgate/core';
import type { SessionAnalysis } from './analysis.js';

/** A command with the credential values it holds (its recorded results leave them out). */
export interface AnalysedCommand {
  readonly command: PostgresCommand;
  readonly secrets: readonly string[];
}

export interface CommandContext {
  readonly analysis: SessionAnalysis;
  /** The listener's `dynamicSql: match-all`. */
  readonly unknownMatchesAll: boolean;
  /** What every command's detail carries (database, user). */
  readonly detail: Readonly<Record<string, unknown>>;
}

/** The command for `texts` (Bind `params` in `extra`), analysed, with what the record carries of it. */
export async function analysedCommand(
  ctx: CommandContext,
  texts: readonly string[],
  extra: Record<string, unknown>,
  exchange: number,
): Promise<AnalysedCommand> {
  const params = extra['params'] as readonly unknown[] | undefined;
  const a = await ctx.analysis.analyze(texts, params, exchange);
  const detail = { ...ctx.detail, ...extra };
  const command: PostgresCommand = {
    protocol: 'postgres',
    text: texts.join(';\n'),
    statements: a.statements,
    unknownMatchesAll: ctx.unknownMatchesAll,
    detail: a.recordedParams === undefined ? detail : { ...detail, params: a.recordedParams },
    ...(a.recordedText === undefined ? {} : { recordedText: a.recordedText }),
    ...(a.unanalysable === undefined ? {} : { unanalysable: a.unanalysable }),
  };
  return { command, secrets: a.secrets ?? [] };
}

/** An Execute of a portal the gateway never saw bound: nothing is known of what it runs. */
export function unknownPortalCommand(
  ctx: CommandContext,
  portal: string,
  extra: Record<string, unknown>,
): AnalysedCommand {
  return {
    command: {
      protocol: 'postgres',
      text: `EXECUTE PORTAL ${portal}`,
      statements: [],
      unanalysable: `Execute of unknown portal "${portal}"`,
      detail: { ...ctx.detail, ...extra },
    },
    secrets: [],
  };
}

/**
 * Fastpath FunctionCall carries only a function OID and opaque arguments, so it cannot be analysed like SQL: the
 * gate sees a `FUNCTION CALL` statement naming the OID.
 */
export function fastpathCommand(ctx: CommandContext, oid: string): PostgresCommand {
  const statement: SqlStatementFacts = {
    command: 'FUNCTION CALL',
    tables: [],
    functions: [oid],
    unfilteredWrite: false,
    text: `FUNCTION CALL ${oid}`,
    dynamic: false,
  };
  return {
    protocol: 'postgres',
    text: statement.text,
    statements: [statement],
    detail: { ...ctx.detail, functionOid: oid },
  };
}

export const FASTPATH_UNANALYSABLE =
  'fastpath FunctionCall: arguments are opaque; only an explicit allow rule admits it';

/**
 * A refusal's SQLSTATE: a store that cannot record is 53100 disk_full or 58030 io_error, never a policy denial
 * (42501 insufficient_privilege).
 */
export function refusalSqlState(verdict: Extract<Verdict, { allowed: false }>): string {
  if (verdict.code === 'INTERNAL') return 'XX000';
  if (verdict.code !== 'RECORDING_FAILED') return '42501';
  return verdict.recordingFailure === 'disk-full' ? '53100' : '58030';
}
