/**
 * What the session needs from SQL analysis (implemented in ./sql/, libpg-query and the upstream's catalog).
 * Declared structurally here so the wire engine and the analyzer evolve independently; the engine's index wires
 * the real analyzer in.
 */
import type { Logger, PostgresListenerConfig, SqlStatementFacts } from '@agentgate/core';

export interface CommandAnalysis {
  /** Every statement, nested ones and the code they reach included. */
  readonly statements: readonly SqlStatementFacts[];
  /** Set when the command cannot be analysed, or is refused outright: the gateway denies it. */
  readonly unanalysable?: string;
  /** The command's text with credentials replaced, when it holds any: what the record carries. */
  readonly recordedText?: string;
  /** The Bind parameters with credentials replaced, when any is one. */
  readonly recordedParams?: readonly unknown[];
  /** The credential values themselves, when there are any: results echoing them are recorded without them. */
  readonly secrets?: readonly string[];
}

/** One client session's analysis state (prepared statements, code defined in its open transaction). */
export interface SessionAnalysis {
  /**
   * The facts of one command: a Query's text, or every text an Execute's portal may run, with its Bind parameters.
   * `exchange` is the response group it belongs to (see transactionEnded). A plain value when nothing had to be
   * looked up (the catalog), so that the relay awaits only what waits.
   */
  analyze(
    texts: readonly string[],
    params: readonly unknown[] | undefined,
    exchange: number,
  ): CommandAnalysis | Promise<CommandAnalysis>;
  /** ReadyForQuery reported no transaction open after response group `exchange`. */
  transactionEnded(exchange: number): void;
  close(): void;
}

export interface SessionAnalysisContext {
  readonly upstream: PostgresListenerConfig['upstream'];
  readonly database: string;
  readonly log: Logger;
}

export interface AnalysisProvider {
  /** Settles when the analyzer is loaded (rejects when it cannot be). */
  readonly analyzer: Promise<unknown>;
  openSession(context: SessionAnalysisContext): Promise<SessionAnalysis>;
  /** The engine closed: release catalog connections. */
  close?(): void;
}
