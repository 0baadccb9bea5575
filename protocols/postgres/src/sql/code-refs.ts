/**
 * What a statement may run besides its own text: the names through which the server reaches code kept in the
 * catalog (routines called, operators, casts, the triggers / rules / views / defaults of the relations it touches,
 * event triggers on DDL), and the code a statement stores for later (function bodies, triggers, rules, views...).
 * The walker collects them from the parse tree; code-resolver.ts resolves them through the catalog. Names are lower
 * case and unqualified: resolution considers every schema (see code-resolver.ts).
 *
 * `origin` is the index, in the analysis' statements, of the statement the reference belongs to: facts found
 * through the reference are attributed to that statement's text.
 */

/** What a statement does to a relation: which of its attached code can run. */
export type RelationEffect = 'read' | 'insert' | 'update' | 'delete' | 'truncate' | 'refresh' | 'maintain';

/** A routine called by name: `f(a, b)`, `CALL p()`, or attribute notation `row.f` (one argument). */
export interface CallRef {
  readonly name: string;
  /** Arguments given; -1 when unknown (a trigger or operator function named in DDL). */
  readonly argc: number;
  /** `VARIADIC` was written before the last argument. */
  readonly variadicCall: boolean;
  /** Attribute notation: a column unless a routine of that name exists. */
  readonly attribute?: true;
  readonly origin: number;
}

/** An operator, a type cast target, or any other name resolved to code by name alone. */
export interface NameRef {
  readonly name: string;
  readonly origin: number;
}

export interface RelationRef {
  readonly name: string;
  readonly effect: RelationEffect;
  /** TRUNCATE … CASCADE: the tables referencing it are truncated too. */
  readonly cascade?: boolean;
  readonly origin: number;
}

/** Code that runs now (or would, in an executed context). */
export interface CodeRefs {
  readonly calls: readonly CallRef[];
  readonly operators: readonly NameRef[];
  readonly types: readonly NameRef[];
  readonly relations: readonly RelationRef[];
  /** Statements that fire event triggers (DDL), by origin. */
  readonly ddl: readonly number[];
}

/** A foreign key's actions as written (pg_constraint confdeltype/confupdtype letters: a, r, c, n, d). */
export interface ForeignKeyLink {
  readonly referenced: string;
  readonly referencing: string;
  readonly onDelete: string;
  readonly onUpdate: string;
}

/**
 * Code a statement stores under names: a later statement of the same transaction that names any of `subjects`
 * runs it (the catalog connection cannot see it before the transaction commits). `facts` is the range of the
 * analysis' statements that make up the stored code (a function body, rule actions, a view's query).
 */
export interface CodeDefinition {
  readonly subjects: readonly string[];
  readonly from: number;
  readonly to: number;
  readonly refs: CodeRefs;
  /** Inheritance / partitioning: statements on `parent` act on `child` too. */
  readonly children?: readonly { readonly parent: string; readonly child: string }[];
  readonly foreignKeys?: readonly ForeignKeyLink[];
  /** Renames: `to` now names what `from` named. */
  readonly renames?: readonly { readonly from: string; readonly to: string }[];
  /** An event trigger: every DDL statement runs its refs. */
  readonly eventTrigger?: boolean;
  /** Changes the gateway does not model (extension scripts): everything that reaches code is unknown. */
  readonly opaque?: string;
}

export const NO_REFS: CodeRefs = Object.freeze({
  calls: [],
  operators: [],
  types: [],
  relations: [],
  ddl: [],
});

export class RefSink implements CodeRefs {
  readonly calls: CallRef[] = [];
  readonly operators: NameRef[] = [];
  readonly types: NameRef[] = [];
  readonly relations: RelationRef[] = [];
  readonly ddl: number[] = [];

  get empty(): boolean {
    return (
      this.calls.length === 0 &&
      this.operators.length === 0 &&
      this.types.length === 0 &&
      this.relations.length === 0 &&
      this.ddl.length === 0
    );
  }

  freeze(): CodeRefs {
    if (this.empty) return NO_REFS;
    return Object.freeze({
      calls: Object.freeze(this.calls),
      operators: Object.freeze(this.operators),
      types: Object.freeze(this.types),
      relations: Object.freeze(this.relations),
      ddl: Object.freeze(this.ddl),
    });
  }
}

/** `refs` with every origin moved by `delta` (a prepared body's refs appended after other statements). */
export function shiftRefs(refs: CodeRefs, delta: number): CodeRefs {
  if (delta === 0 || refs === NO_REFS) return refs;
  const move = <T extends { origin: number }>(xs: readonly T[]): T[] =>
    xs.map((x) => ({ ...x, origin: x.origin + delta }));
  return {
    calls: move(refs.calls),
    operators: move(refs.operators),
    types: move(refs.types),
    relations: move(refs.relations),
    ddl: refs.ddl.map((o) => o + delta),
  };
}

/** The refs of `refs` whose origin is in [from, to), moved to start at 0. */
export function sliceRefs(refs: CodeRefs, from: number, to: number): CodeRefs {
  if (refs === NO_REFS) return refs;
  const pick = <T extends { origin: number }>(xs: readonly T[]): T[] =>
    xs.filter((x) => x.origin >= from && x.origin < to).map((x) => ({ ...x, origin: x.origin - from }));
  const sliced = {
    calls: pick(refs.calls),
    operators: pick(refs.operators),
    types: pick(refs.types),
    relations: pick(refs.relations),
    ddl: refs.ddl.filter((o) => o >= from && o < to).map((o) => o - from),
  };
  return isEmpty(sliced) ? NO_REFS : sliced;
}

export function concatRefs(a: CodeRefs, b: CodeRefs): CodeRefs {
  if (a === NO_REFS) return b;
  if (b === NO_REFS) return a;
  return {
    calls: [...a.calls, ...b.calls],
    operators: [...a.operators, ...b.operators],
    types: [...a.types, ...b.types],
    relations: [...a.relations, ...b.relations],
    ddl: [...a.ddl, ...b.ddl],
  };
}

export function isEmpty(refs: CodeRefs): boolean {
  return (
    refs.calls.length === 0 &&
    refs.operators.length === 0 &&
    refs.types.length === 0 &&
    refs.relations.length === 0 &&
    refs.ddl.length === 0
  );
}
