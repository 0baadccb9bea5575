import type { SqlStatementFacts } from '@agentgate/core';
import { concatRefs, shiftRefs, type CodeRefs } from './code-refs.js';

/** A prepared body: its statements' facts and the code they reach (origins index `facts`). */
export interface PreparedBody {
  readonly facts: readonly SqlStatementFacts[];
  readonly refs: CodeRefs;
}

/**
 * What one client session has PREPAREd at the SQL level (`PREPARE name AS …`), so that a later `EXECUTE name`
 * is judged by the prepared body's facts. Names are folded like identifiers by the parser already.
 *
 * The state is updated when a statement is analysed, before the server runs it, so it may know a name the server
 * refused. It only ever errs towards knowing more: a second PREPARE under a live name is kept as a union with the
 * first (the server rejects the duplicate and keeps the first body, so forgetting it would let
 * `EXECUTE name` pass as the harmless second body), and an unknown name is unanalysable, so a DEALLOCATE that the
 * server did not run can only cause a refusal, never a pass.
 */
export class SqlSessionState {
  private readonly prepared = new Map<string, PreparedBody>();

  /** What `EXECUTE name` will run, or undefined when this session has not prepared `name`. */
  lookup(name: string): PreparedBody | undefined {
    return this.prepared.get(name);
  }

  remember(name: string, body: PreparedBody): void {
    const known = this.prepared.get(name);
    this.prepared.set(
      name,
      known === undefined
        ? body
        : {
            facts: [...known.facts, ...body.facts],
            refs: concatRefs(known.refs, shiftRefs(body.refs, known.facts.length)),
          },
    );
  }

  /** `DEALLOCATE name`, or `DEALLOCATE ALL` / `DISCARD ALL` when name is null. */
  forget(name: string | null): void {
    if (name === null) this.prepared.clear();
    else this.prepared.delete(name);
  }

  get size(): number {
    return this.prepared.size;
  }
}
