import { describe, expect, it } from '@jest/globals';
import type { ApprovalEvent, PendingApproval, SettledApproval } from '@agentgate/approvals';
import type { Command, PostgresCommand, SqlStatementFacts } from '@agentgate/core';
import { ApprovalsFeed, type ApprovalsSource } from './approvals-feed.js';

function statement(text: string, command: string): SqlStatementFacts {
  return { command, tables: [], functions: [], unfilteredWrite: false, text, dynamic: false };
}

function source(): ApprovalsSource & { emit(event: ApprovalEvent): void } {
  let subscriber: ((event: ApprovalEvent) => void) | undefined;
  return {
    list: () => [],
    decideAnywhere: (id, _who, outcome) => Promise.resolve({ id, outcome }),
    subscribe(fn) {
      subscriber = fn;
      return () => (subscriber = undefined);
    },
    emit: (event) => subscriber?.(event),
  };
}

function held(command: PostgresCommand, id = '01J0000000000000000000000A'): ApprovalEvent {
  const session = {
    id: 'S1',
    listener: 'db',
    protocol: 'postgres' as const,
    identity: { name: 'devin', groups: ['agents'], source: 'token' as const },
    client: { address: '127.0.0.1', local: true, tls: false },
    startedAt: 0,
  };
  return {
    type: 'requested',
    approval: {
      id,
      session: 'S1',
      listener: 'db',
      protocol: 'postgres',
      identity: 'devin',
      command: command.text,
      rule: 'deletes',
      approvers: ['group:dba'],
      requestedAt: new Date(1000).toISOString(),
      expiresAt: new Date(61_000).toISOString(),
    },
    input: { session, recorder: undefined as never, command, rule: 'deletes', approvers: [] },
  };
}

// The policy stand-in holds DELETE statements with rule "deletes".
const decide = (command: Command) =>
  command.protocol === 'postgres' && command.statements.some((s) => s.command === 'DELETE')
    ? { action: 'approve', rule: 'deletes' }
    : { action: 'allow' };

describe('approvals feed', () => {
  it('marks the statements of a batch that the holding rule matched, and keeps settled requests with who decided', () => {
    const src = source();
    const feed = new ApprovalsFeed(src, decide, () => 5000);
    const text = 'SELECT 1; DELETE FROM t WHERE id = 1; SELECT 2';
    src.emit(
      held({
        protocol: 'postgres',
        text,
        statements: [
          statement('SELECT 1', 'SELECT'),
          statement('DELETE FROM t WHERE id = 1', 'DELETE'),
          statement('SELECT 2', 'SELECT'),
        ],
      }),
    );
    const [entry] = feed.all();
    expect(entry!.held.map(([a, b]) => text.slice(a, b))).toEqual(['DELETE FROM t WHERE id = 1']);
    const seen: string[] = [];
    feed.onChange((e) => seen.push(e.settlement?.outcome ?? 'pending'));
    src.emit({
      ...(held(entry!.command as PostgresCommand) as Extract<ApprovalEvent, { type: 'requested' }>),
      type: 'settled',
      settlement: { id: entry!.id, outcome: 'rejected', by: 'alice', reason: 'no' },
    });
    expect(seen).toEqual(['rejected']);
    expect(feed.get(entry!.id)).toMatchObject({ settlement: { by: 'alice', reason: 'no' }, settledAt: 5000 });
  });

  it('marks nothing for a single statement, and shows the text with credentials removed', () => {
    const src = source();
    const feed = new ApprovalsFeed(src, decide);
    src.emit(
      held({
        protocol: 'postgres',
        text: "DELETE FROM t; ALTER ROLE x PASSWORD 'hunter2'",
        recordedText: "DELETE FROM t; ALTER ROLE x PASSWORD '********'",
        statements: [statement('DELETE FROM t', 'DELETE')],
      }),
    );
    const [entry] = feed.all();
    expect(entry!.text).not.toContain('hunter2');
    expect(entry!.held).toEqual([]);
  });

  it("in a fleet, lists other replicas' requests from the fleet database and follows them to their outcome", async () => {
    const remote = {
      id: '01J0000000000000000000000B',
      node: 'B',
      session: 'S9',
      listener: 'db',
      protocol: 'postgres',
      identity: 'devin',
      command: 'DELETE FROM t WHERE id = 9',
      rule: 'deletes',
      approvers: ['group:dba'],
      requestedAt: new Date(1000).toISOString(),
      expiresAt: new Date(61_000).toISOString(),
    };
    let pending: PendingApproval[] = [remote];
    const settled: SettledApproval = {
      id: remote.id,
      status: 'approved',
      by: 'alice',
      reason: 'ok',
      settledAt: new Date(3000).toISOString(),
      identity: remote.identity,
      approvers: remote.approvers,
    };
    const src = {
      ...source(),
      sharedAcrossReplicas: true,
      listAnywhere: () => Promise.resolve(pending),
      getAnywhere: (id: string) =>
        Promise.resolve(id === remote.id && pending.length === 0 ? settled : undefined),
    };
    const feed = new ApprovalsFeed(src, decide, () => 5000, 3_600_000);
    try {
      const seen: string[] = [];
      feed.onChange((e) => seen.push(`${e.id}:${e.settlement?.outcome ?? 'pending'}`));
      await feed.refreshFleet();
      expect(feed.get(remote.id)).toMatchObject({
        heldElsewhere: 'B',
        command: undefined,
        text: 'DELETE FROM t WHERE id = 9',
        session: { id: 'S9', identity: { name: 'devin' } },
      });
      await feed.refreshFleet();
      expect(seen).toEqual([`${remote.id}:pending`]);
      pending = [];
      await feed.refreshFleet();
      expect(feed.get(remote.id)).toMatchObject({
        settlement: { outcome: 'approved', by: 'alice', reason: 'ok' },
        settledAt: 3000,
      });
      expect(seen).toEqual([`${remote.id}:pending`, `${remote.id}:approved`]);

      // Read from the fleet database just before this replica reported it as its own: the local entry wins.
      const local = held({
        protocol: 'postgres',
        text: 'DELETE FROM t',
        statements: [statement('DELETE FROM t', 'DELETE')],
      });
      pending = [{ ...local.approval, node: 'A' }];
      await feed.refreshFleet();
      expect(feed.get(local.approval.id)!.heldElsewhere).toBe('A');
      src.emit(local);
      expect(feed.get(local.approval.id)!.heldElsewhere).toBeUndefined();
      expect(feed.get(local.approval.id)!.command).toMatchObject({ text: 'DELETE FROM t' });
    } finally {
      feed.close();
    }
  });
});
