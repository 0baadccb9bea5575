/**
 * Approvals across replicas (docs/configuration.md, "fleet"): each held command is a row of `agentgate.approvals`.
 * Every settlement is one conditional UPDATE of a pending row, so two approvers deciding at the same instant, or a
 * decision racing the holder's expiry, have exactly one outcome. The holding replica learns of a decision from a
 * NOTIFY (sent by the table's trigger, payload the approval id) and, as a fallback, by polling the rows it waits on
 * (every 1.5 s and after every reconnect of the LISTEN connection).
 */
import type { Logger } from '@agentgate/core';
import type { ApprovalSharing, HeldApproval, SharedApproval, SharedDecision } from '@agentgate/approvals';
import type { FleetDatabase } from './fleet-database.js';
import { nodeClaimClass, type FleetNotifications } from './fleet-notifications.js';

/** The channel the table's trigger notifies when a row is settled. */
export const approvalsChannel = 'agentgate_approvals';

const DEFAULT_POLL_MS = 1500;
/** A client waits on the hold: past this the command is refused rather than kept waiting on a silent database. */
const DEFAULT_HOLD_TIMEOUT_MS = 5000;

/**
 * Whether a connection holds the claim of the row's replica (fleet-notifications.ts): pg_locks shows a two-key
 * advisory lock as classid, objid (the key's bits as an oid) and objsubid 2, for every database of the cluster.
 */
const holderConnected = `EXISTS (SELECT 1 FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = ${nodeClaimClass}
    AND l.objid = (hashtext(node)::bigint & 4294967295)::oid
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`;

const COLUMNS = `approval_id, node, session_id, listener, protocol, identity, command, rule, approvers,
  requested_at, expires_at, state, decided_by, reason, decided_at`;

interface ApprovalRow {
  approval_id: string;
  node: string;
  session_id: string;
  listener: string;
  protocol: string;
  identity: string;
  command: string;
  rule: string;
  approvers: string[];
  requested_at: Date;
  expires_at: Date;
  state: SharedApproval['state'];
  decided_by: string | null;
  reason: string | null;
  decided_at: Date | null;
}

export interface FleetApprovalsOptions {
  readonly db: Pick<FleetDatabase, 'query'>;
  readonly notifications: Pick<FleetNotifications, 'subscribe' | 'claimNode'>;
  /** this replica (`fleet.node`) */
  readonly node: string;
  readonly log: Logger;
  /** how often the rows this replica waits on are read again, ms (default 1500) */
  readonly pollMs?: number;
  /** how long writing a held request may take before the hold fails, ms (default 5000) */
  readonly holdTimeoutMs?: number;
}

export class FleetApprovals implements ApprovalSharing {
  readonly node: string;
  /** Expiries and withdrawals the database did not take yet: written back at the next poll. */
  private readonly writeBacks = new Map<string, { outcome: 'expired' | 'cancelled'; reason: string }>();
  /** Requests an earlier run of this replica held (it crashed or was killed) wait on nobody: cancelled once. */
  private orphansCancelled = false;
  /** The node's claim was found held by another connection (logged once). */
  private claimRefused = false;
  private readonly startedAt = new Date();

  constructor(private readonly options: FleetApprovalsOptions) {
    this.node = options.node;
  }

  async hold(approval: HeldApproval): Promise<void> {
    const insert = this.options.db.query(
      `INSERT INTO agentgate.approvals (approval_id, node, session_id, listener, protocol, identity, command, rule,
         approvers, requested_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)`,
      [
        approval.id,
        approval.node,
        approval.session,
        approval.listener,
        approval.protocol,
        approval.identity,
        approval.command,
        approval.rule,
        JSON.stringify(approval.approvers),
        new Date(approval.requestedAt),
        new Date(approval.expiresAt),
      ],
    );
    const timeoutMs = this.options.holdTimeoutMs ?? DEFAULT_HOLD_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the fleet database did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([insert, late]);
    } catch (err) {
      // The insert may still land: the row is cancelled once the database answers, so nobody decides it in vain.
      insert.catch(() => undefined);
      this.writeBacks.set(approval.id, {
        outcome: 'cancelled',
        reason: 'the fleet database did not take it in time',
      });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async decide(
    id: string,
    outcome: 'approved' | 'rejected',
    by: string,
    reason: string | undefined,
  ): Promise<SharedDecision> {
    // The database's clock decides whether it expired, the same for every replica. Another replica's request is
    // decided only while some connection holds that replica's node claim: one killed mid-wait holds none, and an
    // approval there would be recorded as given for a command that never runs.
    const result = await this.options.db.query<ApprovalRow>(
      `UPDATE agentgate.approvals
          SET state = $2, decided_by = $3, decided_on = $4, reason = $5, decided_at = now()
        WHERE approval_id = $1 AND state = 'pending' AND expires_at > now()
          AND (node = $4 OR ${holderConnected})
        RETURNING ${COLUMNS}`,
      [id, outcome, by, this.node, reason ?? null],
    );
    const decided = result.rows[0];
    if (decided !== undefined) return { kind: 'decided', approval: fromRow(decided) };
    const current = await this.options.db.query<ApprovalRow & { open: boolean }>(
      `SELECT ${COLUMNS}, state = 'pending' AND expires_at > now() AS open FROM agentgate.approvals
        WHERE approval_id = $1`,
      [id],
    );
    const row = current.rows[0];
    if (row === undefined) return { kind: 'not-found' };
    return { kind: row.open ? 'holder-gone' : 'settled', approval: fromRow(row) };
  }

  async withdraw(
    id: string,
    outcome: 'expired' | 'cancelled',
    reason: string,
  ): Promise<SharedApproval | undefined> {
    try {
      return await this.settleHere(id, outcome, reason);
    } catch (err) {
      this.writeBacks.set(id, { outcome, reason });
      throw err;
    }
  }

  async get(id: string): Promise<SharedApproval | undefined> {
    const result = await this.options.db.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM agentgate.approvals WHERE approval_id = $1`,
      [id],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : fromRow(row);
  }

  async listPending(): Promise<SharedApproval[]> {
    const result = await this.options.db.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM agentgate.approvals
        WHERE state = 'pending' AND expires_at > now()
        ORDER BY requested_at, approval_id`,
    );
    return result.rows.map(fromRow);
  }

  watch(held: () => readonly string[], onSettled: (approval: SharedApproval) => void): () => void {
    const report = (approval: SharedApproval): void => {
      if (approval.state === 'pending') return;
      try {
        onSettled(approval);
      } catch (err) {
        this.options.log.error('fleet: settling an approval failed', {
          approval: approval.id,
          error: (err as Error).message,
        });
      }
    };
    let polling = false;
    const poll = async (): Promise<void> => {
      if (polling) return;
      polling = true;
      try {
        if (!this.orphansCancelled) await this.cancelOrphans();
        await this.writeBack();
        const ids = held();
        if (ids.length === 0) return;
        const result = await this.options.db.query<ApprovalRow>(
          `SELECT ${COLUMNS} FROM agentgate.approvals WHERE approval_id = ANY($1) AND state <> 'pending'`,
          [ids],
        );
        for (const row of result.rows) report(fromRow(row));
      } catch (err) {
        this.options.log.debug('fleet: reading held approvals failed', { error: (err as Error).message });
      } finally {
        polling = false;
      }
    };
    const unsubscribe = this.options.notifications.subscribe(approvalsChannel, {
      onNotify: (id) => {
        if (!held().includes(id)) return;
        this.get(id).then(
          (approval) => {
            if (approval !== undefined) report(approval);
          },
          // The poll reads it again.
          (err: Error) =>
            this.options.log.debug('fleet: reading a decided approval failed', {
              approval: id,
              error: err.message,
            }),
        );
      },
      onResync: () => void poll(),
    });
    const timer = setInterval(() => void poll(), this.options.pollMs ?? DEFAULT_POLL_MS);
    timer.unref();
    return () => {
      clearInterval(timer);
      unsubscribe();
    };
  }

  /** The holder's own settlement: only a pending row changes; the row as it stands afterwards. */
  private async settleHere(
    id: string,
    outcome: 'expired' | 'cancelled',
    reason: string,
  ): Promise<SharedApproval | undefined> {
    const result = await this.options.db.query<ApprovalRow>(
      `UPDATE agentgate.approvals
          SET state = $2, decided_by = NULL, decided_on = $3, reason = $4, decided_at = now()
        WHERE approval_id = $1 AND state = 'pending'
        RETURNING ${COLUMNS}`,
      [id, outcome, this.node, reason],
    );
    const settled = result.rows[0];
    this.writeBacks.delete(id);
    return settled === undefined ? this.get(id) : fromRow(settled);
  }

  private async cancelOrphans(): Promise<void> {
    // Only the one process holding the node's claim may take the node's pending rows for an earlier run's: a second
    // process started under the same name would otherwise cancel the commands the running one holds.
    const claimed = await this.options.notifications.claimNode();
    if (claimed !== true) {
      if (claimed === false && !this.claimRefused)
        this.options.log.error(
          `fleet: another connection to the fleet database holds fleet node ${this.node}: another process runs ` +
            'under the same fleet.node (each replica needs a name of its own), or an earlier run of this replica ' +
            'is not disconnected yet; the approvals an earlier run left pending are cancelled once it is free',
          { node: this.node },
        );
      this.claimRefused ||= claimed === false;
      return;
    }
    const result = await this.options.db.query<{ approval_id: string }>(
      `UPDATE agentgate.approvals
          SET state = 'cancelled', decided_by = NULL, decided_on = $1, reason = $3, decided_at = now()
        WHERE node = $1 AND state = 'pending' AND requested_at < $2
        RETURNING approval_id`,
      [this.node, this.startedAt, 'the replica holding it stopped before it was decided'],
    );
    this.orphansCancelled = true;
    if (result.rows.length > 0)
      this.options.log.warn('fleet: cancelled the approvals an earlier run of this replica left pending', {
        approvals: result.rows.map((r) => r.approval_id),
      });
  }

  private async writeBack(): Promise<void> {
    for (const [id, { outcome, reason }] of [...this.writeBacks]) {
      const approval = await this.settleHere(id, outcome, reason);
      if (approval !== undefined && approval.state !== outcome)
        this.options.log.warn(
          'fleet: an approval this replica settled while the fleet database was away had been decided there first',
          { approval: id, here: outcome, there: approval.state, by: approval.decidedBy },
        );
    }
  }
}

function fromRow(row: ApprovalRow): SharedApproval {
  return {
    id: row.approval_id,
    node: row.node,
    session: row.session_id,
    listener: row.listener,
    protocol: row.protocol,
    identity: row.identity,
    command: row.command,
    rule: row.rule,
    approvers: row.approvers,
    requestedAt: row.requested_at.getTime(),
    expiresAt: row.expires_at.getTime(),
    state: row.state,
    decidedBy: row.decided_by,
    reason: row.reason,
    decidedAt: row.decided_at === null ? null : row.decided_at.getTime(),
  };
}
