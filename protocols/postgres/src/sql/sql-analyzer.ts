import type { SqlStatementFacts } from '@agentgate/core';
import { LruCache } from './lru-cache.js';
import { loadPgParser } from './pg-parser.js';
import type { SqlSessionState } from './session-state.js';
import { analyzeText, newContext, type MutableFacts, type SessionOp } from './statement-walker.js';

export interface SqlAnalysis {
  /** Every statement, top-level and nested, flattened (a rule matches if any of them matches). */
  readonly statements: readonly SqlStatementFacts[];
  /** The client's statements as the server will split them. */
  readonly topLevel: readonly { readonly command: string; readonly text: string }[];
  /** Set when the text cannot be analysed (parse error, unknown prepared statement): the gateway denies it. */
  readonly error?: string;
  /** Set when the text does something the gateway refuses outright (see traps.ts): the gateway denies it. */
  readonly refused?: string;
}

export interface SqlAnalyzer {
  /** Synchronous and cached by text; `state` resolves `EXECUTE name` and records PREPARE/DEALLOCATE. */
  analyze(text: string, state?: SqlSessionState): SqlAnalysis;
}

export interface SqlAnalyzerOptions {
  /** Distinct statement texts kept (LRU). Default 2000. */
  readonly cacheEntries?: number;
}

/** The session-independent part of an analysis, as cached. */
interface CachedAnalysis {
  readonly analysis: SqlAnalysis;
  readonly ops: readonly SessionOp[];
}

/** Texts longer than this are analysed every time rather than cached (bounded memory). */
const MAX_CACHED_TEXT = 16 * 1024;

export async function createSqlAnalyzer(opts: SqlAnalyzerOptions = {}): Promise<SqlAnalyzer> {
  await loadPgParser();
  const cache = new LruCache<string, CachedAnalysis>(opts.cacheEntries ?? 2000);
  return {
    analyze(text: string, state?: SqlSessionState): SqlAnalysis {
      let cached = cache.get(text);
      if (cached === undefined) {
        cached = analyzeUncached(text);
        if (text.length <= MAX_CACHED_TEXT) cache.set(text, cached);
      }
      return cached.ops.length === 0 ? cached.analysis : applySessionOps(cached, state);
    },
  };
}

function freeze(f: MutableFacts): SqlStatementFacts {
  return Object.freeze({
    command: f.command,
    tables: Object.freeze([...f.tables]),
    functions: Object.freeze([...f.functions]),
    unfilteredWrite: f.unfilteredWrite,
    text: f.text,
    dynamic: f.dynamic,
  });
}

function analyzeUncached(text: string): CachedAnalysis {
  const ctx = newContext();
  analyzeText(text, ctx);
  const analysis: { -readonly [K in keyof SqlAnalysis]: SqlAnalysis[K] } = {
    statements: Object.freeze(ctx.facts.map(freeze)),
    topLevel: Object.freeze(ctx.topLevel.map((t) => Object.freeze(t))),
  };
  if (ctx.errors[0] !== undefined) analysis.error = ctx.errors[0];
  if (ctx.refusals[0] !== undefined) analysis.refused = ctx.refusals[0];
  return { analysis: Object.freeze(analysis), ops: ctx.errors.length > 0 ? [] : ctx.ops };
}

/** Resolve `EXECUTE name` against the session and record PREPARE/DEALLOCATE, in statement order. */
function applySessionOps(cached: CachedAnalysis, state: SqlSessionState | undefined): SqlAnalysis {
  const { analysis } = cached;
  const resolved: SqlStatementFacts[] = [];
  let error: string | undefined;
  for (const op of cached.ops) {
    if (op.kind === 'execute') {
      const body = state?.lookup(op.name);
      if (body === undefined) {
        error ??= `agentgate: prepared statement "${op.name}" is not known to the gateway`;
        continue;
      }
      resolved.push(...body);
    } else if (analysis.refused === undefined && state !== undefined) {
      if (op.kind === 'prepare') state.remember(op.name, analysis.statements.slice(op.from, op.to));
      else state.forget(op.name);
    }
  }
  if (resolved.length === 0 && error === undefined) return analysis;
  const out: { -readonly [K in keyof SqlAnalysis]: SqlAnalysis[K] } = {
    statements: resolved.length === 0 ? analysis.statements : [...analysis.statements, ...resolved],
    topLevel: analysis.topLevel,
  };
  const firstError = analysis.error ?? error;
  if (firstError !== undefined) out.error = firstError;
  if (analysis.refused !== undefined) out.refused = analysis.refused;
  return out;
}
