/**
 * The commands put to the gate: a Query's or a portal's texts as analysed, a fastpath FunctionCall, and the
 * SQLSTATE a refusal is rendered with.
 */
import type { PostgresCommand, SqlStatementFacts, Verdict } from '@agentgate/core';
import type { CommandAnalysis, SessionAnalysis } from './analysis.js';

/** A command with the credential values it holds (its recorded results leave them out). */
export interface AnalysedCommand {
  readonly command: PostgresCommand;
  readonly secrets: readonly string[];
}

export interface CommandContext {
  readonly analysis: SessionAnalysis;
  /** The listener's `dynamicSql: match-all`. */
  readonly unknownMatchesAll: boolean;
  /** What every command's detail carries. */
  readonly database: string;
  readonly user: string;
}

/** What an Execute's command detail adds: the portal, the statement it was bound from, its Bind parameters. */
export interface PortalDetail {
  readonly portal: string;
  readonly statementName: string | null;
  readonly params: readonly unknown[];
}

const NO_SECRETS: readonly string[] = Object.freeze([]);

/**
 * The command for `texts` (an Execute's portal in `portal`), analysed, with what the record carries of it: a plain
 * value when the analysis was (the usual case), a promise only when it had to look something up.
 */
export function analysedCommand(
  ctx: CommandContext,
  texts: readonly string[],
  portal: PortalDetail | undefined,
  exchange: number,
): AnalysedCommand | Promise<AnalysedCommand> {
  const a = ctx.analysis.analyze(texts, portal?.params, exchange);
  return a instanceof Promise
    ? a.then((analysis) => commandOf(ctx, texts, portal, analysis))
    : commandOf(ctx, texts, portal, a);
}

function commandOf(
  ctx: CommandContext,
  texts: readonly string[],
  portal: PortalDetail | undefined,
  a: CommandAnalysis,
): AnalysedCommand {
  const command: { -readonly [K in keyof PostgresCommand]: PostgresCommand[K] } = {
    protocol: 'postgres',
    text: texts.length === 1 ? texts[0]! : texts.join(';\n'),
    statements: a.statements,
    unknownMatchesAll: ctx.unknownMatchesAll,
    detail: commandDetail(ctx, portal, a.recordedParams),
  };
  if (a.recordedText !== undefined) command.recordedText = a.recordedText;
  if (a.unanalysable !== undefined) command.unanalysable = a.unanalysable;
  return { command, secrets: a.secrets ?? NO_SECRETS };
}

/**
 * The recorded detail, written out field by field in its recorded order: an object spread followed by added
 * properties costs V8 a new map per call, microseconds on every Execute (docs/performance.md, PostgreSQL).
 */
function commandDetail(
  ctx: CommandContext,
  portal: PortalDetail | undefined,
  recordedParams: readonly unknown[] | undefined,
): Record<string, unknown> {
  if (portal === undefined) return { database: ctx.database, user: ctx.user };
  return {
    database: ctx.database,
    user: ctx.user,
    portal: portal.portal,
    statementName: portal.statementName,
    params: recordedParams ?? portal.params,
  };
}

/** An Execute of a portal the gateway never saw bound: nothing is known of what it runs. */
export function unknownPortalCommand(ctx: CommandContext, portal: PortalDetail): AnalysedCommand {
  return {
    command: {
      protocol: 'postgres',
      text: `EXECUTE PORTAL ${portal.portal}`,
      statements: [],
      unanalysable: `Execute of unknown portal "${portal.portal}"`,
      detail: commandDetail(ctx, portal, undefined),
    },
    secrets: NO_SECRETS,
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
    detail: { database: ctx.database, user: ctx.user, functionOid: oid },
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
