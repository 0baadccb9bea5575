/**
 * The upstream's answers, followed per response group — everything up to one ReadyForQuery (a Query, a Sync or a
 * FunctionCall closes a group) — to record each command's result and to put the gateway's own errors where the
 * server would have put them.
 *
 * A denied command is replaced upstream by a stand-in that fails to parse (DENIED_PROBE_SQL), so the server treats
 * the transaction as after any error: an explicit block is aborted, an implicit one (a pipeline up to Sync) rolled
 * back, and nothing forwarded before the denied command commits behind the client's back. The stand-in's error is
 * replaced by the gateway's ErrorResponse — after the answers to everything forwarded earlier, exactly where the
 * server would have reported an error (PostgreSQL docs "Extended Query": after an error the server discards
 * messages until Sync).
 */
import { decodeCommandTag, decodeErrorFields, decodeParameterStatus } from './codec/decode.js';
import { encodeParse, encodeQuery } from './codec/encode.js';
import { BackendMessage } from './codec/message-types.js';
import type { ResultFilter } from './result-filter.js';
import { ResultTracker } from './result-tracker.js';
import { RowDescriptions, type RowDescription } from './row-descriptions.js';

/**
 * Sent upstream in place of a denied command: it cannot parse, so it runs nothing, and the server's log shows why
 * (`syntax error at or near "agentgate"`, with this statement). In the extended protocol it is a Parse of a named
 * statement, which a failed parse never creates: the client's unnamed statement is left alone.
 */
const DENIED_PROBE_SQL = 'agentgate: denied by the gateway';
export const DENIED_PROBE_QUERY = encodeQuery(DENIED_PROBE_SQL);
export const DENIED_PROBE_PARSE = encodeParse('agentgate_denied', DENIED_PROBE_SQL);

/** The stand-in's error: a syntax error (42601) at its first word, which the server names in any language. */
function isProbeError(buf: Buffer, start: number, end: number): boolean {
  const fields = decodeErrorFields(buf, start, end);
  return fields.get('C') === '42601' && (fields.get('M') ?? '').includes('agentgate');
}

/** One forwarded command (or the stand-in of a denied one) whose answers the group expects, in order. */
export interface ResponseEntry {
  readonly tracker: ResultTracker;
  /** A simple Query: several statements, one CommandComplete each. */
  readonly multiStatement: boolean;
  /** The masking filter's plan for the command's results. */
  readonly plan?: unknown;
  /** The failing stand-in for a denied command: its ErrorResponse is replaced by the gateway's. */
  readonly probe?: true;
}

export interface ResponseGroup {
  readonly id: number;
  readonly entries: ResponseEntry[];
  index: number;
  /** The gateway's ErrorResponse for the group's denied command, sent in place of its stand-in's error. */
  injectError: Buffer | null;
  /** RowDescription from a Describe, for the Execute that follows. */
  described: RowDescription | null;
  /** The upstream already reported an error in this group: the server skipped the rest, so no second error. */
  upstreamError: boolean;
}

export type ResultOutcome = Parameters<ResultTracker['complete']>[2];

/** What the groups need of the session around them. */
export interface ResponseSink {
  /** The masking filter in force (read per region: a reload swaps it between groups). */
  readonly filter: ResultFilter;
  writeClient(buf: Buffer): void;
  /** A command's result is complete: record it. */
  finished(tracker: ResultTracker, outcome: ResultOutcome): void;
  /** COPY TO STDOUT data, for the record. */
  copyOut(data: Buffer): void;
  /** ReadyForQuery closed group `groupId`; `status` is its transaction status. */
  readyForQuery(status: number, groupId: number): void;
  /** The server reported a changed setting. */
  parameterChanged(name: string, value: string): void;
}

/** RowDescription, DataRow, CopyData, ErrorResponse, NoticeResponse, NotificationResponse, ParameterStatus. */
const FILTERED_TYPES: ReadonlySet<number> = new Set([
  BackendMessage.RowDescription,
  BackendMessage.DataRow,
  BackendMessage.CopyData,
  BackendMessage.ErrorResponse,
  BackendMessage.NoticeResponse,
  BackendMessage.NotificationResponse,
  BackendMessage.ParameterStatus,
]);

export class ResponseGroups {
  /** Closed groups, oldest first, whose ReadyForQuery has not come yet. */
  private readonly awaiting: ResponseGroup[] = [];
  private groupIds = 0;
  /** The group the client's messages go into until a Query, Sync or FunctionCall closes it. */
  private current: ResponseGroup = this.newGroup();
  private readonly rowDescriptions = new RowDescriptions();

  constructor(private readonly sink: ResponseSink) {}

  get currentId(): number {
    return this.current.id;
  }

  /** Nothing forwarded is still to be answered: no closed group waits, no command in the open one. */
  get idle(): boolean {
    return this.awaiting.length === 0 && this.current.entries.length === 0;
  }

  /** Closed groups still waiting for their ReadyForQuery. */
  get pendingGroups(): number {
    return this.awaiting.length;
  }

  /** A forwarded command whose answers come next in the open group. */
  expect(entry: ResponseEntry): void {
    this.current.entries.push(entry);
  }

  /**
   * A denied command: its stand-in is expected where the command stood, and `error` (the gateway's refusal) is
   * sent in place of the stand-in's. The caller sends the stand-in upstream.
   */
  expectDenial(error: Buffer): void {
    if (this.current.injectError === null) this.current.injectError = error;
    this.current.entries.push({
      tracker: new ResultTracker(undefined, 0),
      multiStatement: false,
      probe: true,
    });
  }

  close(): void {
    this.awaiting.push(this.current);
    this.current = this.newGroup();
  }

  /**
   * Scans the complete messages of `region` in place; forwards it with as few writes as possible (split only where
   * a message is rewritten or a gateway message is inserted).
   */
  relay(region: Buffer): void {
    const { sink } = this;
    const filter = sink.filter;
    let pending = 0; // start of bytes not yet written
    let offset = 0;
    while (offset < region.length) {
      const type = region[offset]!;
      const end = offset + 1 + region.readInt32BE(offset + 1);
      const group = this.awaiting[0] ?? this.current;
      const entry = group.entries[group.index];
      if (type === BackendMessage.ErrorResponse && entry?.probe && isProbeError(region, offset, end)) {
        // The stand-in's error, where the denied command stood: the client gets the gateway's. (An error of the
        // client's own, e.g. a Parse failing between an answered Execute and the denied one, is relayed as it is:
        // the server then skipped the stand-in, as it would have skipped the denied command.)
        if (offset > pending) sink.writeClient(region.subarray(pending, offset));
        if (group.injectError !== null) sink.writeClient(group.injectError);
        group.injectError = null;
        pending = end;
        group.index++;
        offset = end;
        continue;
      }
      if (filter.active && FILTERED_TYPES.has(type)) {
        const original = region.subarray(offset, end);
        const out = filter.filter(type, original, {
          fields: entry?.tracker.currentFields ?? group.described?.fields ?? null,
          ...(entry === undefined ? {} : { bindFormats: entry.tracker.bindFormats }),
          plan: entry?.plan,
        });
        if (out !== original) {
          if (offset > pending) sink.writeClient(region.subarray(pending, offset));
          sink.writeClient(out);
          pending = end;
          this.observe(type, out, 0, out.length, group);
          offset = end;
          continue;
        }
      }
      if (type === BackendMessage.ReadyForQuery && group.injectError !== null && !group.upstreamError) {
        // A group whose stand-in never answered (not expected; a safety net): the gateway's error still goes first.
        if (offset > pending) sink.writeClient(region.subarray(pending, offset));
        sink.writeClient(group.injectError);
        pending = offset;
      }
      this.observe(type, region, offset, end, group);
      offset = end;
    }
    if (pending < region.length) sink.writeClient(pending === 0 ? region : region.subarray(pending));
  }

  /** Bookkeeping for one upstream message: results, transaction status, groups. */
  private observe(type: number, buf: Buffer, start: number, end: number, group: ResponseGroup): void {
    const entry = group.entries[group.index];
    switch (type) {
      case BackendMessage.DataRow: // the hot path: only counted once the recording cap is reached
        entry?.tracker.dataRow(buf, start);
        return;
      case BackendMessage.RowDescription: {
        const description = this.rowDescriptions.decode(buf, start, end);
        if (entry) entry.tracker.setRowDescription(description);
        else group.described = description;
        return;
      }
      case BackendMessage.CommandComplete:
        return this.finishEntry(group, { commandTag: decodeCommandTag(buf, start, end) });
      case BackendMessage.EmptyQueryResponse:
        return this.finishEntry(group, { commandTag: '' });
      case BackendMessage.PortalSuspended:
        return this.finishEntry(group, { suspended: true });
      case BackendMessage.FunctionCallResponse:
        return this.finishEntry(group, {});
      case BackendMessage.ErrorResponse: {
        const fields = decodeErrorFields(buf, start, end);
        group.upstreamError = true;
        this.finishEntry(group, { error: { code: fields.get('C') ?? '', message: fields.get('M') ?? '' } });
        // In the extended protocol the server now skips the group's remaining Executes.
        if (entry && !entry.multiStatement) group.index = group.entries.length;
        return;
      }
      case BackendMessage.CopyData:
        this.sink.copyOut(buf.subarray(start + 5, end));
        return;
      case BackendMessage.ReadyForQuery:
        if (this.awaiting.length > 0) this.awaiting.shift();
        this.sink.readyForQuery(buf[start + 5]!, group.id);
        return;
      case BackendMessage.ParameterStatus: {
        const [name, value] = decodeParameterStatus(buf, start, end);
        this.sink.parameterChanged(name, value);
        return;
      }
      default:
        return;
    }
  }

  private finishEntry(group: ResponseGroup, outcome: ResultOutcome): void {
    const entry = group.entries[group.index];
    if (!entry) return;
    if (!entry.multiStatement) entry.tracker.adoptRowDescription(group.described);
    this.sink.finished(entry.tracker, outcome);
    if (!entry.multiStatement) {
      group.index++;
      group.described = null;
    }
  }

  private newGroup(): ResponseGroup {
    return {
      id: ++this.groupIds,
      entries: [],
      index: 0,
      injectError: null,
      described: null,
      upstreamError: false,
    };
  }
}
