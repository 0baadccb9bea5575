/**
 * The approvals page's source: every request the broker holds, from the moment it is held (the broker tells
 * subscribers synchronously), and the settled ones for a while after, with who decided and why. Each change is
 * passed on to the open approvals pages at once.
 */
import type { ApprovalSettlement, Command, Identity, PrincipalRef, SessionInfo } from '@agentgate/core';
import type { ApprovalEvent, PendingApproval } from '@agentgate/approvals';

/** The broker as the console uses it (`ApprovalBrokerImpl`). */
export interface ApprovalsSource {
  list(): PendingApproval[];
  /** Decide a request, in a fleet through the fleet database (exactly once across replicas). */
  decideAnywhere(
    id: string,
    approver: Identity,
    outcome: 'approved' | 'rejected',
    reason?: string,
  ): Promise<ApprovalSettlement>;
  subscribe(subscriber: (event: ApprovalEvent) => void): () => void;
}

/** The policy's verdict on a command, to find which statements of a batch the holding rule matched. */
export type DecideFn = (
  command: Command,
  identity: Identity,
  listener: string,
) => { readonly action: string; readonly rule?: string };

export interface ApprovalEntry {
  readonly id: string;
  readonly session: SessionInfo;
  readonly command: Command;
  /** The one-line text the broker recorded (credentials removed). */
  readonly text: string;
  readonly rule: string;
  readonly approvers: readonly PrincipalRef[];
  /** ms since the epoch */
  readonly requestedAt: number;
  readonly expiresAt: number;
  /** For SQL batches: [start, end) ranges of `text` the holding rule matched. */
  readonly held: readonly (readonly [number, number])[];
  settlement?: ApprovalSettlement;
  settledAt?: number;
}

const KEEP_SETTLED = 200;
const KEEP_SETTLED_MS = 24 * 3_600_000;

export class ApprovalsFeed {
  private readonly entries = new Map<string, ApprovalEntry>();
  private readonly listeners = new Set<(entry: ApprovalEntry) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly source: ApprovalsSource,
    private readonly decide: DecideFn | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.unsubscribe = source.subscribe((event) => this.onEvent(event));
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }

  /** Pending first (oldest first), then settled (newest first). */
  all(): ApprovalEntry[] {
    const list = [...this.entries.values()];
    const pending = list.filter((e) => e.settlement === undefined);
    const settled = list.filter((e) => e.settlement !== undefined).reverse();
    return [...pending, ...settled];
  }

  get(id: string): ApprovalEntry | undefined {
    return this.entries.get(id);
  }

  /** Be told of every new or changed entry; returns what unsubscribes. */
  onChange(listener: (entry: ApprovalEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onEvent(event: ApprovalEvent): void {
    let entry = this.entries.get(event.approval.id);
    if (entry === undefined) {
      const { approval, input } = event;
      entry = {
        id: approval.id,
        session: input.session,
        command: input.command,
        text: input.command.recordedText ?? approval.command,
        rule: approval.rule,
        approvers: approval.approvers,
        requestedAt: Date.parse(approval.requestedAt),
        expiresAt: Date.parse(approval.expiresAt),
        held: this.heldRanges(
          input.command.recordedText ?? approval.command,
          input.command,
          input.session,
          approval.rule,
        ),
      };
      this.entries.set(entry.id, entry);
    }
    if (event.type === 'settled') {
      entry.settlement = event.settlement;
      entry.settledAt = this.now();
      this.prune();
    }
    for (const listener of this.listeners) {
      try {
        listener(entry);
      } catch {
        // a closed page stream; it unsubscribes itself
      }
    }
  }

  /**
   * For a SQL batch, the parts the holding rule matched: each statement is put to the policy alone, and those the
   * same rule holds are marked inside the batch text. Nothing is marked for a single statement or when no
   * statement alone matches (the rule matched the batch as a whole).
   */
  private heldRanges(text: string, command: Command, session: SessionInfo, rule: string): [number, number][] {
    if (command.protocol !== 'postgres' || this.decide === undefined) return [];
    const statements = command.statements;
    if (statements.length < 2) return [];
    const ranges: [number, number][] = [];
    for (const statement of statements) {
      const shown = statement.recordedText ?? statement.text;
      const single: Command = { ...command, text: statement.text, statements: [statement] };
      let verdict;
      try {
        verdict = this.decide(single, session.identity, session.listener);
      } catch {
        continue;
      }
      if (verdict.action === 'allow' || verdict.rule !== rule) continue;
      const start = text.indexOf(shown);
      if (start >= 0) ranges.push([start, start + shown.length]);
    }
    if (ranges.length === 0) return [];
    ranges.sort((a, b) => a[0] - b[0]);
    // Nested statements lie inside their parent: merge overlaps so each character is marked once.
    const merged: [number, number][] = [];
    for (const range of ranges) {
      const last = merged[merged.length - 1];
      if (last !== undefined && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
      else merged.push([range[0], range[1]]);
    }
    const wholeText = merged.length === 1 && merged[0]![0] === 0 && merged[0]![1] >= text.trim().length;
    return wholeText ? [] : merged;
  }

  private prune(): void {
    const settled = [...this.entries.values()].filter((e) => e.settlement !== undefined);
    const cutoff = this.now() - KEEP_SETTLED_MS;
    let excess = settled.length - KEEP_SETTLED;
    for (const entry of settled) {
      if (excess > 0 || (entry.settledAt ?? 0) < cutoff) {
        this.entries.delete(entry.id);
        excess--;
      }
    }
  }
}
