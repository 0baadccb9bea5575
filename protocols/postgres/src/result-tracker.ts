/**
 * Follows one command's results (a Query message: possibly several statements; an Execute; a FunctionCall) and
 * builds a `result` body per finished statement: what the client received, rows capped at `recordRows`.
 */
import type { ProtocolMetrics, SqlResultBody } from '@agentgate/core';
import { bindFormatOf, decodeDataRow, rowCountOfTag, type FieldDescription } from './codec/decode.js';
import type { RowDescription } from './row-descriptions.js';

export class ResultTracker {
  private description: RowDescription | null = null;
  private rows: unknown[][] = [];
  private rowsOmitted = 0;
  private started: number;

  constructor(
    private readonly commandSeq: number | undefined,
    private readonly recordRows: number,
    /** Result-column format codes from Bind (extended protocol), used when no RowDescription was seen. */
    private readonly resultFormats: readonly number[] = [],
    /** Credential values the command carried: recorded rows and errors echoing them are recorded without them. */
    private readonly secrets: readonly string[] = [],
  ) {
    this.started = performance.now();
  }

  setRowDescription(description: RowDescription): void {
    this.description = description;
  }

  /** Adopt a RowDescription seen in answer to a Describe earlier in the pipeline. */
  adoptRowDescription(description: RowDescription | null): void {
    if (this.description === null) this.description = description;
  }

  get currentFields(): readonly FieldDescription[] | null {
    return this.description?.fields ?? null;
  }

  /** Bind's result format codes, which say which columns are binary when no RowDescription was seen. */
  get bindFormats(): readonly number[] {
    return this.resultFormats;
  }

  dataRow(buf: Buffer, start: number): void {
    if (this.rows.length >= this.recordRows) {
      this.rowsOmitted++;
      return;
    }
    this.rows.push(decodeDataRow(buf, start, this.isBinary));
  }

  private readonly isBinary = (column: number): boolean => {
    const field = this.description?.fields[column];
    if (field) return field.format === 1;
    return bindFormatOf(this.resultFormats, column) === 1;
  };

  private scrub(value: unknown): unknown {
    if (typeof value !== 'string') return value;
    let out = value;
    for (const secret of this.secrets) out = out.split(secret).join('[REDACTED]');
    return out;
  }

  /**
   * A statement finished (CommandComplete, EmptyQueryResponse, PortalSuspended, FunctionCallResponse or an error):
   * its `result` body, to be appended once the client has its answer (relay.ts). The tracker then follows the next
   * statement of a multi-statement Query.
   */
  complete(
    metrics: ProtocolMetrics,
    listener: string,
    outcome: { commandTag?: string; suspended?: boolean; error?: { code: string; message: string } },
  ): SqlResultBody {
    const now = performance.now();
    const durationMs = now - this.started;
    metrics.commandCompleted(listener, 'postgres', durationMs / 1000);
    const body: { -readonly [K in keyof SqlResultBody]: SqlResultBody[K] } = {
      commandSeq: this.commandSeq ?? null,
      rowDescription: this.description?.recorded ?? null,
      rows: this.secrets.length === 0 ? this.rows : this.rows.map((row) => row.map((v) => this.scrub(v))),
      rowsOmitted: this.rowsOmitted,
      commandTag: outcome.commandTag ?? null,
      rowCount:
        outcome.commandTag === undefined
          ? this.rows.length + this.rowsOmitted
          : (rowCountOfTag(outcome.commandTag) ?? 0),
      durationMs: Math.round(durationMs * 1000) / 1000,
    };
    if (outcome.suspended) body.suspended = true;
    if (outcome.error)
      body.error =
        this.secrets.length === 0
          ? outcome.error
          : { code: outcome.error.code, message: this.scrub(outcome.error.message) as string };
    // The next statement of a multi-statement Query starts now, with its own RowDescription.
    this.description = null;
    this.rows = [];
    this.rowsOmitted = 0;
    this.started = now;
    return body;
  }
}
