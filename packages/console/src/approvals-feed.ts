/**
 * The approvals page's source: every request the broker holds, from the moment it is held (the broker tells
 * subscribers synchronously), and the settled ones for a while after, with who decided and why. In a fleet, the
 * requests other replicas hold too, read from the fleet database every 2 s (shown with their recorded text only).
 * Each change is passed on to the open approvals pages at once.
 */
import type { ApprovalSettlement, Command, Identity, PrincipalRef, SessionInfo } from '@agentgate/core';
import type { ApprovalEvent, PendingApproval, SettledApproval } from '@agentgate/approvals';

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
  /** In a fleet: every replica's requests can be listed and read here (`listAnywhere`, `getAnywhere`). */
  readonly sharedAcrossReplicas?: boolean;
  listAnywhere?(): Promise<PendingApproval[]>;
  getAnywhere?(id: string): Promise<{ readonly status: string } | SettledApproval | undefined>;
}

/** The policy's verdict on a command, to find which statements of a batch the holding rule matched. */
export type DecideFn = (
  command: Command,
  identity: Identity,
  listener: string,
) => { readonly action: string; readonly rule?: string };

export interface ApprovalEntry {
  readonly id: string;
  readonly session: Pick<SessionInfo, 'id' | 'listener' | 'protocol'> & {
    readonly identity: Pick<Identity, 'name' | 'groups'>;
  };
  /** Undefined for a request another replica holds: only its recorded text is known here. */
  readonly command: Command | undefined;
  /** The replica holding it, when that is another one. */
  readonly heldElsewhere?: string;
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
const FLEET_POLL_MS = 2000;

export class ApprovalsFeed {
  private readonly entries = new Map<string, ApprovalEntry>();
  private readonly listeners = new Set<(entry: ApprovalEntry) => void>();
  private readonly unsubscribe: () => void;
  private readonly fleetTimer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(
    private readonly source: ApprovalsSource,
    private readonly decide: DecideFn | undefined,
    private readonly now: () => number = Date.now,
    fleetPollMs = FLEET_POLL_MS,
  ) {
    this.unsubscribe = source.subscribe((event) => this.onEvent(event));
    if (source.sharedAcrossReplicas === true) {
      this.fleetTimer = setInterval(() => void this.refreshFleet(), fleetPollMs);
      this.fleetTimer.unref();
      void this.refreshFleet();
    }
  }

  close(): void {
    clearInterval(this.fleetTimer);
    this.unsubscribe();
    this.listeners.clear();
  }

  /**
   * Other replicas' requests: new pending ones are added, and those no longer pending get their outcome. A fleet
   * database that cannot be reached leaves the entries as they are until the next round.
   */
  async refreshFleet(): Promise<void> {
    const { listAnywhere, getAnywhere } = this.source;
    if (listAnywhere === undefined || getAnywhere === undefined || this.refreshing) return;
    this.refreshing = true;
    try {
      const pending = await listAnywhere.call(this.source);
      const stillPending = new Set(pending.map((p) => p.id));
      for (const approval of pending)
        if (!this.entries.has(approval.id) && approval.node !== undefined) this.addRemote(approval);
      for (const entry of [...this.entries.values()]) {
        if (entry.heldElsewhere === undefined || entry.settlement !== undefined || stillPending.has(entry.id))
          continue;
        const now = await getAnywhere.call(this.source, entry.id);
        if (now === undefined || now.status === 'pending' || !('settledAt' in now)) continue;
        entry.settlement = {
          id: entry.id,
          outcome: now.status,
          ...(now.by === null ? {} : { by: now.by }),
          ...(now.reason === null ? {} : { reason: now.reason }),
        };
        entry.settledAt = Date.parse(now.settledAt);
        this.changed(entry);
      }
      this.prune();
    } catch {
      // the fleet database is away: the next round reads it again
    } finally {
      this.refreshing = false;
    }
  }

  private addRemote(approval: PendingApproval): void {
    const entry: ApprovalEntry = {
      id: approval.id,
      session: {
        id: approval.session,
        listener: approval.listener,
        protocol: approval.protocol as SessionInfo['protocol'],
        identity: { name: approval.identity, groups: [] },
      },
      command: undefined,
      heldElsewhere: approval.node!,
      text: approval.command,
      rule: approval.rule,
      approvers: approval.approvers,
      requestedAt: Date.parse(approval.requestedAt),
      expiresAt: Date.parse(approval.expiresAt),
      held: [],
    };
    this.entries.set(entry.id, entry);
    this.changed(entry);
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
    // Read from the fleet database just before this replica said it holds it: the local view knows more.
    if (entry?.heldElsewhere !== undefined) entry = undefined;
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
    this.changed(entry);
  }

  private changed(entry: ApprovalEntry): void {
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
