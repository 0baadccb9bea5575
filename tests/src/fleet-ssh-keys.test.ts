/**
 * SSH key registrations shared by two real `agentgate serve` replicas through one fleet database (its own
 * PostgreSQL cluster): a key registered with `agentgate ssh-login` through B lets the real OpenSSH client in through
 * A; revoking it through A's API ends the agent's live connection on B within seconds and refuses new ones on both;
 * with the fleet database stopped, ssh-login is refused, known keys keep working and a revocation through A reaches
 * B once the database is back; a restarted replica takes the registrations from the fleet; another identity cannot
 * take a registered key; the gateways' role cannot delete registrations or undo a revocation; and a reload that
 * removes the registering token revokes the key on every replica.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '@agentgate/core';
import { FleetDatabase, FleetSshKeys } from '@agentgate/fleet';
import { runCli } from './harness/cli.js';
import {
  fleetQuery,
  GATEWAY_ROLE_PASSWORD,
  startFleetDatabase,
  type TestFleetDatabase,
} from './harness/fleet.js';
import { baseConfigYaml, listenerYaml, serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

const TOKEN = 'fleet-ssh-keys-token-3e9a';
/** A second identity's static token (eve, group agents). */
const EVE_TOKEN = 'fleet-ssh-keys-eve-token-71c4';
/** How long a revocation through one replica may take to end a connection on another (NOTIFY, or the 3 s poll). */
const REVOCATION_BOUND_MS = 5_000;

let sshd: TestSshd;
let fleet: TestFleetDatabase;
let dir: string;
const config: Record<'A' | 'B', string> = { A: '', B: '' };
const replicas: Partial<Record<'A' | 'B', ServedGateway>> = {};

function replicaConfig(node: 'A' | 'B', withEve = true): string {
  const home = join(dir, node);
  const fleetSection = fleet.configYaml(node, home);
  const file = join(home, 'agentgate.yaml');
  writeFileSync(
    file,
    baseConfigYaml(home, { token: TOKEN }).replace(
      / {2}tokens: \[(.*)\]\n/,
      (_all, devin: string) =>
        `  tokens:\n  - ${devin}\n` +
        (withEve
          ? `  - { name: eve, sha256: "${createHash('sha256').update(EVE_TOKEN).digest('hex')}", groups: [agents] }\n`
          : ''),
    ) +
      'listeners:\n' +
      listenerYaml.ssh('shell', sshd, home) +
      fleetSection,
  );
  return file;
}

function replica(node: 'A' | 'B'): ServedGateway {
  const gateway = replicas[node];
  if (gateway === undefined) throw new Error(`replica ${node} is not running`);
  return gateway;
}

async function sshLogin(node: 'A' | 'B', keyPath: string, token = TOKEN): Promise<string> {
  const login = await runCli([
    'ssh-login',
    '--admin',
    replica(node).admin,
    '--token',
    token,
    '--key',
    `${keyPath}.pub`,
    '--ttl',
    '1h',
    '--json',
  ]);
  expect(login.stderr).toBe('');
  expect(login.code).toBe(0);
  return (JSON.parse(login.stdout) as { fingerprint: string }).fingerprint;
}

async function listedOn(node: 'A' | 'B', token = TOKEN): Promise<string[]> {
  const res = await fetch(`${replica(node).admin}/api/ssh-keys`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return ((await res.json()) as { fingerprint: string }[]).map((r) => r.fingerprint);
}

/** Wait until `condition` holds; resolves with how long that took. */
async function within(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

function sshExec(node: 'A' | 'B', keyPath: string, command: string) {
  return run('ssh', [...sshClientOptions(replica(node).port('shell'), keyPath), 'agent@127.0.0.1', command]);
}

/** An SSH session through `node` that prints `started` and would run for a minute. */
function liveSession(node: 'A' | 'B', keyPath: string) {
  const child = spawn(
    'ssh',
    [
      ...sshClientOptions(replica(node).port('shell'), keyPath),
      'agent@127.0.0.1',
      'echo started; sleep 60; echo finished',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  return {
    started: within(async () => output === 'started\n', 20_000, 'the live session starting'),
    exited: new Promise<number | null>((resolve) => child.once('close', resolve)),
    output: () => output,
    exitCode: () => child.exitCode,
  };
}

beforeAll(async () => {
  [sshd, fleet] = await Promise.all([startSshd(), startFleetDatabase()]);
  dir = mkdtempSync(join(tmpdir(), 'agentgate-fleet-keys-'));
  config.A = replicaConfig('A');
  config.B = replicaConfig('B');
  await fleet.migrate(config.A);
  [replicas.A, replicas.B] = await Promise.all([serveProcess(config.A), serveProcess(config.B)]);
}, 120_000);

afterAll(async () => {
  for (const gateway of Object.values(replicas)) gateway?.process.kill('SIGKILL');
  await Promise.all([sshd?.stop(), fleet?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('SSH key registrations across a fleet', () => {
  it('ssh-login through B lets the key in through A; revocation through A ends its connection on B', async () => {
    const key = makeKeyPair(dir, 'agent-key');
    expect((await sshExec('A', key.path, 'echo before')).code).toBe(255);

    const fingerprint = await sshLogin('B', key.path);
    // B's NOTIFY reaches A at once; the bound allows for a missed notification and the poll.
    await within(async () => (await listedOn('A')).includes(fingerprint), 5_000, 'A learning of the key');
    const onA = await sshExec('A', key.path, 'echo through-a');
    expect(onA.stderr).not.toContain('Permission denied');
    expect(onA.stdout.toString()).toBe('through-a\n');
    expect((await sshExec('B', key.path, 'echo through-b')).stdout.toString()).toBe('through-b\n');

    // A live connection on B, then the revocation through A.
    const live = liveSession('B', key.path);
    await live.started;
    const sessionEnds = replica('B').nextLog(
      (l) => String(l['msg']).startsWith('session ends: the credential was revoked'),
      REVOCATION_BOUND_MS + 10_000,
    );

    const revokedAt = Date.now();
    const revoked = await fetch(`${replica('A').admin}/api/ssh-keys/${encodeURIComponent(fingerprint)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(revoked.status).toBe(200);
    const code = await live.exited;
    const tookMs = Date.now() - revokedAt;
    expect(tookMs).toBeLessThan(REVOCATION_BOUND_MS);
    expect(code).not.toBe(0);
    expect(live.output()).toBe('started\n');
    expect(String((await sessionEnds)['msg'])).toContain(
      'revoked on another replica: by devin through replica A',
    );

    for (const node of ['A', 'B'] as const) {
      const refused = await sshExec(node, key.path, 'echo after-revocation');
      expect(refused.code).toBe(255);
      expect(refused.stdout.toString()).toBe('');
      expect(await listedOn(node)).not.toContain(fingerprint);
    }
    const rows = await fleetQuery<{ node: string; revoked_by: string; revoked_node: string }>(
      fleet.url('postgres'),
      'SELECT node, revoked_by, revoked_node FROM agentgate.ssh_key_registrations WHERE fingerprint = $1',
      [fingerprint],
    );
    expect(rows.rows).toEqual([{ node: 'B', revoked_by: 'devin', revoked_node: 'A' }]);

    // The key may be registered again after its revocation (through either replica).
    await sshLogin('A', key.path);
    await within(async () => (await listedOn('B')).includes(fingerprint), 5_000, 'B learning of the key');
    expect((await sshExec('B', key.path, 'echo again')).stdout.toString()).toBe('again\n');
  }, 120_000);

  it('with the fleet database away: ssh-login is refused, known keys keep working, a revocation through A reaches B when it is back', async () => {
    const key = makeKeyPair(dir, 'outage-key');
    const fingerprint = await sshLogin('A', key.path);
    await within(async () => (await listedOn('B')).includes(fingerprint), 5_000, 'B learning of the key');
    const live = liveSession('B', key.path);
    await live.started;

    await fleet.cluster.kill();
    const refused = await runCli([
      'ssh-login',
      '--admin',
      replica('B').admin,
      '--token',
      TOKEN,
      '--key',
      `${makeKeyPair(dir, 'refused-key').path}.pub`,
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      'ssh-login failed: HTTP 503: the fleet database could not take the change',
    );
    expect(refused.stderr).toContain('nothing changed');
    // Registrations each replica holds keep working.
    expect((await sshExec('A', key.path, 'echo cached')).stdout.toString()).toBe('cached\n');

    const revoked = await fetch(`${replica('A').admin}/api/ssh-keys/${encodeURIComponent(fingerprint)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(revoked.status).toBe(503);
    expect(((await revoked.json()) as { message: string }).message).toContain(
      'the key is revoked on this replica; the other replicas accept it until the revocation reaches the fleet database',
    );
    expect((await sshExec('A', key.path, 'echo refused')).code).toBe(255);
    // B cannot learn of it while the database is away: its connection lives on (the window docs/configuration.md states).
    await new Promise((r) => setTimeout(r, 1000));
    expect(live.exitCode()).toBeNull();

    await fleet.cluster.start();
    const backAt = Date.now();
    const code = await live.exited;
    // A writes the revocation at its next poll (3 s), and B reads it at its NOTIFY or its own next poll.
    expect(Date.now() - backAt).toBeLessThan(10_000);
    expect(code).not.toBe(0);
    expect(live.output()).toBe('started\n');
    expect((await sshExec('B', key.path, 'echo refused')).code).toBe(255);
    const rows = await fleetQuery<{ revoked_by: string; revoked_node: string }>(
      fleet.url('postgres'),
      'SELECT revoked_by, revoked_node FROM agentgate.ssh_key_registrations WHERE fingerprint = $1',
      [fingerprint],
    );
    expect(rows.rows).toEqual([{ revoked_by: 'devin', revoked_node: 'A' }]);
  }, 120_000);

  it('a restarted replica takes the registrations from the fleet', async () => {
    const key = makeKeyPair(dir, 'restart-key');
    const fingerprint = await sshLogin('B', key.path);
    await replica('A').stop();
    replicas.A = await serveProcess(config.A);
    expect(replica('A').logs).toContainEqual(
      expect.objectContaining({ msg: 'ssh key registrations read from the fleet' }),
    );
    expect(await listedOn('A')).toContain(fingerprint);
    expect((await sshExec('A', key.path, 'echo after-restart')).stdout.toString()).toBe('after-restart\n');
  }, 120_000);

  it('another identity cannot take a key registered through the other replica', async () => {
    const key = makeKeyPair(dir, 'contested-key');
    const fingerprint = await sshLogin('B', key.path);
    const asEve = await fetch(`${replica('A').admin}/api/ssh-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${EVE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ publicKey: readFileSync(`${key.path}.pub`, 'utf8'), ttl: '1h' }),
    });
    expect(asEve.status).toBe(409);
    expect(((await asEve.json()) as { message: string }).message).toBe(
      `ssh key ${fingerprint} is registered by another identity`,
    );

    // The database's own check, whatever a replica holds in memory: as the gateways' role, under the key's lock.
    const db = await FleetDatabase.open({ url: fleet.url('gw', GATEWAY_ROLE_PASSWORD) });
    try {
      const store = new FleetSshKeys({
        db,
        notifications: db.notifications(silentLogger),
        node: 'probe',
        log: silentLogger,
      });
      const publicKey = readFileSync(`${key.path}.pub`, 'utf8').trim();
      const registration = {
        publicKey,
        groups: ['agents'],
        registeredAt: Date.now(),
        expiresAt: Date.now() + 60_000,
      };
      await expect(store.saveRegistration({ ...registration, identity: 'eve' })).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      await store.saveRegistration({ ...registration, identity: 'devin' }); // a renewal by the holder
      const latest = (await store.read()).find((r) => r.publicKey === publicKey);
      expect(latest).toMatchObject({ identity: 'devin', expiresAt: registration.expiresAt });
    } finally {
      await db.close();
    }
    // The renewal reaches both replicas (through the fleet's notifications, so not at once under load): the key
    // still works, as devin.
    await within(
      async () => (await listedOn('A')).includes(fingerprint),
      15_000,
      'the registration reaching A',
    );
    const renewed = await sshExec('A', key.path, 'echo renewed');
    // A failure shows the client's own words: "Permission denied" is not the same bug as a timeout.
    const stderr = renewed.code === 0 ? {} : { stderr: renewed.stderr.toString() };
    expect({ code: renewed.code, stdout: renewed.stdout.toString(), ...stderr }).toEqual({
      code: 0,
      stdout: 'renewed\n',
    });
  }, 60_000);

  it("the gateways' role cannot delete registrations, change them, or undo a revocation", async () => {
    const gw = fleet.url('gw', GATEWAY_ROLE_PASSWORD);
    const count = async (): Promise<number> =>
      (
        await fleetQuery<{ n: number }>(
          fleet.url('postgres'),
          'SELECT count(*)::int AS n FROM agentgate.ssh_key_registrations',
        )
      ).rows[0]!.n;
    const before = await count();
    expect(before).toBeGreaterThan(0);
    for (const statement of [
      'DELETE FROM agentgate.ssh_key_registrations',
      'TRUNCATE agentgate.ssh_key_registrations',
      "UPDATE agentgate.ssh_key_registrations SET identity = 'mallory'",
      "UPDATE agentgate.ssh_key_registrations SET expires_at = now() + interval '1 year'",
      'DROP TABLE agentgate.ssh_key_registrations',
    ])
      await expect(fleetQuery(gw, statement)).rejects.toThrow(/permission denied|must be owner/);
    await expect(
      fleetQuery(
        gw,
        'UPDATE agentgate.ssh_key_registrations SET revoked_at = NULL, revoked_by = NULL, revoked_node = NULL WHERE revoked_at IS NOT NULL',
      ),
    ).rejects.toThrow(/a revocation cannot be changed/);
    expect(await count()).toBe(before);
  }, 60_000);

  it('a reload that removes the token a key was registered with revokes the key on every replica', async () => {
    const key = makeKeyPair(dir, 'eve-key');
    const fingerprint = await sshLogin('B', key.path, EVE_TOKEN);
    await within(
      async () => (await listedOn('A', EVE_TOKEN)).includes(fingerprint),
      5_000,
      'A learning of the key',
    );
    const live = liveSession('B', key.path);
    await live.started;

    replicaConfig('A', false); // rewritten without eve's token; B's configuration still has it
    const reloaded = replica('A').nextLog((l) => l['msg'] === 'configuration reloaded', 15_000);
    replica('A').process.kill('SIGHUP');
    expect(await reloaded).toMatchObject({
      identity: { tokensRemoved: ['eve'], registrationsRevoked: [fingerprint] },
    });
    const reloadedAt = Date.now();
    expect(await live.exited).not.toBe(0);
    expect(Date.now() - reloadedAt).toBeLessThan(REVOCATION_BOUND_MS);
    expect(live.output()).toBe('started\n');
    expect((await sshExec('B', key.path, 'echo refused')).code).toBe(255);
    const rows = await fleetQuery<{ revoked_by: string; revoked_node: string; revoked_reason: string }>(
      fleet.url('postgres'),
      'SELECT revoked_by, revoked_node, revoked_reason FROM agentgate.ssh_key_registrations WHERE fingerprint = $1',
      [fingerprint],
    );
    expect(rows.rows).toEqual([
      {
        revoked_by: 'reload',
        revoked_node: 'A',
        revoked_reason:
          'the credential that registered the key was removed, or the key configured, by a reload',
      },
    ]);
  }, 60_000);
});
