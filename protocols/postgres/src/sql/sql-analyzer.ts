import type { SqlStatementFacts } from '@agentgate/core';
import { concatRefs, shiftRefs, sliceRefs, type CodeDefinition, type CodeRefs } from './code-refs.js';
import { mayHoldSecret, secretsOfUnparsedText, type Secret } from './credentials.js';
import { LruCache } from './lru-cache.js';
import { numericLiteralKey } from './numeric-key.js';
import { loadPgParser } from './pg-parser.js';
import type { SqlSessionState } from './session-state.js';
import { statementSlice } from './sql-text.js';
import { analyzeText } from './statement-walker.js';
import { newContext, type MutableFacts, type SessionOp, type StatementSpan } from './walk-context.js';

export interface SqlAnalysis {
  /** Every statement, top-level and nested, flattened (a rule matches if any of them matches). */
  readonly statements: readonly SqlStatementFacts[];
  /** Set when the text cannot be analysed (parse error, unknown prepared statement): the gateway denies it. */
  readonly error?: string;
  /** Set when the text does something the gateway refuses outright (see traps.ts): the gateway denies it. */
  readonly refused?: string;
  /** What the statements reach through the catalog and what they store for later (code-refs.ts). */
  readonly code: AnalysisCode;
  /** Credentials in the text (credentials.ts), when it holds any: the record carries it redacted. */
  readonly credentials?: Credentials;
}

export interface Credentials {
  readonly secrets: readonly Secret[];
  /** The text could not even be scanned and may hold a credential: none of it is recorded. */
  readonly unreadable: boolean;
}

export interface AnalysisCode {
  /** Origins index `statements`. */
  readonly refs: CodeRefs;
  readonly definitions: readonly CodeDefinition[];
}

export interface SqlAnalyzer {
  /**
   * Synchronous and cached by statement shape (texts equal but for numeric literals share one analysis, with
   * statement texts cut from the current text); `state` resolves `EXECUTE name` and records PREPARE/DEALLOCATE.
   */
  analyze(text: string, state?: SqlSessionState): SqlAnalysis;
}

export interface SqlAnalyzerOptions {
  /**
   * Analyses kept (LRU), in each of the two caches: by statement shape (numbers zeroed, see numeric-key.ts) and by
   * exact text (analyses that depend on a number's value, errors, refusals, texts the key scanner declines).
   * Default 2000.
   */
  readonly cacheEntries?: number;
}

/** The session-independent part of an analysis, as cached. */
interface CachedAnalysis {
  /** The text analysed. */
  readonly input: string;
  readonly analysis: SqlAnalysis;
  readonly ops: readonly SessionOp[];
  /** The top-level statements' places in `input`, in order. */
  readonly spans: readonly StatementSpan[];
  /** How many top-level statements the walk found (a span is kept for each one it could place). */
  readonly topLevelCount: number;
  /** Per analysis.statements entry: the span its text is the slice of, or undefined (text from inside a literal). */
  readonly statementSpans: readonly (number | undefined)[];
}

/** Texts longer than this are analysed every time rather than cached (bounded memory). */
const MAX_CACHED_TEXT = 16 * 1024;

export async function createSqlAnalyzer(opts: SqlAnalyzerOptions = {}): Promise<SqlAnalyzer> {
  await loadPgParser();
  const entries = opts.cacheEntries ?? 2000;
  const byShape = new LruCache<string, CachedAnalysis>(entries);
  const byText = new LruCache<string, CachedAnalysis>(entries);
  /**
   * The analysis looked up last: a prepared statement's Executes bring the same text each time, and an analysis
   * depends on its text alone, so it is returned without hashing the text or building its shape key again.
   */
  let last: CachedAnalysis | undefined;

  return {
    analyze(text: string, state?: SqlSessionState): SqlAnalysis {
      const cached = text.length <= MAX_CACHED_TEXT ? lookup(text) : analyzeUncached(text).cached;
      return cached.ops.length === 0 ? cached.analysis : applySessionOps(cached, state);
    },
  };

  function lookup(text: string): CachedAnalysis {
    if (last !== undefined && last.input === text) return last;
    const found = lookupCaches(text);
    if (entries > 0) last = found;
    return found;
  }

  function lookupCaches(text: string): CachedAnalysis {
    const exact = byText.get(text);
    if (exact !== undefined) return exact;
    const key = numericLiteralKey(text);
    if (key !== undefined) {
      const shared = byShape.get(key);
      if (shared !== undefined) return shared.input === text ? shared : rebind(shared, text);
    }
    const { cached, numericValuesMatter } = analyzeUncached(text);
    const shareable =
      key !== undefined &&
      !numericValuesMatter &&
      cached.analysis.error === undefined &&
      cached.analysis.refused === undefined &&
      cached.spans.length === cached.topLevelCount;
    if (shareable) byShape.set(key, cached);
    else byText.set(text, cached);
    return cached;
  }
}

/**
 * A cached analysis of a text with the same key as `text` (equal but for the digits of numeric literals), for
 * `text`: statement texts that are slices of the client's text are cut from `text` at the same offsets (the key
 * preserves every offset). Everything else is equal by construction: texts from inside literals are unaltered by
 * the key, and nothing else depends on a number's value — commands, tables and functions come from names; the
 * unfiltered-write test asks whether a WHERE references any column, never what a constant is (`WHERE 1 = 1` and
 * `WHERE 1 = 0` both reference none); statement counts, session ops and `dynamic` follow the tree's shape, which
 * the key fixes (numeric-key.ts keeps the digits where gram.y/scan.l look at a value); analyses that read a
 * constant's value, errors and refusals are never shared.
 */
function rebind(cached: CachedAnalysis, text: string): CachedAnalysis {
  // Loops and literals rather than map and spreads: this runs for every simple-protocol statement.
  const { analysis, spans, statementSpans } = cached;
  const slices: string[] = new Array<string>(spans.length);
  for (let s = 0; s < spans.length; s++)
    slices[s] = statementSlice(text, spans[s]!.location, spans[s]!.length);
  const source = analysis.statements;
  const statements: SqlStatementFacts[] = new Array<SqlStatementFacts>(source.length);
  for (let i = 0; i < source.length; i++) {
    const facts = source[i]!;
    const span = statementSpans[i];
    statements[i] = span === undefined ? facts : withText(facts, slices[span] ?? '');
  }
  const rebound: { -readonly [K in keyof SqlAnalysis]: SqlAnalysis[K] } = {
    statements: Object.freeze(statements),
    code: analysis.code,
  };
  return {
    input: text,
    analysis: Object.freeze(rebound),
    ops: cached.ops,
    spans,
    topLevelCount: cached.topLevelCount,
    statementSpans,
  };
}

/** `facts` (as `freeze` below made them: these members, in this order) with another text. */
function withText(facts: SqlStatementFacts, text: string): SqlStatementFacts {
  return Object.freeze({
    command: facts.command,
    tables: facts.tables,
    functions: facts.functions,
    unfilteredWrite: facts.unfilteredWrite,
    text,
    dynamic: facts.dynamic,
  });
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

function analyzeUncached(text: string): { cached: CachedAnalysis; numericValuesMatter: boolean } {
  const ctx = newContext();
  analyzeText(text, ctx);
  const analysis: { -readonly [K in keyof SqlAnalysis]: SqlAnalysis[K] } = {
    statements: Object.freeze(ctx.facts.map(freeze)),
    code: Object.freeze({
      refs: ctx.code.refs.freeze(),
      definitions: Object.freeze(ctx.code.definitions),
    }),
  };
  if (ctx.errors[0] !== undefined) analysis.error = ctx.errors[0];
  if (ctx.refusals[0] !== undefined) analysis.refused = ctx.refusals[0];
  const credentials = credentialsOf(text, ctx.secrets, ctx.errors.length > 0);
  if (credentials !== undefined) analysis.credentials = credentials;
  const cached: CachedAnalysis = {
    input: text,
    analysis: Object.freeze(analysis),
    ops: ctx.errors.length > 0 ? [] : ctx.ops,
    spans: ctx.spans,
    topLevelCount: ctx.topLevelCount,
    statementSpans: ctx.facts.map((f) => f.span),
  };
  // An analysis with credentials is kept for its exact text: its secrets are values of that text.
  return { cached, numericValuesMatter: ctx.numericValuesMatter || credentials !== undefined };
}

/** The tree's secrets; for a text the parser rejected, those its tokens show (credentials.ts). */
function credentialsOf(text: string, found: readonly Secret[], failed: boolean): Credentials | undefined {
  const secrets = [...found];
  let unreadable = false;
  if (failed) {
    const fromTokens = secretsOfUnparsedText(text);
    if (fromTokens === undefined) unreadable = mayHoldSecret(text);
    else secrets.push(...fromTokens);
  }
  if (secrets.length === 0 && !unreadable) return undefined;
  return Object.freeze({ secrets: Object.freeze(secrets), unreadable });
}

/** Resolve `EXECUTE name` against the session and record PREPARE/DEALLOCATE, in statement order. */
function applySessionOps(cached: CachedAnalysis, state: SqlSessionState | undefined): SqlAnalysis {
  const { analysis } = cached;
  const resolved: SqlStatementFacts[] = [];
  let refs = analysis.code.refs;
  let error: string | undefined;
  for (const op of cached.ops) {
    if (op.kind === 'execute') {
      const body = state?.lookup(op.name);
      if (body === undefined) {
        error ??= `agentgate: prepared statement "${op.name}" is not known to the gateway`;
        continue;
      }
      refs = concatRefs(refs, shiftRefs(body.refs, analysis.statements.length + resolved.length));
      resolved.push(...body.facts);
    } else if (analysis.refused === undefined && state !== undefined) {
      if (op.kind === 'prepare')
        state.remember(op.name, {
          facts: analysis.statements.slice(op.from, op.to),
          refs: sliceRefs(analysis.code.refs, op.from, op.to),
        });
      else state.forget(op.name);
    }
  }
  if (resolved.length === 0 && error === undefined) return analysis;
  const out: { -readonly [K in keyof SqlAnalysis]: SqlAnalysis[K] } = {
    statements: resolved.length === 0 ? analysis.statements : [...analysis.statements, ...resolved],
    code: { refs, definitions: analysis.code.definitions },
  };
  if (analysis.credentials !== undefined) out.credentials = analysis.credentials;
  const firstError = analysis.error ?? error;
  if (firstError !== undefined) out.error = firstError;
  if (analysis.refused !== undefined) out.refused = analysis.refused;
  return out;
}
