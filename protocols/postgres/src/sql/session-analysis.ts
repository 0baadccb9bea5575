/**
 * One client session's analysis: per command, the statements' facts (sql-analyzer.ts, synchronous and cached),
 * the credentials in it replaced in what is recorded (credentials.ts), and the code it reaches through the catalog
 * and through what the session defined earlier in its transaction (code-resolver.ts, one awaited step).
 */
import type { SqlStatementFacts } from '@agentgate/core';
import type { CommandAnalysis } from '../analysis.js';
import type { CodeCatalog, CodeSnapshot } from './code-catalog.js';
import { concatRefs, isEmpty, NO_REFS, shiftRefs, type CodeDefinition, type CodeRefs } from './code-refs.js';
import { reachesNothing, resolveCode } from './code-resolver.js';
import { redactParams, type Secret } from './credentials.js';
import { PendingCode } from './pending-code.js';
import { recordedMessage, recordedTextOf, withRecordedText } from './recorded-text.js';
import { SqlSessionState } from './session-state.js';
import type { SqlAnalyzer } from './sql-analyzer.js';

export type { CommandAnalysis };

export interface SessionAnalysisLog {
  (message: string, fields: Record<string, unknown>): void;
}

export class SqlSessionAnalysis {
  /** What the session PREPAREd at the SQL level. */
  readonly state = new SqlSessionState();
  private readonly pending = new PendingCode();
  /** The exchange after which the session's transaction changed code (the catalog is stale once it ends). */
  private changedAt = -1;
  /**
   * The refs `reachesNothing` last cleared, and under which snapshot: both are immutable, and a statement shape
   * sent again brings the same refs object (the cached analysis'), so the answer holds while the snapshot does.
   */
  private clearedRefs: CodeRefs | undefined;
  private clearedUnder: CodeSnapshot | undefined;

  constructor(
    private readonly analyzer: SqlAnalyzer,
    private readonly catalog: CodeCatalog | undefined,
    private readonly log: SessionAnalysisLog = () => undefined,
  ) {}

  /**
   * The facts of a command made of `texts` (a Query's text, or every text an Execute's portal may run), sent in
   * response group `exchange`, with its Bind `params`.
   */
  analyze(
    texts: readonly string[],
    params: readonly unknown[] | undefined,
    exchange: number,
  ): CommandAnalysis | Promise<CommandAnalysis> {
    const statements: SqlStatementFacts[] = [];
    const definitions: CodeDefinition[] = [];
    const secrets: Secret[] = [];
    const recorded: string[] = [];
    let refs: CodeRefs = NO_REFS;
    let unanalysable: string | undefined;
    let anyRecorded = false;
    let unreadable = false;
    for (const text of texts) {
      const a = this.analyzer.analyze(text, this.state);
      const offset = statements.length;
      const credentials = a.credentials;
      let problem = a.error ?? a.refused;
      if (credentials === undefined) {
        statements.push(...a.statements);
        recorded.push(text);
      } else {
        statements.push(...a.statements.map((s) => withRecordedText(s, credentials)));
        secrets.push(...credentials.secrets);
        unreadable ||= credentials.unreadable;
        const redacted = recordedTextOf(text, credentials);
        anyRecorded ||= redacted !== undefined;
        recorded.push(redacted ?? text);
        if (problem !== undefined) problem = recordedMessage(problem, credentials.secrets);
      }
      refs = concatRefs(refs, shiftRefs(a.code.refs, offset));
      for (const d of a.code.definitions) definitions.push(shiftDefinition(d, offset));
      unanalysable ??= problem;
    }
    const out: { -readonly [K in keyof CommandAnalysis]: CommandAnalysis[K] } = { statements };
    const recordedParams = params === undefined ? undefined : redactParams(params, secrets, unreadable);
    if (recordedParams !== undefined) out.recordedParams = recordedParams;
    // The record says it was redacted whenever anything of the command was, its parameters included.
    if (anyRecorded || recordedParams !== undefined) out.recordedText = recorded.join(';\n');
    const values = secretValues(secrets, params);
    if (values.length > 0) out.secrets = values;
    if (unanalysable !== undefined) {
      out.unanalysable = unanalysable;
      return out; // denied: nothing of it runs
    }
    this.pending.add(definitions, statements, exchange);
    // COMMIT PREPARED makes visible what a prepared transaction changed, maybe another session's DDL.
    if (
      definitions.length > 0 ||
      refs.ddl.length > 0 ||
      statements.some((s) => s.command === 'COMMIT PREPARED')
    )
      this.changedAt = exchange;
    if (this.catalog !== undefined && (!isEmpty(refs) || !this.pending.empty)) {
      const snapshot = this.pending.empty ? this.catalog.freshSnapshot() : undefined;
      if (snapshot === undefined || !this.reachesNothing(snapshot, refs))
        return this.withReachedCode(out, statements, refs, exchange);
    }
    // Nothing to look up (the usual case): answered without a promise, so the relay awaits nothing for it.
    return this.afterDynamicSql(out, exchange);
  }

  private reachesNothing(snapshot: CodeSnapshot, refs: CodeRefs): boolean {
    if (refs === this.clearedRefs && snapshot === this.clearedUnder) return true;
    if (!reachesNothing(snapshot, refs)) return false;
    this.clearedRefs = refs;
    this.clearedUnder = snapshot;
    return true;
  }

  /** `out` with the code its statements reach, read through the catalog. */
  private async withReachedCode(
    out: { -readonly [K in keyof CommandAnalysis]: CommandAnalysis[K] },
    statements: readonly SqlStatementFacts[],
    refs: CodeRefs,
    exchange: number,
  ): Promise<CommandAnalysis> {
    out.statements = [...statements, ...(await this.resolve(statements, refs, exchange))];
    return this.afterDynamicSql(out, exchange);
  }

  private afterDynamicSql(out: CommandAnalysis, exchange: number): CommandAnalysis {
    if (out.statements.some((s) => s.dynamic)) {
      // Dynamic SQL may have created or replaced code the gateway did not see.
      this.pending.markOpaque('dynamic SQL ran earlier in this transaction', exchange);
      this.changedAt = exchange;
    }
    return out;
  }

  private async resolve(
    statements: readonly SqlStatementFacts[],
    refs: CodeRefs,
    exchange: number,
  ): Promise<readonly SqlStatementFacts[]> {
    try {
      const resolved = await resolveCode(this.catalog!, statements, refs, this.pending);
      for (const { statements: s, definition } of resolved.definitions)
        this.pending.add([definition], s, exchange);
      if (resolved.definitions.length > 0 || resolved.ddl) this.changedAt = exchange;
      if (resolved.unknowns.length > 0)
        this.log('statement reaches code that cannot be analysed', { reasons: resolved.unknowns });
      return resolved.facts;
    } catch (err) {
      this.log('the catalog could not be read: the statement counts as unknown', {
        err: err instanceof Error ? err.message : String(err),
      });
      const origin = statements[0];
      return [
        Object.freeze({
          command: 'EXECUTE',
          tables: [],
          functions: [],
          unfilteredWrite: false,
          text: origin?.text ?? '',
          ...(origin?.recordedText === undefined ? {} : { recordedText: origin.recordedText }),
          dynamic: true,
        }),
      ];
    }
  }

  /** The server reported ReadyForQuery idle after response group `exchange`. */
  transactionEnded(exchange: number): void {
    this.pending.transactionEnded(exchange);
    if (this.changedAt >= 0 && exchange >= this.changedAt) {
      this.changedAt = -1;
      this.catalog?.markStale();
    }
  }

  /** The session ended: what it changed may have committed. */
  close(): void {
    if (this.changedAt >= 0) this.catalog?.markStale();
  }
}

const NO_VALUES: readonly string[] = Object.freeze([]);

/** The strings a result may echo: literal secrets, connection-string passwords, secret parameters' values. */
function secretValues(secrets: readonly Secret[], params: readonly unknown[] | undefined): readonly string[] {
  if (secrets.length === 0) return NO_VALUES; // most commands: nothing to collect, nothing to allocate
  const out = new Set<string>();
  for (const s of secrets) {
    if (s.kind === 'literal') out.add(s.value);
    else if (s.kind === 'conninfo') for (const p of s.passwords) out.add(p);
    else {
      const value = params?.[s.number - 1];
      if (typeof value === 'string') out.add(value);
    }
  }
  return [...out].filter((v) => v.length > 0);
}

function shiftDefinition(d: CodeDefinition, offset: number): CodeDefinition {
  if (offset === 0) return d;
  return { ...d, from: d.from + offset, to: d.to + offset, refs: shiftRefs(d.refs, offset) };
}
