/**
 * Code a session defined in its open transaction. The catalog connection cannot see it before the transaction
 * commits, but the session's own later statements run it: `BEGIN; CREATE FUNCTION f() … DELETE …; SELECT f();`.
 * So each definition is kept under the names it defines, alters or renames, and a later statement of the same
 * transaction that names one of them carries that code as if it ran. Kept until the server reports the
 * transaction over (ReadyForQuery idle after the last exchange that defined something); by then the catalog
 * shows what was committed.
 */
import type { SqlStatementFacts } from '@agentgate/core';
import type { CodeDefinition, CodeRefs, ForeignKeyLink } from './code-refs.js';

export interface PendingDefinition {
  /** The analysis' statements that `refs` index; the stored code is `statements[from, to)`. */
  readonly statements: readonly SqlStatementFacts[];
  readonly from: number;
  readonly to: number;
  readonly refs: CodeRefs;
}

export class PendingCode {
  private readonly bySubject = new Map<string, PendingDefinition[]>();
  /** New name → the names it was renamed from. */
  private readonly renamedFrom = new Map<string, Set<string>>();
  private readonly childrenOf = new Map<string, Set<string>>();
  private readonly foreignKeysTo = new Map<string, ForeignKeyLink[]>();
  private readonly eventTriggerCode: PendingDefinition[] = [];
  private opaqueReason: string | undefined;
  private count = 0;
  /** The exchange (response group) of the latest definition: pending until a transaction end after it. */
  private lastExchange = -1;

  get empty(): boolean {
    return this.count === 0 && this.opaqueReason === undefined;
  }

  get opaque(): string | undefined {
    return this.opaqueReason;
  }

  add(
    definitions: readonly CodeDefinition[],
    statements: readonly SqlStatementFacts[],
    exchange: number,
  ): void {
    for (const d of definitions) {
      this.count++;
      this.lastExchange = Math.max(this.lastExchange, exchange);
      const pending: PendingDefinition = { statements, from: d.from, to: d.to, refs: d.refs };
      for (const subject of d.subjects) {
        const list = this.bySubject.get(subject);
        if (list === undefined) this.bySubject.set(subject, [pending]);
        else list.push(pending);
      }
      for (const { from, to } of d.renames ?? []) addTo(this.renamedFrom, to, from);
      for (const { parent, child } of d.children ?? []) addTo(this.childrenOf, parent, child);
      for (const fk of d.foreignKeys ?? []) {
        const list = this.foreignKeysTo.get(fk.referenced);
        if (list === undefined) this.foreignKeysTo.set(fk.referenced, [fk]);
        else list.push(fk);
      }
      if (d.eventTrigger === true) this.eventTriggerCode.push(pending);
      if (d.opaque !== undefined) this.opaqueReason ??= d.opaque;
    }
  }

  /** Code the gateway cannot follow ran in this transaction (dynamic SQL, an extension script). */
  markOpaque(reason: string, exchange: number): void {
    this.opaqueReason ??= reason;
    this.lastExchange = Math.max(this.lastExchange, exchange);
  }

  definitionsOf(name: string): readonly PendingDefinition[] {
    return this.bySubject.get(name) ?? [];
  }

  /** `name` and every name renamed to it in this transaction (transitively). */
  namesFor(name: string): string[] {
    const out = [name];
    for (let i = 0; i < out.length && i < 64; i++) {
      for (const from of this.renamedFrom.get(out[i]!) ?? []) if (!out.includes(from)) out.push(from);
    }
    return out;
  }

  childrenOfRelation(name: string): readonly string[] {
    return [...(this.childrenOf.get(name) ?? [])];
  }

  foreignKeysReferencing(name: string): readonly ForeignKeyLink[] {
    return this.foreignKeysTo.get(name) ?? [];
  }

  get eventTriggers(): readonly PendingDefinition[] {
    return this.eventTriggerCode;
  }

  /** The server reported the transaction over after `exchange`: forget what was defined up to it. */
  transactionEnded(exchange: number): boolean {
    if (this.empty || exchange < this.lastExchange) return false;
    this.bySubject.clear();
    this.renamedFrom.clear();
    this.childrenOf.clear();
    this.foreignKeysTo.clear();
    this.eventTriggerCode.length = 0;
    this.opaqueReason = undefined;
    this.count = 0;
    return true;
  }
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set === undefined) map.set(key, new Set([value]));
  else set.add(value);
}
