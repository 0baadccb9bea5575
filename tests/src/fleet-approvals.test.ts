/**
 * Approvals across replicas: two real `agentgate serve` replicas share one fleet database (on a PostgreSQL cluster of
 * its own) and real node-postgres agents. A statement held on A is decided through B's admin API (approved: the
 * client on A completes; denied: A's client gets the reason), two approvers deciding at the same instant get one
 * 200 and one 409 with one outcome recorded, A's expiry shows through B, a held statement is refused with a clear
 * reason while the fleet database is down (or held locally with `approvalsWhenDown: local`), and the gateway role
 * may settle approval rows but still not alter shipped events.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { SharedApproval, SharedDecision } from '@agentgate/approvals';
import { newId, silentLogger } from '@agentgate/core';
import { FleetApprovals, FleetDatabase, nodeClaimClass } from '@agentgate/fleet';
import { runCli } from './harness/cli.js';
import {
  fleetQuery,
  GATEWAY_ROLE_PASSWORD,
  startFleetDatabase,
  type TestFleetDatabase,
} from './harness/fleet.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';

type Node = 'A' | 'B' | 'C';
const TOKENS = {
  devin: 'fleet-approvals-devin-4d1e',
  alice: 'fleet-approvals-alice-77a2',
  bob: 'fleet-approvals-bob-0c9f',
};
const TIMEOUT_S = 15;

/** The gateways' login role on the fleet database (the harness grants it agentgate_fleet_writer). */
const GATEWAY_ROLE = 'gw';

let upstream: TestPostgres;
let fleetDb: TestFleetDatabase;
let dir: string;
/** The harness's pieces under the names this suite uses. */
const bed = {
  get upstream() {
    return upstream;
  },
  get fleetCluster() {
    return fleetDb.cluster;
  },
  get dir() {
    return dir;
  },
  fleetUrl: (user: string, password?: string) => fleetDb.url(user, password),
  fleetYaml: (node: string, extra = '') => fleetDb.configYaml(node, join(dir, node)) + extra,
  asOwner: <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
    fleetQuery<R>(fleetDb.url('postgres'), text, values),
};
const config: Record<Node, string> = { A: '', B: '', C: '' };
const gateways = new Set<ServedGateway>();

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function replicaConfig(node: Node, fleetExtra = '', home = join(bed.dir, node)): string {
  const fleet = fleetDb.configYaml(node, home) + fleetExtra;
  const file = join(home, 'agentgate.yaml');
  writeFileSync(
    file,
    `store: { path: ${join(home, 'transcripts')} }
signingKey: ${join(home, 'signing-key.json')}
admin: { listen: "127.0.0.1:0" }
identity:
  tokens:
    - { name: devin, sha256: "${sha256(TOKENS.devin)}", groups: [agents] }
    - { name: alice, sha256: "${sha256(TOKENS.alice)}", groups: [dba] }
    - { name: bob, sha256: "${sha256(TOKENS.bob)}", groups: [dba] }
approvals: { timeout: ${TIMEOUT_S}s, approvers: [group:dba] }
listeners:
${listenerYaml.postgres('db', bed.upstream)}rules:
  - { name: deletes-need-review, listeners: [db], match: { commands: [DELETE] }, action: approve }
${fleet}`,
  );
  return file;
}

async function serve(node: Node): Promise<ServedGateway> {
  const gateway = await serveProcess(config[node]);
  gateways.add(gateway);
  return gateway;
}

async function agent(gateway: ServedGateway): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port('db'),
    user: 'devin',
    database: 'app',
    password: TOKENS.devin,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

interface Pending {
  id: string;
  node?: string;
  session: string;
  identity: string;
  command: string;
}

async function api(
  gateway: ServedGateway,
  path: string,
  who: keyof typeof TOKENS = 'alice',
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> & unknown[] }> {
  const decision = /\/(approve|deny)$/.test(path);
  const res = await fetch(`${gateway.admin}/api/approvals${path}`, {
    method: decision ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${TOKENS[who]}`, 'content-type': 'application/json' },
    ...(decision ? { body: JSON.stringify(body ?? {}) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
}

/** The pending request whose command contains `text`, as `gateway`'s API lists it. */
async function pendingOn(gateway: ServedGateway, text: string): Promise<Pending> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { status, body } = await api(gateway, '');
    expect(status).toBe(200);
    const found = (body as unknown as Pending[]).find((p) => p.command.includes(text));
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no pending approval for ${text}: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wait until no connection holds replica `node`'s claim (its killed process's connection is closed). */
async function untilUnclaimed(node: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const held = await bed.asOwner(
      `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = $1
          AND objid = (hashtext($2)::bigint & 4294967295)::oid`,
      [nodeClaimClass, node],
    );
    if (held.rowCount === 0) return;
    if (Date.now() > deadline) throw new Error(`replica ${node}'s claim is still held`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The approval events of a session as the holding replica's own store recorded them. */
async function approvalEvents(node: Node, session: string): Promise<Record<string, unknown>[]> {
  const exported = await runCli([
    'export',
    session,
    '--config',
    config[node],
    '--local',
    '--format',
    'jsonl',
  ]);
  expect(exported.code).toBe(0);
  return exported.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((e) => String(e['type']).startsWith('approval.'));
}

beforeAll(async () => {
  [upstream, fleetDb] = await Promise.all([startPostgres(), startFleetDatabase()]);
  dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-approvals-'));
  await bed.upstream.psql(['-d', 'app'], {
    input:
      'SET ROLE app; CREATE TABLE jobs (id int PRIMARY KEY, name text); INSERT INTO jobs SELECT g, $$job$$ || g FROM generate_series(1, 100) g;',
  });
  config.A = replicaConfig('A');
  config.B = replicaConfig('B');
  config.C = replicaConfig('C', '  approvalsWhenDown: local\n');
  await fleetDb.migrate(config.A);
}, 120_000);

afterAll(async () => {
  for (const gateway of gateways) gateway.process.kill('SIGKILL');
  await Promise.all([upstream?.stop(), fleetDb?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('approvals across replicas', () => {
  let a: ServedGateway;
  let b: ServedGateway;

  beforeAll(async () => {
    [a, b] = await Promise.all([serve('A'), serve('B')]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
    gateways.delete(a);
    gateways.delete(b);
  });

  it("a statement held on A is approved through B's API and the client on A completes", async () => {
    const client = await agent(a);
    try {
      const held = client.query('DELETE FROM jobs WHERE id = 1');
      const pending = await pendingOn(b, 'id = 1');
      expect(pending).toMatchObject({
        node: 'A',
        identity: 'devin',
        command: 'DELETE FROM jobs WHERE id = 1',
      });
      // B shows it like its own, by id too.
      expect((await api(b, `/${pending.id}`)).body).toMatchObject({
        id: pending.id,
        status: 'pending',
        node: 'A',
      });

      const decided = await api(b, `/${pending.id}/approve`, 'alice', { reason: 'ticket 7' });
      expect(decided).toMatchObject({
        status: 200,
        body: { outcome: 'approved', by: 'alice', reason: 'ticket 7' },
      });
      expect((await held).rowCount).toBe(1);

      const events = await approvalEvents('A', pending.session);
      expect(events.map((e) => e['type'])).toEqual(['approval.requested', 'approval.decided']);
      expect(events[1]).toMatchObject({
        approvalId: pending.id,
        outcome: 'approved',
        by: 'alice',
        reason: 'ticket 7',
      });
      // Both replicas show its outcome.
      for (const gateway of [a, b])
        expect((await api(gateway, `/${pending.id}`)).body).toMatchObject({
          status: 'approved',
          by: 'alice',
        });
    } finally {
      await client.end();
    }
  }, 60_000);

  it("a denial through B reaches A's client with the reason", async () => {
    const client = await agent(a);
    try {
      const held = client.query('DELETE FROM jobs WHERE id = 2');
      const pending = await pendingOn(b, 'id = 2');
      const denied = await api(b, `/${pending.id}/deny`, 'bob', { reason: 'not during the freeze' });
      expect(denied).toMatchObject({ status: 200, body: { outcome: 'rejected', by: 'bob' } });
      await expect(held).rejects.toThrow(
        `agentgate: approval ${pending.id} rejected: not during the freeze (rule deletes-need-review)`,
      );
      // The session goes on, and the row is still there.
      expect((await client.query('SELECT count(*)::int AS n FROM jobs WHERE id = 2')).rows[0]).toEqual({
        n: 1,
      });
      // A late decision, on any replica, is a conflict.
      expect((await api(a, `/${pending.id}/approve`, 'alice')).status).toBe(409);
    } finally {
      await client.end();
    }
  }, 60_000);

  it('two approvers deciding at the same instant through A and B: one 200, one 409, one outcome', async () => {
    for (const round of [3, 4, 5]) {
      const client = await agent(a);
      try {
        const held = client.query(`DELETE FROM jobs WHERE id = ${round}`);
        const pending = await pendingOn(a, `id = ${round}`);
        await pendingOn(b, `id = ${round}`);
        const [viaA, viaB] = await Promise.all([
          api(a, `/${pending.id}/approve`, 'alice', { reason: 'alice via A' }),
          api(b, `/${pending.id}/deny`, 'bob', { reason: 'bob via B' }),
        ]);
        expect([viaA.status, viaB.status].sort()).toEqual([200, 409]);
        const loser = viaA.status === 409 ? viaA : viaB;
        expect(loser.body['message']).toContain(`approval ${pending.id} is already settled`);
        const winner = viaA.status === 200 ? viaA : viaB;
        const outcome = winner.body['outcome'];
        if (outcome === 'approved') expect((await held).rowCount).toBe(1);
        else await expect(held).rejects.toThrow('rejected: bob via B');

        const decided = (await approvalEvents('A', pending.session)).filter(
          (e) => e['type'] === 'approval.decided' && e['approvalId'] === pending.id,
        );
        expect(decided).toHaveLength(1);
        expect(decided[0]).toMatchObject({ outcome, by: winner.body['by'] });
        const row = await bed.asOwner<{ state: string; decided_by: string }>(
          'SELECT state, decided_by FROM agentgate.approvals WHERE approval_id = $1',
          [pending.id],
        );
        expect(row.rows).toEqual([{ state: outcome, decided_by: winner.body['by'] }]);
        for (const gateway of [a, b])
          expect((await api(gateway, `/${pending.id}`)).body).toMatchObject({ status: outcome });
      } finally {
        await client.end();
      }
    }
  }, 120_000);

  it("A's expiry shows as expired through B's API, and a decision after it is a conflict", async () => {
    const client = await agent(a);
    try {
      const held = client.query('DELETE FROM jobs WHERE id = 6');
      const pending = await pendingOn(b, 'id = 6');
      await expect(held).rejects.toThrow(`approval ${pending.id} expired: no decision within ${TIMEOUT_S}s`);
      expect((await api(b, `/${pending.id}`)).body).toMatchObject({ status: 'expired', by: null });
      expect((await api(b, '')).body.map((p) => (p as Pending).id)).not.toContain(pending.id);
      expect((await api(b, `/${pending.id}/approve`, 'alice')).status).toBe(409);
    } finally {
      await client.end();
    }
  }, 60_000);

  it('a client that leaves withdraws its request fleet-wide', async () => {
    const client = await agent(a);
    const held = client.query('DELETE FROM jobs WHERE id = 7');
    held.catch(() => undefined);
    const pending = await pendingOn(b, 'id = 7');
    await client.end().catch(() => undefined);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { body } = await api(b, `/${pending.id}`);
      if (body['status'] === 'cancelled') break;
      if (Date.now() > deadline) throw new Error(`not withdrawn: ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await api(b, `/${pending.id}/approve`, 'alice')).status).toBe(409);
  }, 60_000);

  it('a request left pending by a killed replica is cancelled when it comes back', async () => {
    const client = await agent(a);
    const held = client.query('DELETE FROM jobs WHERE id = 11');
    held.catch(() => undefined);
    const pending = await pendingOn(b, 'id = 11');
    a.process.kill('SIGKILL');
    gateways.delete(a);
    await client.end().catch(() => undefined);
    // Still listed until A is back, but not decided: nothing would run the command, so an approval would be false.
    expect((await api(b, `/${pending.id}`)).body).toMatchObject({ status: 'pending', node: 'A' });
    await untilUnclaimed('A');
    expect(await api(b, `/${pending.id}/approve`, 'alice')).toMatchObject({
      status: 503,
      body: {
        message: expect.stringContaining('held by replica A, which is not connected to the fleet database'),
      },
    });
    expect((await api(b, `/${pending.id}`)).body).toMatchObject({ status: 'pending' });
    a = await serve('A');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { body } = await api(b, `/${pending.id}`);
      if (body['status'] === 'cancelled') {
        expect(body['reason']).toBe('the replica holding it stopped before it was decided');
        break;
      }
      if (Date.now() > deadline) throw new Error(`not cancelled: ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await api(b, `/${pending.id}/approve`, 'alice')).status).toBe(409);
  }, 120_000);

  it("a second process started under A's node name leaves the commands A holds to A", async () => {
    const client = await agent(a);
    try {
      const held = client.query('DELETE FROM jobs WHERE id = 12');
      const pending = await pendingOn(b, 'id = 12');
      // A misconfigured twin: its own store, the same fleet.node. It must not take A's rows for an earlier run's.
      const twin = await serveProcess(replicaConfig('A', '', join(bed.dir, 'A-twin')));
      gateways.add(twin);
      try {
        // Its first approvals poll has run once it says either what it did or why it did not.
        const deadline = Date.now() + 10_000;
        while (
          !twin.logged('holds fleet node A') &&
          !twin.logged('an earlier run of this replica left pending')
        ) {
          if (Date.now() > deadline) throw new Error(`the twin did not say: ${JSON.stringify(twin.logs)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const row = await bed.asOwner('SELECT state FROM agentgate.approvals WHERE approval_id = $1', [
          pending.id,
        ]);
        expect(row.rows).toEqual([{ state: 'pending' }]);
        expect((await api(b, `/${pending.id}/approve`, 'alice')).status).toBe(200);
        expect((await held).rowCount).toBe(1);
        expect(twin.logged('holds fleet node A')).toBe(true);
      } finally {
        await twin.stop();
        gateways.delete(twin);
      }
    } finally {
      await client.end();
    }
  }, 120_000);

  it('the gateway role may settle approval rows, but not rewrite them or alter shipped events', async () => {
    const gw = bed.fleetUrl(GATEWAY_ROLE, GATEWAY_ROLE_PASSWORD);
    await fleetQuery(
      gw,
      `INSERT INTO agentgate.approvals (approval_id, node, session_id, listener, protocol, identity, command, rule,
         approvers, requested_at, expires_at)
       VALUES ('probe-approval', 'probe', 'probe-session', 'db', 'postgres', 'devin', 'DELETE', 'r', '[]', now(),
         now() + interval '1 minute')`,
    );
    const settled = await fleetQuery(
      gw,
      "UPDATE agentgate.approvals SET state = 'approved', decided_by = 'alice', decided_at = now() WHERE approval_id = 'probe-approval' AND state = 'pending'",
    );
    expect(settled.rowCount).toBe(1);
    for (const statement of [
      // a settled row never changes again
      "UPDATE agentgate.approvals SET state = 'rejected' WHERE approval_id = 'probe-approval'",
      // the held command, its requester and holder are not the writer's to change
      "UPDATE agentgate.approvals SET command = 'SELECT 1' WHERE approval_id = 'probe-approval'",
      "UPDATE agentgate.approvals SET identity = 'alice' WHERE approval_id = 'probe-approval'",
      "DELETE FROM agentgate.approvals WHERE approval_id = 'probe-approval'",
      "UPDATE agentgate.events SET stored = 'x'",
      'DELETE FROM agentgate.events',
      "UPDATE agentgate.checkpoints SET record = '{}'",
      'TRUNCATE agentgate.approvals',
    ])
      await expect(fleetQuery(gw, statement)).rejects.toThrow(/permission denied|already settled/);
    await bed.asOwner("DELETE FROM agentgate.approvals WHERE approval_id = 'probe-approval'");
  }, 60_000);
});

describe('the fleet approvals store as the gateway role', () => {
  const dbs: FleetDatabase[] = [];
  /** A LISTEN connection that delivers nothing: only the poll can tell the holder. */
  const deaf = { subscribe: () => () => undefined, claimNode: () => Promise.resolve(true) };

  const closers: (() => Promise<void>)[] = [];

  /** A replica's approvals store; with `claim`, a connection holding its node's claim as a running replica's does. */
  async function replica(node: string, pollMs = 200, claim = true): Promise<FleetApprovals> {
    const db = await FleetDatabase.open({ url: bed.fleetUrl(GATEWAY_ROLE, GATEWAY_ROLE_PASSWORD) });
    dbs.push(db);
    if (claim) {
      const notifications = db.notifications(silentLogger, { claimNode: node });
      notifications.start();
      const deadline = Date.now() + 10_000;
      while ((await notifications.claimNode()) !== true) {
        if (Date.now() > deadline) throw new Error(`no claim on ${node}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      closers.push(() => notifications.close());
    }
    return new FleetApprovals({ db, notifications: deaf, node, log: silentLogger, pollMs });
  }

  function held(node: string, expiresInMs = 60_000) {
    const now = Date.now();
    return {
      id: newId(now),
      node,
      session: newId(now),
      listener: 'db',
      protocol: 'postgres',
      identity: 'devin',
      command: 'DELETE FROM jobs WHERE id = 42',
      rule: 'deletes-need-review',
      approvers: ['group:dba'],
      requestedAt: now,
      expiresAt: now + expiresInMs,
    };
  }

  afterAll(async () => {
    await Promise.all(closers.map((close) => close()));
    await Promise.all(dbs.map((db) => db.close()));
  });

  it('the holder learns a decision by polling when no notification comes', async () => {
    const holder = await replica('H');
    const decider = await replica('D');
    const request = held('H');
    await holder.hold(request);
    const seen: SharedApproval[] = [];
    const stop = holder.watch(
      () => [request.id],
      (approval) => seen.push(approval),
    );
    try {
      expect(await decider.decide(request.id, 'approved', 'alice', 'by poll')).toMatchObject({
        kind: 'decided',
      });
      const deadline = Date.now() + 10_000;
      while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(seen[0]).toMatchObject({
        id: request.id,
        state: 'approved',
        decidedBy: 'alice',
        reason: 'by poll',
      });
    } finally {
      stop();
    }
  }, 60_000);

  it('twenty deciders and the expiry at the same instant, on four connections: one outcome', async () => {
    const replicas = await Promise.all(['R1', 'R2', 'R3', 'R4'].map((node) => replica(node)));
    for (let round = 0; round < 5; round++) {
      const request = held('R1');
      await replicas[0]!.hold(request);
      const decisions: Promise<SharedDecision>[] = Array.from({ length: 20 }, (_, i) =>
        replicas[i % 4]!.decide(
          request.id,
          i % 2 === 0 ? 'approved' : 'rejected',
          `approver-${i}`,
          undefined,
        ),
      );
      const [withdrawn, ...results] = await Promise.all([
        replicas[0]!.withdraw(request.id, 'expired', 'no decision within 60s'),
        ...decisions,
      ]);
      const final = await replicas[3]!.get(request.id);
      expect(final!.state).not.toBe('pending');
      const won = results.filter((r) => r.kind === 'decided');
      expect(won.length).toBe(final!.state === 'expired' ? 0 : 1);
      for (const result of results) {
        if (result.kind === 'not-found') throw new Error('the row vanished');
        expect(result.approval.state).toBe(final!.state);
        expect(result.approval.decidedBy).toBe(final!.decidedBy);
      }
      expect(withdrawn).toMatchObject({ state: final!.state, decidedBy: final!.decidedBy });
    }
  }, 60_000);

  it('a request past its expiry cannot be decided and is no longer listed', async () => {
    const holder = await replica('H2');
    const request = held('H2', -1000);
    await holder.hold(request);
    expect(await holder.decide(request.id, 'approved', 'alice', undefined)).toMatchObject({
      kind: 'settled',
      approval: { state: 'pending' },
    });
    expect((await holder.listPending()).map((a) => a.id)).not.toContain(request.id);
    expect(await holder.withdraw(request.id, 'expired', 'late')).toMatchObject({
      state: 'expired',
      decidedBy: null,
    });
    expect(await holder.decide('no-such-approval', 'approved', 'alice', undefined)).toEqual({
      kind: 'not-found',
    });
  }, 60_000);

  it('a request whose holder holds no node claim (it was killed) is not decided, and stays pending', async () => {
    const gone = await replica('G', 200, false);
    const decider = await replica('D2');
    const request = held('G');
    await gone.hold(request);
    expect(await decider.decide(request.id, 'approved', 'alice', undefined)).toMatchObject({
      kind: 'holder-gone',
      approval: { state: 'pending', node: 'G' },
    });
    // The holder itself may settle its own (its own replica is running when it does).
    expect(await gone.decide(request.id, 'rejected', 'alice', undefined)).toMatchObject({ kind: 'decided' });
  }, 60_000);
});

describe('the fleet database down when a command must be held', () => {
  let a: ServedGateway;
  let c: ServedGateway;

  beforeAll(async () => {
    [a, c] = await Promise.all([serve('A'), serve('C')]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a.stop(), c.stop()]);
    gateways.delete(a);
    gateways.delete(c);
  });

  it('is refused with a clear reason (fail closed), or held on the replica with approvalsWhenDown: local', async () => {
    const onA = await agent(a);
    const onC = await agent(c);
    await bed.fleetCluster.kill();
    try {
      await expect(onA.query('DELETE FROM jobs WHERE id = 8')).rejects.toThrow(
        /^agentgate: approval \w+ cancelled: the fleet database is unreachable, so no replica could approve it \(fleet\.approvalsWhenDown: closed\) \(rule deletes-need-review\)$/,
      );
      // Statements no rule holds go on as ever.
      expect((await onA.query('SELECT 1 AS ok')).rows[0]).toEqual({ ok: 1 });

      const held = onC.query('DELETE FROM jobs WHERE id = 9');
      const pending = await pendingOn(c, 'id = 9');
      expect(pending.node).toBeUndefined();
      expect(await api(c, `/${pending.id}/approve`, 'alice')).toMatchObject({
        status: 200,
        body: { outcome: 'approved', by: 'alice' },
      });
      expect((await held).rowCount).toBe(1);
      expect(c.logged('the fleet database is unreachable: holding the approval on this replica only')).toBe(
        true,
      );
    } finally {
      await bed.fleetCluster.start();
      await onA.end();
      await onC.end();
    }
    // The database is back: held commands are shared again.
    const client = await agent(c);
    try {
      const deadline = Date.now() + 30_000;
      let pending: Pending | undefined;
      let held: Promise<pg.QueryResult> | undefined;
      // The pool reconnects on its next query; until then the request is held locally, and denied to clear it.
      while (pending?.node !== 'C') {
        if (Date.now() > deadline) throw new Error('approvals not shared after the database came back');
        if (pending !== undefined) {
          expect(await api(c, `/${pending.id}/deny`, 'alice')).toMatchObject({ status: 200 });
          await expect(held).rejects.toThrow('rejected');
          await new Promise((r) => setTimeout(r, 500));
        }
        held = client.query('DELETE FROM jobs WHERE id = 10');
        pending = await pendingOn(c, 'id = 10');
      }
      // C's LISTEN connection, which holds its claim, reconnects on its own backoff: until then A answers 503.
      let decided = await api(a, `/${pending.id}/approve`, 'bob');
      while (decided.status === 503 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        decided = await api(a, `/${pending.id}/approve`, 'bob');
      }
      expect(decided).toMatchObject({ status: 200 });
      expect((await held!).rowCount).toBe(1);
    } finally {
      await client.end();
    }
  }, 120_000);
});
