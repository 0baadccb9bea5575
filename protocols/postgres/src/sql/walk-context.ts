/**
 * The state a statement walk builds (statement-walker.ts): the facts of every statement found, top-level and nested,
 * with the session operations, refusals, errors and secrets met on the way, and the helpers that add to them.
 */
import { CodeCollector } from './code-collector.js';
import { constantText } from './constants.js';
import type { Secret } from './credentials.js';
import type { DerivedEffect } from './effects.js';

type Node = Record<string, unknown>;

/** Where a statement's `text` comes from. */
export interface TextSource {
  readonly text: string;
  /**
   * Index into WalkContext.spans when `text` is the slice of a client's top-level statement; undefined when it
   * comes from inside a string literal or dollar-quoted body (function bodies, EXECUTE strings, query_to_xml).
   */
  readonly span: number | undefined;
}

export interface MutableFacts extends TextSource {
  /** Position in WalkContext.facts: the origin of the code references found in this statement. */
  index: number;
  command: string;
  readonly tables: Set<string>;
  readonly functions: Set<string>;
  unfilteredWrite: boolean;
  dynamic: boolean;
}

/** A top-level statement's place in the client's text as libpg_query reports it (UTF-8 bytes). */
export interface StatementSpan {
  readonly location: number | undefined;
  readonly length: number | undefined;
}

/** Effects on the per-session PREPARE registry, applied in order when a cached analysis is used. */
export type SessionOp =
  | { readonly kind: 'prepare'; readonly name: string; readonly from: number; readonly to: number }
  | { readonly kind: 'deallocate'; readonly name: string | null }
  | { readonly kind: 'execute'; readonly name: string };

export interface WalkContext {
  readonly facts: MutableFacts[];
  /** Top-level statements walked to the end (the cache shares an analysis only when each has its span). */
  topLevelCount: number;
  readonly ops: SessionOp[];
  readonly refusals: string[];
  readonly errors: string[];
  /** The client's top-level statements' places in the text, in order. */
  readonly spans: StatementSpan[];
  /**
   * Set when the facts depend on the value of a numeric literal (a constant read by traps.ts or as a SQL-running
   * function's argument) or on text outside the parts a numeric-insensitive cache key keeps (a PL/pgSQL function
   * compiled from the whole CREATE FUNCTION text): such an analysis is cached for its exact text only.
   */
  numericValuesMatter: boolean;
  /** 0 for the client's text; deeper inside function bodies and DO blocks. */
  depth: number;
  /** Code the statements reach through the catalog, and code they store (code-collector.ts). */
  readonly code: CodeCollector;
  /** The node type of the innermost statement being walked (its relations are read when it is a query). */
  statement: string;
  /** Credential values found in the tree (credentials.ts): replaced in the recorded text. */
  readonly secrets: Secret[];
}

/** Nested SQL (function bodies inside function bodies…) deeper than this is refused as unanalysable. */
export const MAX_DEPTH = 8;

export function newContext(): WalkContext {
  return {
    facts: [],
    topLevelCount: 0,
    ops: [],
    refusals: [],
    errors: [],
    spans: [],
    numericValuesMatter: false,
    depth: 0,
    code: new CodeCollector(),
    statement: '',
    secrets: [],
  };
}

export function newFacts(command: string, source: TextSource): MutableFacts {
  return {
    index: -1,
    command,
    tables: new Set(),
    functions: new Set(),
    unfilteredWrite: false,
    text: source.text,
    span: source.span,
    dynamic: false,
  };
}

/** Add `f` to the walk's facts, numbering it. */
export function pushFacts(ctx: WalkContext, f: MutableFacts): void {
  f.index = ctx.facts.push(f) - 1;
}

/** Tables and functions of a nested statement count for the enclosing one too. */
export function rollUp(parent: MutableFacts, child: MutableFacts): void {
  for (const t of child.tables) parent.tables.add(t);
  for (const f of child.functions) parent.functions.add(f);
}

/** A statement fact derived from `f` under another command (`COPY PROGRAM`), with its tables and functions. */
export function copyFacts(f: MutableFacts, command: string): MutableFacts {
  const c = newFacts(command, f);
  rollUp(c, f);
  return c;
}

/** A row effect of `f` beyond its own command, as a statement fact of its own (effects.ts). */
export function pushEffect(f: MutableFacts, effect: DerivedEffect, ctx: WalkContext): void {
  const c = newFacts(effect.command, f);
  if (effect.tables === undefined) rollUp(c, f);
  else for (const t of effect.tables) c.tables.add(t);
  c.unfilteredWrite = effect.unfilteredWrite;
  c.dynamic = effect.dynamic === true;
  pushFacts(ctx, c);
}

/** A constant's text as read by the walker: reading a number's value makes the analysis value-sensitive. */
export function readConstant(node: unknown, ctx: WalkContext): string | undefined {
  return constantText(node, () => {
    ctx.numericValuesMatter = true;
  });
}

/** The string items of a name list (`schema.table`, a function name) as written. */
export function names(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const item of list as Node[]) {
    const s = item['String'] as Node | undefined;
    if (s !== undefined && typeof s['sval'] === 'string') out.push(s['sval']);
  }
  return out;
}

/** `schema.table` or `table`, as the RangeVar names it. */
export function relationName(rangeVar: Node): string {
  const rel = String(rangeVar['relname']);
  return typeof rangeVar['schemaname'] === 'string' ? `${rangeVar['schemaname']}.${rel}` : rel;
}

/** A dotted name in lower case, as rules match it. */
export function lowerName(parts: readonly string[]): string {
  return parts.join('.').toLowerCase();
}
