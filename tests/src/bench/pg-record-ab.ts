/**
 * An in-process A/B of two agentgate builds' per-statement work for a `pgbench -S` statement, without the sockets:
 * the session's SQL analysis and the command it builds (protocols/postgres), the gate with pgbench.ts's two deny
 * rules, the command event through the redactor (built-in entries) into a real store (failMode closed), the
 * result tracker fed the statement's RowDescription and DataRow, and the result event. Both builds are loaded in
 * this process, each with its own store; rounds alternate a batch of statements on one build then the other
 * (which goes first alternates every round), one statement per event-loop turn as a client's round trips make
 * them, and each batch's main-thread and all-thread CPU come from `/proc/self/task/*` `schedstat` (nanoseconds).
 * This resolves a fraction of a µs per statement where whole pgbench runs at load cannot resolve 30%
 * (docs/performance.md, A/A check). Run it in both orders.
 *
 * Run: node tests/dist/bench/pg-record-ab.js ROOT_A ROOT_B [rounds=200] [batch=200]
 * ROOT_A / ROOT_B are checkouts with their own build (`pnpm build`); `AB_MODE=prepared` measures an Execute of a
 * prepared statement (its Bind parameter) instead of a simple Query.
 *
 * Both builds must load one lmdb-js (one-lmdb.ts): point ROOT_A's node_modules/.pnpm/lmdb@VERSION at ROOT_B's
 * (a symlink) when the two installs hold separate copies.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { GateSession, SessionRecorder } from '@agentgate/core';
import {
  alternateRounds,
  closeVerified,
  fromBuild,
  loadRecordPackages,
  reportRounds,
  type ArmCpu,
} from './ab-rounds.js';
import { openBenchStore } from './bench-store.js';
import { requireOneLmdb } from './one-lmdb.js';

const [rootA, rootB] = process.argv.slice(2, 4).map((root) => resolve(root));
const rounds = Number(process.argv[4] ?? 200);
const batch = Number(process.argv[5] ?? 200);
const prepared = process.env['AB_MODE'] === 'prepared';

type Policy = typeof import('@agentgate/policy');
type Analyzer = typeof import('../../../protocols/postgres/src/sql/sql-analyzer.js');
type Analysis = typeof import('../../../protocols/postgres/src/sql/session-analysis.js');
type Commands = typeof import('../../../protocols/postgres/src/commands.js');
type Tracker = typeof import('../../../protocols/postgres/src/result-tracker.js');
type RowDescriptions = typeof import('../../../protocols/postgres/src/row-descriptions.js');

interface Arm extends ArmCpu {
  readonly dir: string;
  readonly close: () => Promise<boolean>;
  readonly statement: (n: number) => Promise<void>;
}

/** A RowDescription of one int4 column `abalance`, and a DataRow with `value`, as PostgreSQL sends them. */
function rowDescription(): Buffer {
  const name = Buffer.from('abalance\0');
  const body = Buffer.alloc(2 + name.length + 18);
  body.writeInt16BE(1, 0);
  name.copy(body, 2);
  const at = 2 + name.length;
  body.writeInt32BE(16_400, at); // table OID
  body.writeInt16BE(2, at + 4); // column number
  body.writeInt32BE(23, at + 6); // int4
  body.writeInt16BE(4, at + 10);
  body.writeInt32BE(-1, at + 12);
  body.writeInt16BE(0, at + 16); // text format
  return message('T', body);
}
function dataRow(value: string): Buffer {
  const bytes = Buffer.from(value);
  const body = Buffer.alloc(6 + bytes.length);
  body.writeInt16BE(1, 0);
  body.writeInt32BE(bytes.length, 2);
  bytes.copy(body, 6);
  return message('D', body);
}
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

async function startArm(root: string): Promise<Arm> {
  const from = fromBuild(root);
  const { core, transcript, masking, metrics: metricsPackage } = await loadRecordPackages(root);
  const policy = (await from('packages/policy/dist/index.js')) as Policy;
  const analyzer = (await from('protocols/postgres/dist/sql/sql-analyzer.js')) as Analyzer;
  const analysis = (await from('protocols/postgres/dist/sql/session-analysis.js')) as Analysis;
  const commands = (await from('protocols/postgres/dist/commands.js')) as Commands;
  const tracker = (await from('protocols/postgres/dist/result-tracker.js')) as Tracker;
  const descriptions = (await from('protocols/postgres/dist/row-descriptions.js')) as RowDescriptions;

  const dir = await mkdtemp(join(tmpdir(), 'agentgate-pg-ab-'));
  const { store, metrics } = await openBenchStore({ transcript, masking, metrics: metricsPackage }, dir);
  const gate = policy.createGate({
    // pgbench.ts's two deny rules
    policy: policy.createPolicy([
      {
        name: 'no-ddl-drops',
        protocol: 'postgres',
        match: { commands: ['DROP', 'TRUNCATE', 'ALTER SYSTEM'] },
        action: 'deny',
      },
      {
        name: 'no-file-reads',
        protocol: 'postgres',
        match: { functions: ['pg_read_file', 'lo_import'] },
        action: 'deny',
      },
    ] as Parameters<Policy['createPolicy']>[0]),
    approvers: [],
    metrics: metrics.gate,
    log: core.silentLogger,
  });
  const info = {
    id: core.newId(),
    listener: 'pg',
    protocol: 'postgres' as const,
    identity: { name: 'bench', groups: ['agents'], source: 'oidc' as const },
    client: { address: '127.0.0.1', port: 40000, local: true, tls: false },
    startedAt: Date.now(),
  };
  const recorder: SessionRecorder = store.openSession(info);
  const session = { info, recorder } as GateSession;
  const ctx = {
    analysis: new analysis.SqlSessionAnalysis(await analyzer.createSqlAnalyzer(), undefined),
    unknownMatchesAll: false,
    database: 'bench',
    user: 'bench',
  };
  const rows = new descriptions.RowDescriptions();
  const description = rowDescription();
  let exchange = 0;

  const statement = async (n: number): Promise<void> => {
    const aid = String(1 + ((n * 7919) % 100_000));
    const { command, secrets } = prepared
      ? await commands.analysedCommand(
          ctx,
          ['SELECT abalance FROM pgbench_accounts WHERE aid = $1;'],
          { portal: '', statementName: 'P_1', params: [aid] },
          exchange++,
        )
      : await commands.analysedCommand(
          ctx,
          [`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`],
          undefined,
          exchange++,
        );
    const verdict = await gate.check(session, command);
    if (!verdict.allowed) throw new Error(`denied: ${verdict.message}`);
    const result = new tracker.ResultTracker(verdict.commandSeq, 100, [], secrets);
    result.setRowDescription(rows.decode(description, 0, description.length));
    const row = dataRow(String(n % 5000));
    result.dataRow(row, 0);
    const body = result.complete(metrics.protocol, 'pg', { commandTag: 'SELECT 1' });
    // As each build's relay records it: without the event object where the recorder can (appendSeq).
    if (recorder.appendSeq !== undefined) recorder.appendSeq('result', body);
    else recorder.append('result', body);
  };
  const close = (): Promise<boolean> => closeVerified(root, store, recorder);
  return { root, dir, close, statement, main: [], all: [] };
}

async function main(): Promise<void> {
  if (!rootA || !rootB) throw new Error('usage: pg-record-ab.js ROOT_A ROOT_B [rounds] [batch]');
  requireOneLmdb(rootA, rootB);
  const arms: [Arm, Arm] = [await startArm(rootA), await startArm(rootB)];
  let n = 0;
  const run = async (arm: Arm, count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      await arm.statement(n++);
      await nextTurn();
    }
  };
  try {
    // Warm both up until V8's feedback settles.
    for (let i = 0; i < 10; i++) for (const arm of arms) await run(arm, batch);
    await alternateRounds(arms, rounds, (arm) => run(arm, batch), 1000 * batch);
    const verified = [];
    for (const arm of arms) verified.push(await arm.close());
    reportRounds(arms, {
      unit: 'µs per statement',
      digits: 2,
      batches: `batches of ${batch}; ${prepared ? 'prepared' : 'simple'}`,
      verified,
    });
  } finally {
    for (const arm of arms) await rm(arm.dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
