/**
 * Follows a command's code references (code-refs.ts) into the catalog (code-catalog.ts) and the session's
 * uncommitted definitions (pending-code.ts), and returns what that code does as statement facts of its own:
 * the statements of routine bodies (SQL, PL/pgSQL, transitively), of rule actions and view queries, the rows that
 * foreign keys' actions and inheritance children add to a write, and an unknown fact (dynamic: it widens deny and
 * approve rules) for code that cannot be read: a routine in another language, one that cannot be resolved, code
 * nested deeper than the bounds below.
 *
 * Resolution is conservative where the server's choice depends on things the gateway does not model: a routine
 * call reaches every user routine of that name, in every schema, whose argument count fits (not only the one the
 * session's search_path and the argument types would select); an operator reaches every user operator of that
 * symbol; a relation name reaches the relations of that name in every schema. So no search_path, schema or
 * overload trick can steer a call to code the gateway did not look at.
 *
 * Built-in routines (OID below FirstNormalObjectId) and C routines installed by an extension are the server's own
 * code: they are matched by name (`functions:` rules), not followed.
 */
import type { SqlStatementFacts } from '@agentgate/core';
import {
  FIRST_NORMAL_OID,
  TRIGGER_DELETE,
  TRIGGER_INSERT,
  TRIGGER_TRUNCATE,
  TRIGGER_UPDATE,
  type CodeCatalog,
  type CodeSnapshot,
  type RelationCode,
  type RoutineCode,
  type RoutineRow,
} from './code-catalog.js';
import type { CallRef, CodeDefinition, CodeRefs, RelationEffect } from './code-refs.js';
import { builtinFunctionEffects } from './effects.js';
import type { PendingCode, PendingDefinition } from './pending-code.js';
import { recordedStatements } from './recorded-text.js';

/** Routine bodies calling routines…: deeper than this is unknown. */
export const MAX_CODE_DEPTH = 8;
/** Routines, relations and definitions followed for one command; beyond it the rest is unknown. */
const MAX_UNITS = 2000;
/** Catalog round trips for one command. */
const MAX_LOOKUPS = 16;

export interface Resolved {
  /** Facts to add to the command's statements. */
  readonly facts: readonly SqlStatementFacts[];
  /** Why each unknown fact is unknown (for the log). */
  readonly unknowns: readonly string[];
  /** Code that ran contains DDL (the catalog changes when the transaction commits). */
  readonly ddl: boolean;
  /** Code stored by routine bodies that ran (pending for the rest of the transaction). */
  readonly definitions: readonly {
    readonly statements: readonly SqlStatementFacts[];
    readonly definition: CodeDefinition;
  }[];
}

const EFFECT_COMMAND: Record<RelationEffect, string> = {
  read: 'SELECT',
  insert: 'INSERT',
  update: 'UPDATE',
  delete: 'DELETE',
  truncate: 'TRUNCATE',
  refresh: 'REFRESH MATERIALIZED VIEW',
  maintain: 'MAINTAIN',
};

const TRIGGER_EVENTS: Partial<Record<RelationEffect, number>> = {
  insert: TRIGGER_INSERT,
  update: TRIGGER_UPDATE,
  delete: TRIGGER_DELETE,
  truncate: TRIGGER_TRUNCATE,
};

/** pg_rewrite.ev_type of rules on each effect. */
const RULE_EVENTS: Partial<Record<RelationEffect, string>> = { update: '2', insert: '3', delete: '4' };

interface Work {
  readonly refs: CodeRefs;
  /** The statements `refs` origins index. */
  readonly statements: readonly SqlStatementFacts[];
  readonly depth: number;
}

interface ParkedCall {
  readonly call: CallRef;
  /** The name called, and the names renamed to it in this transaction. */
  readonly names: readonly string[];
  /** The transaction defined code under one of the names. */
  readonly pendingHit: boolean;
  readonly origin: SqlStatementFacts;
  readonly depth: number;
}

interface ParkedOid {
  readonly oid: number;
  readonly origin: SqlStatementFacts;
  readonly depth: number;
}

/**
 * True when `refs` reach no code at all under `snapshot` (the common statement: tables without triggers, rules,
 * views or defaults calling routines, built-in functions only): the caller needs no resolution.
 */
export function reachesNothing(snapshot: CodeSnapshot, refs: CodeRefs): boolean {
  for (const call of refs.calls) {
    if (snapshot.userNames.has(call.name)) return false;
    if (call.attribute !== true && !snapshot.builtinNames.has(call.name)) return false;
  }
  for (const op of refs.operators) if (snapshot.operators.has(op.name)) return false;
  for (const type of refs.types) if (snapshot.types.has(type.name)) return false;
  for (const rel of refs.relations) {
    if (rel.name === '*') return false;
    for (const r of snapshot.relations.get(rel.name) ?? []) if (r.hasCode) return false;
  }
  return refs.ddl.length === 0 || snapshot.eventTriggerFunctions.length === 0;
}

export async function resolveCode(
  catalog: CodeCatalog,
  statements: readonly SqlStatementFacts[],
  refs: CodeRefs,
  pending: PendingCode,
): Promise<Resolved> {
  const snapshot = await catalog.snapshot();
  const resolution = new Resolution(catalog, snapshot, pending);
  await resolution.run({ refs, statements, depth: 0 });
  resolution.finish();
  return {
    facts: resolution.facts,
    definitions: resolution.definitions,
    unknowns: resolution.unknowns,
    ddl: resolution.ranDdl,
  };
}

class Resolution {
  readonly facts: SqlStatementFacts[] = [];
  readonly unknowns: string[] = [];
  ranDdl = false;
  readonly definitions: { statements: readonly SqlStatementFacts[]; definition: CodeDefinition }[] = [];
  private readonly queue: Work[] = [];
  private parkedCalls: ParkedCall[] = [];
  private parkedOids: ParkedOid[] = [];
  private readonly byName = new Map<string, RoutineRow[]>();
  private readonly byOid = new Map<number, RoutineRow>();
  private readonly code = new Map<number, RoutineCode>();
  private readonly visited = new Set<string>();
  private readonly unknownSeen = new Set<string>();
  private units = 0;
  private opaqueReported = false;
  /** Row effects on other relations (children, foreign keys, views' tables), one fact per origin and command. */
  private readonly effects = new Map<
    SqlStatementFacts,
    Map<string, { unfiltered: boolean; tables: Set<string> }>
  >();

  constructor(
    private readonly catalog: CodeCatalog,
    private readonly snapshot: CodeSnapshot,
    private readonly pending: PendingCode,
  ) {}

  async run(first: Work): Promise<void> {
    this.queue.push(first);
    for (let lookups = 0; ; lookups++) {
      while (this.queue.length > 0) this.process(this.queue.shift()!);
      if (this.parkedCalls.length === 0 && this.parkedOids.length === 0) return;
      const calls = this.parkedCalls;
      const oids = this.parkedOids;
      this.parkedCalls = [];
      this.parkedOids = [];
      if (lookups >= MAX_LOOKUPS) {
        for (const p of [...calls, ...oids]) this.unknown(p.origin, 'code nested too deep to follow');
        return;
      }
      await this.lookUp(calls, oids);
      for (const p of calls) this.resolveCall(p);
      for (const p of oids) {
        const row = this.byOid.get(p.oid);
        if (row === undefined) this.unknown(p.origin, `routine ${p.oid} could not be read`);
        else this.reachRoutine(row, p.origin, p.depth, true);
      }
    }
  }

  /** One round trip for every routine parked so far (and a second for bodies not analysed yet). */
  private async lookUp(calls: readonly ParkedCall[], oids: readonly ParkedOid[]): Promise<void> {
    const names = new Set<string>();
    for (const p of calls) {
      for (const name of p.names) {
        if (this.byName.has(name)) continue;
        for (const exact of this.snapshot.userNames.get(name) ?? [name]) names.add(exact);
      }
    }
    const wanted = oids.map((p) => p.oid).filter((o) => !this.byOid.has(o));
    const rows = await this.catalog.routines([...names], wanted);
    for (const p of calls) for (const name of p.names) if (!this.byName.has(name)) this.byName.set(name, []);
    for (const row of rows) {
      this.byOid.set(row.oid, row);
      const key = row.name.toLowerCase();
      const list = this.byName.get(key);
      if (list === undefined) this.byName.set(key, [row]);
      else if (!list.some((r) => r.oid === row.oid)) list.push(row);
    }
    const needBodies = rows.filter(
      (r) => hasBody(r) && !this.code.has(r.oid) && this.catalog.cachedCode(r) === undefined,
    );
    for (const [oid, code] of await this.catalog.loadCode(needBodies)) this.code.set(oid, code);
  }

  private process(work: Work): void {
    const { refs, statements, depth } = work;
    const origin = (i: number): SqlStatementFacts => statements[i] ?? statements[0]!;
    if (this.pending.opaque !== undefined && !this.opaqueReported && reachesCode(refs)) {
      this.opaqueReported = true;
      this.unknown(origin(0), this.pending.opaque);
    }
    for (const call of refs.calls) {
      const names = this.pending.namesFor(call.name);
      let pendingHit = false;
      for (const name of names)
        pendingHit = this.touchPending(name, origin(call.origin), depth) || pendingHit;
      if (names.some((name) => this.needsLookup(name, call)))
        this.parkedCalls.push({ call, names, pendingHit, origin: origin(call.origin), depth });
    }
    for (const op of refs.operators) {
      this.touchPending(op.name, origin(op.origin), depth);
      for (const fn of this.snapshot.operators.get(op.name) ?? []) this.parkOid(fn, origin(op.origin), depth);
    }
    for (const type of refs.types) {
      for (const name of this.pending.namesFor(type.name)) {
        this.touchPending(name, origin(type.origin), depth);
        for (const fn of this.snapshot.types.get(name) ?? []) this.parkOid(fn, origin(type.origin), depth);
      }
    }
    for (const rel of refs.relations) {
      this.relationByName(rel.name, rel.effect, origin(rel.origin), depth, rel.cascade === true);
    }
    if (depth > 0 && refs.ddl.length > 0) this.ranDdl = true;
    for (const ddl of refs.ddl) {
      for (const d of this.pending.eventTriggers) this.runPending(d, origin(ddl), depth);
      for (const fn of this.snapshot.eventTriggerFunctions) this.parkOid(fn, origin(ddl), depth);
    }
  }

  /** A user routine of that name may be called (or the name is nobody's: then the call is unknown). */
  private needsLookup(name: string, call: CallRef): boolean {
    if (this.snapshot.userNames.has(name)) return true;
    // Attribute notation `row.x` is a column unless a routine of that name exists.
    if (call.argc === 1 && isAttributeCall(call)) return false;
    return !this.snapshot.builtinNames.has(name);
  }

  private resolveCall(p: ParkedCall): void {
    const named = p.names.flatMap((name) => this.byName.get(name) ?? []);
    const candidates = named.filter((r) => fits(r, p.call));
    for (const row of candidates) this.reachRoutine(row, p.origin, p.depth, false);
    if (candidates.length > 0 || isAttributeCall(p.call) || p.pendingHit) return;
    if (p.names.some((name) => this.snapshot.builtinNames.has(name))) return;
    // A routine nobody knows of: maybe created since the snapshot (reload it for the next decision).
    if (named.length === 0) this.catalog.markStale();
    this.unknown(p.origin, `routine ${p.call.name} could not be resolved`, p.call.name);
  }

  private parkOid(oid: number, origin: SqlStatementFacts, depth: number): void {
    if (oid >= FIRST_NORMAL_OID) this.parkedOids.push({ oid, origin, depth });
  }

  private spend(key: string, origin: SqlStatementFacts, depth: number): boolean {
    if (this.visited.has(key)) return false;
    this.visited.add(key);
    if (depth > MAX_CODE_DEPTH) {
      this.unknown(origin, `code nested more than ${MAX_CODE_DEPTH} levels deep`);
      return false;
    }
    if (++this.units > MAX_UNITS) {
      this.unknown(origin, 'more code than the gateway follows for one statement');
      return false;
    }
    return true;
  }

  /** A routine runs: its body's statements, or the name of the server code it is, or unknown. */
  private reachRoutine(row: RoutineRow, origin: SqlStatementFacts, depth: number, implicit: boolean): void {
    if (!this.spend(`routine:${row.oid}`, origin, depth)) return;
    const qualified = `${row.schema}.${row.name}`.toLowerCase();
    // Reached without being named (a trigger, an operator, a default…): name it so `functions:` rules see it.
    if (implicit) this.facts.push(alsoCalls(origin, [qualified]));
    if (row.kind === 'a') {
      for (const fn of row.aggregateFunctions) this.parkOid(fn, origin, depth + 1);
      return;
    }
    if (hasBody(row)) {
      const code = this.code.get(row.oid) ?? this.catalog.cachedCode(row);
      if (code === undefined)
        return this.unknown(origin, `the body of ${qualified} could not be read`, qualified);
      if (code.unknown !== undefined) return this.unknown(origin, `${qualified}: ${code.unknown}`, qualified);
      this.facts.push(...code.facts);
      for (const definition of code.definitions)
        this.definitions.push({ statements: code.statements, definition });
      this.queue.push({ refs: code.refs, statements: code.statements, depth: depth + 1 });
      return;
    }
    if (row.language === 'internal') {
      // A user alias of a built-in: it is that built-in, under the built-in's names too.
      if (row.builtinAliases.length > 0) this.facts.push(alsoCalls(origin, row.builtinAliases));
      for (const alias of row.builtinAliases) {
        for (const e of builtinFunctionEffects(undefined, alias, []))
          this.facts.push(derived(origin, e.command, e.tables ?? [], [alias], e.unfilteredWrite));
      }
      return;
    }
    if (row.language === 'c' && row.inExtension) return;
    this.unknown(
      origin,
      `${qualified} is written in ${row.language}, which the gateway cannot analyse`,
      qualified,
    );
  }

  /** Statements on a relation name: every relation of that name, and what the transaction defined for it. */
  private relationByName(
    name: string,
    effect: RelationEffect,
    origin: SqlStatementFacts,
    depth: number,
    cascade: boolean,
  ): void {
    for (const n of this.pending.namesFor(name)) {
      this.touchPending(n, origin, depth);
      for (const child of this.pending.childrenOfRelation(n)) {
        this.pushEffect(origin, effect, child);
        this.relationByName(child, effect, origin, depth + 1, cascade);
      }
      for (const fk of this.pending.foreignKeysReferencing(n)) {
        const follow = foreignKeyEffects(effect, fk.onDelete, fk.onUpdate, cascade);
        for (const e of follow) {
          this.pushEffect(origin, e, fk.referencing);
          this.relationByName(fk.referencing, e, origin, depth + 1, cascade);
        }
      }
      const relations =
        n === '*'
          ? [...this.snapshot.relationsByOid.values()].filter((r) => r.writeFunctions.length > 0)
          : (this.snapshot.relations.get(n) ?? []);
      for (const rel of relations) this.relation(rel, effect, origin, depth, cascade);
    }
  }

  private relation(
    rel: RelationCode,
    effect: RelationEffect,
    origin: SqlStatementFacts,
    depth: number,
    cascade: boolean,
  ): void {
    if (!rel.hasCode || !this.spend(`relation:${rel.oid}:${effect}`, origin, depth)) return;
    const next = depth + 1;
    // A foreign table acts on the remote relation it names (a loopback server reaches this database's tables).
    if (rel.foreignTable !== undefined && rel.foreignTable !== rel.name.toLowerCase())
      this.pushEffect(origin, effect, rel.foreignTable);
    for (const fn of rel.policyFunctions) this.parkOid(fn, origin, next);
    // A view's query runs whenever the view is used; a materialized view's only when it is refreshed.
    if (rel.view !== undefined && ((rel.kind === 'v' && effect !== 'maintain') || effect === 'refresh'))
      this.runText(rel.view, origin, next, 'the view', rel);
    const events = TRIGGER_EVENTS[effect];
    if (events !== undefined)
      for (const t of rel.triggers) if ((t.events & events) !== 0) this.parkOid(t.fn, origin, next);
    const ruleEvent = RULE_EVENTS[effect];
    for (const rule of rel.rules) if (rule.event === ruleEvent) this.runRule(rule.definition, origin, next);
    if (effect !== 'read' && effect !== 'delete' && effect !== 'truncate')
      for (const fn of rel.writeFunctions) this.parkOid(fn, origin, next);
    if (effect !== 'read' && rel.kind === 'v' && rel.view !== undefined)
      this.writeThroughView(rel, effect, origin, next);
    for (const oid of rel.children) {
      const child = this.snapshot.relationsByOid.get(oid);
      if (child === undefined) continue;
      this.pushEffect(origin, effect, qualifiedName(child));
      this.relation(child, effect, origin, next, cascade);
    }
    for (const fk of rel.referencedBy) {
      const referencing = this.snapshot.relationsByOid.get(fk.relation);
      if (referencing === undefined) continue;
      for (const e of foreignKeyEffects(effect, fk.onDelete, fk.onUpdate, cascade)) {
        this.pushEffect(origin, e, qualifiedName(referencing));
        this.relation(referencing, e, origin, next, cascade);
      }
    }
  }

  /** An automatically updatable view passes the write to the relations it reads. */
  private writeThroughView(
    view: RelationCode,
    effect: RelationEffect,
    origin: SqlStatementFacts,
    depth: number,
  ): void {
    const analysis = this.catalog.analyzeText(view.view ?? '');
    const bases = new Set(analysis.code.refs.relations.filter((r) => r.effect === 'read').map((r) => r.name));
    for (const base of bases) {
      this.pushEffect(origin, effect, base);
      this.relationByName(base, effect, origin, depth, false);
    }
  }

  /** A view's query (or a matview's, refreshed): its statements and what they reach. */
  private runText(
    text: string,
    origin: SqlStatementFacts,
    depth: number,
    what: string,
    rel: RelationCode,
  ): void {
    const analysis = this.catalog.analyzeText(text);
    const problem = analysis.error ?? analysis.refused;
    if (problem !== undefined) return this.unknown(origin, `${what} ${qualifiedName(rel)}: ${problem}`);
    const statements = recordedStatements(analysis);
    this.facts.push(...statements);
    this.queue.push({ refs: analysis.code.refs, statements, depth });
  }

  /** A rule's actions, from its CREATE RULE text. */
  private runRule(definition: string, origin: SqlStatementFacts, depth: number): void {
    const analysis = this.catalog.analyzeText(definition);
    const problem = analysis.error ?? analysis.refused;
    const own = analysis.code.definitions.find((d) => d.from === 1);
    if (problem !== undefined || own === undefined)
      return this.unknown(origin, `a rule could not be analysed: ${problem ?? definition}`);
    const statements = recordedStatements(analysis);
    this.facts.push(...statements.slice(own.from, own.to));
    this.queue.push({ refs: own.refs, statements, depth });
  }

  /** Code the session defined under `name` earlier in this transaction runs; false when there is none. */
  private touchPending(name: string, origin: SqlStatementFacts, depth: number): boolean {
    const definitions = this.pending.definitionsOf(name);
    for (const d of definitions) this.runPending(d, origin, depth);
    return definitions.length > 0;
  }

  private runPending(d: PendingDefinition, origin: SqlStatementFacts, depth: number): void {
    if (!this.spend(`pending:${pendingKey(d)}`, origin, depth)) return;
    this.facts.push(...d.statements.slice(d.from, d.to));
    this.queue.push({ refs: d.refs, statements: d.statements, depth: depth + 1 });
  }

  private pushEffect(origin: SqlStatementFacts, effect: RelationEffect, table: string): void {
    if (effect === 'maintain' || effect === 'refresh') return;
    this.addEffect(origin, EFFECT_COMMAND[effect], table, origin.unfilteredWrite && effect !== 'read');
    if (effect === 'truncate') this.addEffect(origin, 'DELETE', table, true);
  }

  private addEffect(origin: SqlStatementFacts, command: string, table: string, unfiltered: boolean): void {
    let byCommand = this.effects.get(origin);
    if (byCommand === undefined) this.effects.set(origin, (byCommand = new Map()));
    const key = `${command}\u0000${unfiltered}`;
    const entry = byCommand.get(key);
    if (entry === undefined) byCommand.set(key, { unfiltered, tables: new Set([table]) });
    else entry.tables.add(table);
  }

  /** Adds the collected row effects (a table with a thousand partitions is one fact, not a thousand). */
  finish(): void {
    for (const [origin, byCommand] of this.effects) {
      for (const [key, { unfiltered, tables }] of byCommand) {
        const command = key.slice(0, key.indexOf('\u0000'));
        this.facts.push(derived(origin, command, [...tables], [], unfiltered));
      }
    }
    this.effects.clear();
  }

  private unknown(origin: SqlStatementFacts, reason: string, name?: string): void {
    const key = `${name ?? ''}\u0000${reason}`;
    if (this.unknownSeen.has(key)) return;
    this.unknownSeen.add(key);
    this.facts.push(
      Object.freeze({
        command: 'EXECUTE',
        tables: [],
        functions: name === undefined ? [] : [name],
        unfilteredWrite: false,
        text: origin.text,
        ...(origin.recordedText === undefined ? {} : { recordedText: origin.recordedText }),
        dynamic: true,
      }),
    );
    this.unknowns.push(reason);
  }
}

const pendingKeys = new WeakMap<PendingDefinition, number>();
let nextPendingKey = 0;
function pendingKey(d: PendingDefinition): number {
  let key = pendingKeys.get(d);
  if (key === undefined) {
    key = nextPendingKey++;
    pendingKeys.set(d, key);
  }
  return key;
}

/** What a foreign key does to the referencing table when the referenced one is written (confdeltype letters). */
function foreignKeyEffects(
  effect: RelationEffect,
  onDelete: string,
  onUpdate: string,
  cascade: boolean,
): RelationEffect[] {
  if (effect === 'truncate') return cascade ? ['truncate'] : [];
  const action = effect === 'delete' ? onDelete : effect === 'update' ? onUpdate : 'a';
  if (action === 'c') return [effect];
  if (action === 'n' || action === 'd') return ['update'];
  return [];
}

function qualifiedName(rel: RelationCode): string {
  return `${rel.schema}.${rel.name}`.toLowerCase();
}

function hasBody(row: RoutineRow): boolean {
  return (row.kind === 'f' || row.kind === 'p') && (row.language === 'sql' || row.language === 'plpgsql');
}

/** Attribute-notation calls are collected with this arity and no variadic mark (code-collector.ts). */
function isAttributeCall(call: CallRef): boolean {
  return call.attribute === true;
}

/** Could this routine take the call's arguments? Defaults and VARIADIC widen it; unknown counts fit all. */
function fits(row: RoutineRow, call: CallRef): boolean {
  if (call.argc < 0) return true;
  const least = Math.max(0, row.nargs - row.ndefaults - (row.variadic ? 1 : 0));
  if (call.argc < least) return false;
  return call.argc <= row.nargs || row.variadic;
}

function reachesCode(refs: CodeRefs): boolean {
  return (
    refs.calls.length > 0 ||
    refs.operators.length > 0 ||
    refs.types.length > 0 ||
    refs.relations.some((r) => r.effect !== 'read') ||
    refs.ddl.length > 0
  );
}

/** The origin statement again, also calling `functions` (a routine it reaches without naming it). */
function alsoCalls(origin: SqlStatementFacts, functions: readonly string[]): SqlStatementFacts {
  return derived(
    origin,
    origin.command,
    origin.tables,
    [...origin.functions, ...functions],
    origin.unfilteredWrite,
  );
}

function derived(
  origin: SqlStatementFacts,
  command: string,
  tables: readonly string[],
  functions: readonly string[],
  unfilteredWrite = false,
): SqlStatementFacts {
  return Object.freeze({
    command,
    tables,
    functions,
    unfilteredWrite,
    text: origin.text,
    ...(origin.recordedText === undefined ? {} : { recordedText: origin.recordedText }),
    dynamic: false,
  });
}
