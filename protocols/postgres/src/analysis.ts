/**
 * What the session needs from SQL analysis (implemented in ./sql/, libpg-query). Declared structurally here so the
 * wire engine and the analyzer evolve independently; the engine's index wires the real analyzer in.
 */
import type { SqlStatementFacts } from '@agentgate/core';

export interface SqlAnalysisResult {
  readonly statements: readonly SqlStatementFacts[];
  readonly topLevel: readonly { readonly command: string; readonly text: string }[];
  /** The parser could not read it: the gateway denies. */
  readonly error?: string;
  /** A built-in refusal (e.g. changing standard_conforming_strings). */
  readonly refused?: string;
}

export interface SqlAnalyzerLike<State> {
  analyze(text: string, state?: State): SqlAnalysisResult;
}

export interface AnalysisProvider<State = unknown> {
  readonly analyzer: Promise<SqlAnalyzerLike<State>>;
  newState(): State;
}
