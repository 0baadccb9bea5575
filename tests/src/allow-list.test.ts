/**
 * Allow-list mode (`default: deny` on a listener) in the full gateway, against real PostgreSQL (psql and
 * node-postgres), OpenSSH sshd (ssh, sftp) and dockerd (docker CLI): only what an allow rule permits runs,
 * everything else is refused as `builtin:default-deny` and changes nothing; transaction control needs no rule;
 * the Docker CLI's ping needs none either.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startDockerd, type TestDockerd } from './harness/dockerd.js';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, runPsql, startPostgres, type TestPostgres } from './harness/postgres.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

let postgres: TestPostgres;
let sshd: TestSshd;
let dockerd: TestDockerd;
let gw: TestGateway;
let keys: string;
let agentKey: { path: string; publicKey: string };
let work: string;
let dockerHost: string;
let token: string;

const DEFAULT_DENY = 'builtin:default-deny';

beforeAll(async () => {
  [postgres, sshd, dockerd] = await Promise.all([startPostgres(), startSshd(), startDockerd()]);
  await postgres.psql(['-d', 'app'], {
    input:
      'SET ROLE app; CREATE TABLE items (id int, name text); INSERT INTO items VALUES (1, $$one$$);' +
      'CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ($$s3cret$$);',
  });
  keys = mkdtempSync(join(tmpdir(), 'agentgate-allow-list-keys-'));
  agentKey = makeKeyPair(keys, 'agent');
  work = join(sshd.dir, 'work');
  mkdirSync(join(work, 'uploads'), { recursive: true });
  writeFileSync(join(work, 'notes.txt'), 'alpha\nbeta\n');
  const created = await dockerd.docker([
    'run',
    '-d',
    '--name',
    'box',
    '--network',
    'none',
    dockerd.image,
    'sleep',
    '300',
  ]);
  if (created.code !== 0) throw new Error(created.stderr);
  gw = await startTestGateway(
    `
identity:
  sshKeys: [{ name: devin, publicKey: "${agentKey.publicKey}", groups: [agents] }]
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:0
    default: deny
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${postgres.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
  - name: host
    protocol: ssh
    listen: 127.0.0.1:0
    default: deny
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: root, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
  - name: docker
    protocol: docker
    listen: 127.0.0.1:0
    default: deny
    allow: [group:agents]
    upstream: { socket: ${dockerd.socket} }
rules:
  - { name: reads, listeners: [db], match: { commands: [SELECT] }, action: allow }
  - { name: item-writes, listeners: [db], match: { commands: [INSERT, UPDATE], tables: [items] }, action: allow }
  - { name: settings, listeners: [db], match: { commands: [SET, RESET] }, action: allow }
  - { name: no-role-switch, listeners: [db], match: { commands: [SET ROLE, SET SESSION AUTHORIZATION] }, action: deny }
  - { name: no-secrets, listeners: [db], match: { tables: [secrets] }, action: deny }
  - { name: tools, listeners: [host], match: { programs: [ls, cat, grep, wc, echo] }, action: allow }
  - { name: sftp, listeners: [host], match: { programs: [sftp] }, action: allow }
  - { name: uploads, listeners: [host], match: { paths: [${join(work, 'uploads')}] }, action: allow }
  - name: docker-read
    listeners: [docker]
    match: { actions: [container.list, container.inspect, exec.start, exec.inspect, exec.resize] }
    action: allow
  - { name: exec-ls, listeners: [docker], match: { actions: [container.exec], programs: [ls, cat] }, action: allow }
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
  token = await gw.token('devin', ['agents']);
  const docker = gw.address('docker') as { port: number };
  dockerHost = `tcp://127.0.0.1:${docker.port}`;
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  await Promise.all([postgres?.stop(), sshd?.stop(), dockerd?.stop()]);
  if (keys) rmSync(keys, { recursive: true, force: true });
});

describe('allow-list mode over PostgreSQL', () => {
  const psql = (args: string[]) => {
    const addr = gw.address('db') as { host: string; port: number };
    return runPsql(addr.host, addr.port, ['-U', 'devin', '-d', 'app', '-At', ...args], {
      env: { PGPASSWORD: token },
    });
  };

  it('runs what allow rules permit, with BEGIN/COMMIT needing no rule', async () => {
    expect(await psql(['-c', 'SELECT name FROM items WHERE id = 1'])).toBe('one\n');
    await psql(['-c', 'BEGIN', '-c', "INSERT INTO items VALUES (2, 'two')", '-c', 'COMMIT']);
    await psql(['-c', "SET application_name = 'agent'", '-c', "UPDATE items SET name = 'deux' WHERE id = 2"]);
    expect(await psql(['-c', 'SELECT name FROM items ORDER BY id'])).toBe('one\ndeux\n');
  });

  it('refuses everything else with its own rule and changes nothing', async () => {
    await expect(psql(['-c', 'DELETE FROM items'])).rejects.toThrow(
      `agentgate: denied by rule ${DEFAULT_DENY} (no allow rule matches DELETE on items (listener default: deny))`,
    );
    await expect(psql(['-c', 'CREATE TABLE t2 (x int)'])).rejects.toThrow(DEFAULT_DENY);
    await expect(psql(['-c', "INSERT INTO items VALUES (9, 'x'); DROP TABLE items"])).rejects.toThrow(
      DEFAULT_DENY,
    );
    // Deny rules still apply first.
    await expect(psql(['-c', 'SET ROLE postgres'])).rejects.toThrow('denied by rule no-role-switch');
    await expect(psql(['-c', 'SELECT * FROM secrets'])).rejects.toThrow('denied by rule no-secrets');
    expect(await postgres.psql(['-d', 'app', '-At', '-c', 'SELECT count(*) FROM items'])).toBe('2\n');
  });

  it('serves a driver that wraps statements in transactions (node-postgres)', async () => {
    const addr = gw.address('db') as { host: string; port: number };
    const client = new pg.Client({ ...addr, user: 'devin', database: 'app', password: token });
    await client.connect();
    await client.query('BEGIN');
    await client.query('UPDATE items SET name = $1 WHERE id = $2', ['uno', 1]);
    await client.query('SAVEPOINT s');
    await expect(client.query('DELETE FROM items WHERE id = 1')).rejects.toMatchObject({ code: '42501' });
    await client.query('ROLLBACK TO SAVEPOINT s');
    await client.query('COMMIT');
    expect((await client.query('SELECT name FROM items WHERE id = $1', [1])).rows).toEqual([{ name: 'uno' }]);
    await client.end();
  });
});

describe('allow-list mode over SSH', () => {
  const ssh = (command: string) =>
    run('ssh', [
      ...sshClientOptions((gw.address('host') as { port: number }).port, agentKey.path),
      'devin@127.0.0.1',
      command,
    ]);

  it('runs a command line whose every program is allowed', async () => {
    const r = await ssh(`cat ${join(work, 'notes.txt')} | grep -c a`);
    expect(r.stdout.toString()).toBe('2\n');
    expect(r.code).toBe(0);
  });

  it('refuses a line with any program no rule allows, before any of it runs', async () => {
    const victim = join(work, 'victim.txt');
    writeFileSync(victim, 'keep');
    const r = await ssh(`echo first > ${join(work, 'first.txt')}; rm ${victim}`);
    expect(r.stderr).toContain(
      `agentgate: denied by rule ${DEFAULT_DENY} (no allow rule matches program rm (listener default: deny))`,
    );
    expect(r.code).toBe(126);
    expect(existsSync(victim)).toBe(true);
    expect(existsSync(join(work, 'first.txt'))).toBe(false);
    const inline = await ssh(`python3 -c 'print(1)'`);
    expect(inline.stderr).toContain(DEFAULT_DENY);
    expect(inline.code).toBe(126);
  });

  it('lets sftp write only where a paths rule allows', async () => {
    const local = join(keys, 'upload.txt');
    writeFileSync(local, 'uploaded\n');
    const batch = join(keys, 'batch');
    writeFileSync(batch, `put ${local} ${join(work, 'uploads', 'ok.txt')}\n`);
    const port = (gw.address('host') as { port: number }).port;
    const ok = await run('sftp', [
      ...sshClientOptions(port, agentKey.path).map((o) => (o === '-p' ? '-P' : o)),
      '-b',
      batch,
      'devin@127.0.0.1',
    ]);
    expect(ok.code).toBe(0);
    expect(readFileSync(join(work, 'uploads', 'ok.txt'), 'utf8')).toBe('uploaded\n');
    writeFileSync(batch, `put ${local} ${join(work, 'elsewhere.txt')}\n`);
    const refused = await run('sftp', [
      ...sshClientOptions(port, agentKey.path).map((o) => (o === '-p' ? '-P' : o)),
      '-b',
      batch,
      'devin@127.0.0.1',
    ]);
    expect(refused.code).not.toBe(0);
    expect(existsSync(join(work, 'elsewhere.txt'))).toBe(false);
  });
});

describe('allow-list mode over the Docker API', () => {
  const docker = (args: string[]) => dockerd.docker(args, { host: dockerHost, token });

  it('runs the allowed calls (the CLI ping needs no rule)', async () => {
    const ps = await docker(['ps', '--format', '{{.Names}}']);
    expect(ps).toMatchObject({ code: 0, stdout: 'box\n' });
    const ls = await docker(['exec', 'box', 'ls', '/bin/busybox']);
    expect(ls).toMatchObject({ code: 0, stdout: '/bin/busybox\n' });
  });

  it('refuses every other call, whatever program or action it carries', async () => {
    const rm = await docker(['exec', 'box', 'rm', '/bin/busybox']);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toContain(
      `agentgate: denied by rule ${DEFAULT_DENY} (no allow rule matches program rm (listener default: deny))`,
    );
    const remove = await docker(['rm', '-f', 'box']);
    expect(remove.stderr).toContain(`no allow rule matches container.remove`);
    const create = await docker(['run', '--rm', '--network', 'none', dockerd.image, 'true']);
    expect(create.stderr).toContain('no allow rule matches container.create');
    const version = await docker(['version', '--format', '{{.Server.Version}}']);
    expect(version.code).not.toBe(0);
    expect(version.stderr).toContain('no allow rule matches system.version');
    const still = await dockerd.docker(['exec', 'box', 'ls', '/bin/busybox']);
    expect(still.stdout).toBe('/bin/busybox\n');
  });
});
