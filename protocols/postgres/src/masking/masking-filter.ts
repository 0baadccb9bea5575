/**
 * The postgres ResultFilter for sessions with an active masker.
 *
 * - `prepare()` (awaited once before the session's first ReadyForQuery) loads the upstream's masking catalog.
 * - `checkStatement(text)` (before each allowed Query / Execute is forwarded) plans lineage masks or refuses;
 *   the engine keeps the returned plan with that command and hands it back in `ctx.plan` for its messages.
 * - `filter()` masks DataRow values (by source column, by plan position, by detectors), COPY rows, error and notice
 *   texts, NOTIFY payloads and ParameterStatus values.
 */
import type { SessionMasker, ValueMasker } from '@agentgate/core';
import type { FieldDescription } from '../codec/decode.js';
import { bindFormatOf, decodeRowDescription, readCString } from '../codec/decode.js';
import { parseSql } from '../sql/pg-parser.js';
import {
  FIRST_NORMAL_OID,
  type CatalogRelation,
  type CatalogSnapshot,
  type ColumnCatalog,
} from './column-catalog.js';
import { LineageAnalyzer, type OutputColumn } from './lineage.js';
import { compileRowPlan, maskDataRow, type RowPlan } from './row-masker.js';
import { EMPTY_PLAN, planStatements, type PlanResult, type StatementPlan } from './statement-plan.js';
import { TextScrubber } from './text-scrubber.js';
import { maskCopyRow } from './copy-masker.js';
import { BackendMessage } from '../codec/message-types.js';

export type StatementCheck = { readonly refusal: string } | { readonly plan: StatementPlan };

export interface MaskingFilterContext {
  readonly fields: readonly FieldDescription[] | null;
  /** Bind's result format codes: which values are binary when `fields` is unknown (the client sent no Describe). */
  readonly bindFormats?: readonly number[];
  /** What `checkStatement` returned for the command these messages answer. */
  readonly plan?: unknown;
}

const MAX_CACHED_PLANS = 500;
const NO_FORMATS: readonly number[] = [];
const UNRESOLVED_REPLACEMENT = '****';

/** Masks every value of a column whose source relation the catalog does not know yet (fail closed). */
const unresolvedMasker: ValueMasker = {
  mask: (value) => (value === UNRESOLVED_REPLACEMENT ? value : UNRESOLVED_REPLACEMENT),
};

export class MaskingResultFilter {
  readonly active = true;
  private readonly scrubber: TextScrubber;
  private readonly columnRules: boolean;
  private readonly plans = new Map<string, { snapshot: CatalogSnapshot; result: PlanResult }>();
  private viewCache = new WeakMap<CatalogRelation, OutputColumn[] | null>();
  private viewCacheSnapshot: CatalogSnapshot | undefined;
  // One-entry cache of the row plan: results of one shape come in long runs.
  private lastFields: readonly FieldDescription[] | null = null;
  private lastPlan: StatementPlan | undefined;
  private lastRowPlan: RowPlan | undefined;
  private lastSnapshot: CatalogSnapshot | undefined;
  private readonly remember = (value: string): void => this.scrubber.remember(value);

  constructor(
    private readonly masker: SessionMasker,
    private readonly catalog: ColumnCatalog,
  ) {
    this.columnRules = masker.coversColumn({ schema: '*', table: '*', column: '*' });
    this.scrubber = new TextScrubber(masker.detectors, () => this.catalog.snapshot?.identifiers ?? new Set());
  }

  async prepare(): Promise<void> {
    if (this.columnRules) await this.catalog.ensureFresh();
  }

  checkStatement(text: string): StatementCheck | Promise<StatementCheck> {
    if (!this.columnRules) return { plan: EMPTY_PLAN };
    const snapshot = this.catalog.snapshot;
    if (!snapshot || this.catalog.isStale)
      return this.catalog.ensureFresh().then((fresh) => this.decide(text, fresh));
    const result = this.plan(text, snapshot);
    const unknown = result.relations.filter((name) => !snapshot.byName.has(name));
    if (unknown.length > 0) {
      // A relation created since the catalog was loaded (or a CTE / missing name: then the reload is rate-limited).
      return this.catalog.ensureFresh(unknown).then((fresh) => this.decide(text, fresh));
    }
    return this.finish(result);
  }

  private decide(text: string, snapshot: CatalogSnapshot): StatementCheck {
    return this.finish(this.plan(text, snapshot));
  }

  /** DDL changes the catalog: reload before the next statement (which the client sends after this one ran). */
  private finish(result: PlanResult): StatementCheck {
    if (result.ddl && result.refusal === undefined) this.catalog.markStale();
    return result.refusal !== undefined ? { refusal: result.refusal } : { plan: result.plan };
  }

  private plan(text: string, snapshot: CatalogSnapshot): PlanResult {
    const cached = this.plans.get(text);
    if (cached && cached.snapshot === snapshot) return cached.result;
    if (this.viewCacheSnapshot !== snapshot) {
      this.viewCache = new WeakMap();
      this.viewCacheSnapshot = snapshot;
    }
    let result: PlanResult;
    try {
      result = planStatements(text, this.masker, snapshot, parseSql as never, this.viewCache);
    } catch (err) {
      // The gate already refused texts the parser rejects; anything else here fails closed.
      result = {
        plan: EMPTY_PLAN,
        ddl: false,
        relations: [],
        refusal: `agentgate: statement could not be checked for masked columns: ${(err as Error).message}`,
      };
    }
    if (this.plans.size >= MAX_CACHED_PLANS) this.plans.clear();
    this.plans.set(text, { snapshot, result });
    return result;
  }

  filter(type: number, message: Buffer, ctx: MaskingFilterContext): Buffer {
    const plan = Array.isArray(ctx.plan)
      ? mergedPlan(ctx.plan as StatementPlan[])
      : (ctx.plan as StatementPlan | undefined);
    switch (type) {
      case BackendMessage.DataRow:
        return maskDataRow(
          message,
          this.rowPlanFor(ctx.fields, plan, message, ctx.bindFormats ?? NO_FORMATS),
          this.remember,
        );
      case BackendMessage.RowDescription: // no values; compile the plan for the rows that follow
        this.rowPlanFor(decodeRowDescription(message, 0, message.length), plan, message, NO_FORMATS);
        return message;
      case BackendMessage.CopyData: // COPY TO STDOUT
        return maskCopyRow(
          message,
          plan?.copy ?? null,
          plan?.width ?? 0,
          this.masker.detectors,
          this.remember,
        );
      case BackendMessage.ErrorResponse:
      case BackendMessage.NoticeResponse:
        return this.scrubFields(message, plan?.touchesMasked === true || plan === undefined);
      case BackendMessage.NotificationResponse: // Int32 pid, channel, payload
        return this.scrubStrings(message, 9, 2, 1, 'A');
      case BackendMessage.ParameterStatus: // name, value
        return this.scrubStrings(message, 5, 2, 1, 'S');
      default:
        return message;
    }
  }

  private rowPlanFor(
    fields: readonly FieldDescription[] | null,
    plan: StatementPlan | undefined,
    message: Buffer,
    bindFormats: readonly number[],
  ): RowPlan {
    const snapshot = this.catalog.snapshot;
    // RowDescriptions are shared while equal (row-descriptions.ts): the catalog in force is part of the key.
    if (
      fields === this.lastFields &&
      plan === this.lastPlan &&
      snapshot === this.lastSnapshot &&
      this.lastRowPlan &&
      fields !== null
    )
      return this.lastRowPlan;
    const count = fields?.length ?? message.readInt16BE(5);
    let positional = plan?.positional ?? null;
    if (positional && plan!.width !== count) {
      // Not the shape the lineage was planned for: mask every column rather than guess which one is derived.
      const masker = positional.values().next().value!;
      positional = new Map(Array.from({ length: count }, (_, i) => [i, masker] as const));
    }
    const rowPlan = compileRowPlan(
      count,
      // Without a RowDescription a binary value's type is unknown, so a masked one goes out as NULL.
      (i) => fields?.[i]?.format ?? bindFormatOf(bindFormats, i),
      (i) => fields?.[i]?.typeOid ?? 0,
      (i) => {
        const field = fields?.[i];
        const m = positional?.get(i) ?? (field ? this.sourceMasker(field, snapshot) : undefined);
        // A json / jsonb value stays valid JSON: the replacement is sent as a JSON string.
        return m && field && field.format === 0 && JSON_TYPES.has(field.typeOid) ? jsonMasker(m) : m;
      },
      this.masker.detectors,
    );
    if (fields !== null) {
      this.lastFields = fields;
      this.lastPlan = plan;
      this.lastSnapshot = snapshot;
      this.lastRowPlan = rowPlan;
    }
    return rowPlan;
  }

  /** The masker for a RowDescription field's source column (tableOid, attnum), views resolved through lineage. */
  private sourceMasker(
    field: FieldDescription,
    snapshot: CatalogSnapshot | undefined,
  ): ValueMasker | undefined {
    if (!this.columnRules || field.tableOid === 0 || field.tableOid < FIRST_NORMAL_OID) return undefined;
    const rel = snapshot?.byOid.get(field.tableOid);
    if (!rel) {
      // Created since the catalog was loaded: mask until it is known (the next statement reloads).
      this.catalog.markStale();
      return unresolvedMasker;
    }
    const column = rel.columns.get(field.columnAttnum);
    if (column === undefined) {
      // System columns (ctid, xmin: attnum < 0) are never masked. A user column the snapshot does not know was
      // added since it was loaded, by DDL that did not pass this session (a migration, another client): its name
      // is unknown, so it is masked until the next statement reloads the catalog.
      if (field.columnAttnum <= 0) return undefined;
      this.catalog.markStale();
      return unresolvedMasker;
    }
    if (rel.viewDefinition === undefined) {
      return this.masker.forColumn({
        schema: rel.schema.toLowerCase(),
        table: rel.name.toLowerCase(),
        column: column.toLowerCase(),
      });
    }
    if (this.viewCacheSnapshot !== snapshot) {
      this.viewCache = new WeakMap();
      this.viewCacheSnapshot = snapshot;
    }
    const analyzer = new LineageAnalyzer(snapshot!, parseSql as never, this.viewCache);
    const columns = analyzer.relationColumns(rel);
    const deps = columns?.find((c) => c.name === column)?.deps;
    if (!deps) return unresolvedMasker;
    for (const source of deps.values()) {
      const m = this.masker.forColumn(source);
      if (m) return m;
    }
    return undefined;
  }

  /** ErrorResponse / NoticeResponse: scrub the human-readable fields (M message, D detail, H hint, W where). */
  private scrubFields(message: Buffer, hard: boolean): Buffer {
    let offset = 5;
    let changed = false;
    const parts: { code: number; value: string }[] = [];
    while (offset < message.length && message[offset] !== 0) {
      const code = message[offset]!;
      const [value, next] = readCString(message, offset + 1, message.length);
      offset = next;
      let out = value;
      if (code === 0x4d || code === 0x44 || code === 0x48 || code === 0x57 || code === 0x71) {
        if (!hard || !this.columnRules) out = this.scrubber.scrub(value);
        else if (code === 0x44 || code === 0x71) out = this.scrubber.scrubDetail(value);
        else out = this.scrubber.scrubHard(value);
      }
      if (out !== value) changed = true;
      parts.push({ code, value: out });
    }
    if (!changed) return message;
    const body = Buffer.concat([
      ...parts.flatMap((p) => [Buffer.from([p.code]), Buffer.from(p.value + '\0', 'utf8')]),
      Buffer.from([0]),
    ]);
    return frame(message[0]!, body);
  }

  /** Scrub the last `scrubCount` of `total` C strings starting at `start`. */
  private scrubStrings(
    message: Buffer,
    start: number,
    total: number,
    scrubCount: number,
    type: string,
  ): Buffer {
    const values: string[] = [];
    let offset = start;
    for (let i = 0; i < total; i++) {
      const [value, next] = readCString(message, offset, message.length);
      values.push(value);
      offset = next;
    }
    let changed = false;
    const out = values.map((v, i) => {
      if (i < total - scrubCount) return v;
      const s = this.scrubber.scrub(v);
      if (s !== v) changed = true;
      return s;
    });
    if (!changed) return message;
    const head = message.subarray(5, start);
    return frame(type.charCodeAt(0), Buffer.concat([head, ...out.map((v) => Buffer.from(v + '\0', 'utf8'))]));
  }
}

const JSON_TYPES = new Set([114, 3802]);

const merged = new WeakMap<readonly StatementPlan[], StatementPlan>();

/**
 * A command whose text is ambiguous (a named statement the client tried to redefine: the engine cannot know which
 * text the server kept) carries one plan per candidate text: mask the union of their positions, and everything
 * when their widths differ.
 */
export function mergedPlan(plans: readonly StatementPlan[]): StatementPlan {
  if (plans.length === 1) return plans[0]!;
  let plan = merged.get(plans);
  if (plan) return plan;
  const union = (
    pick: (p: StatementPlan) => ReadonlyMap<number, ValueMasker> | null,
  ): Map<number, ValueMasker> | null => {
    let out: Map<number, ValueMasker> | null = null;
    for (const p of plans) for (const [i, m] of pick(p) ?? []) if (!(out ??= new Map()).has(i)) out.set(i, m);
    return out;
  };
  const widths = new Set(plans.filter((p) => p.positional || p.copy).map((p) => p.width));
  plan = {
    positional: union((p) => p.positional),
    copy: union((p) => p.copy),
    width: widths.size <= 1 ? ([...widths][0] ?? 0) : -1,
    touchesMasked: plans.some((p) => p.touchesMasked),
  };
  merged.set(plans, plan);
  return plan;
}

function jsonMasker(inner: ValueMasker): ValueMasker {
  return {
    mask(value: string): string {
      const masked = inner.mask(value);
      return masked === value ? value : JSON.stringify(masked);
    },
  };
}

function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
