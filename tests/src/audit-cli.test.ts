/**
 * The auditor's and the operator's command line against a store a real `agentgate serve` wrote (PostgreSQL and
 * SSH sessions, a denied statement, a rejected and an expired approval): the read-side commands work from the store
 * alone or from a configuration whose other sections they cannot satisfy, verify checks signatures with public
 * keys only and never creates a key, and the output behaves in pipes and terminals.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './harness/cli.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';
import { serveProcess, type ServedGateway } from './harness/serve.js';
import { makeKeyPair, run, sshClientOptions, startSshd, type TestSshd } from './harness/sshd.js';

// Every step runs `agentgate` as its own process, a few seconds each on a loaded machine.
jest.setTimeout(300_000);

const TOKEN = 'audit-test-token-5c0b1e';
const ALICE = 'alice-approver-token-83d2';
const agentgateBin = join(repoRoot, 'bin', 'agentgate');

let postgres: TestPostgres;
let sshd: TestSshd;
let dir: string;
let gateway: ServedGateway;
let configFile: string;
/** Names the same store and signing key, plus sections an auditor cannot satisfy. */
let auditorConfig: string;
let storePath: string;
let jwksFile: string;
const ids: { query: string; rejected: string; expired: string; ssh: string } = {
  query: '',
  rejected: '',
  expired: '',
  ssh: '',
};

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `agentgate ARGS` with stdin `input` and an environment without AGENTGATE_TOKEN unless given. */
async function agentgate(
  args: string[],
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<Result> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (options.env?.['AGENTGATE_TOKEN'] === undefined) delete env['AGENTGATE_TOKEN'];
  const result = await run(process.execPath, [agentgateBin, ...args], {
    env,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
  return { code: result.code, stdout: result.stdout.toString('utf8'), stderr: result.stderr };
}

/** psql through the gateway as devin; no ON_ERROR_STOP, so a refused statement does not stop the script. */
function psql(sql: string): Promise<Result> {
  return run(
    'psql',
    ['-X', '-h', '127.0.0.1', '-p', String(gateway.port('db')), '-U', 'devin', '-d', 'app'],
    {
      input: sql,
      env: { ...process.env, PGPASSWORD: TOKEN, PGSSLMODE: 'disable' },
    },
  ).then((r) => ({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }));
}

async function sessionsJson(
  args: string[] = [],
): Promise<{ id: string; protocol: string; denied: number }[]> {
  const result = await agentgate(['sessions', 'list', '--store', storePath, '--json', ...args]);
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as { id: string; protocol: string; denied: number }[];
}

async function pendingApproval(): Promise<string> {
  for (let i = 0; i < 300; i++) {
    const list = await fetch(`${gateway.admin}/api/approvals`, {
      headers: { authorization: `Bearer ${ALICE}` },
    });
    const pending = (await list.json()) as { id: string }[];
    if (pending[0]) return pending[0].id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no approval became pending');
}

/** The served configuration, with `approvals.timeout` as given. */
function writeConfig(approvalTimeout: string): void {
  writeFileSync(configFile, configText.replace('APPROVAL_TIMEOUT', approvalTimeout));
}
let configText = '';

beforeAll(async () => {
  [postgres, sshd] = await Promise.all([startPostgres(), startSshd()]);
  dir = mkdtempSync(join(tmpdir(), 'agentgate-audit-'));
  storePath = join(dir, 'transcripts');
  await postgres.psql(['-d', 'app'], { input: 'CREATE TABLE t (id int); GRANT ALL ON t TO app;' });
  const agentKey = makeKeyPair(dir, 'agent');
  writeFileSync(join(dir, 'alice.token'), `${ALICE}\n`);

  // The service tokens' hashes come from `agentgate token hash`, from stdin and from a file with a newline.
  const devinHash = await agentgate(['token', 'hash'], { input: `${TOKEN}\n` });
  const aliceHash = await agentgate(['token', 'hash', '--token-file', join(dir, 'alice.token')]);
  expect(devinHash).toMatchObject({ code: 0, stderr: '' });
  expect(devinHash.stdout).toBe(createHash('sha256').update(TOKEN).digest('hex') + '\n');

  configFile = join(dir, 'agentgate.yaml');
  configText = `store: { path: ${storePath} }
signingKey: ${join(dir, 'signing-key.json')}
admin: { listen: "127.0.0.1:0" }
identity:
  tokens:
    - { name: devin, sha256: "${devinHash.stdout.trim()}", groups: [agents] }
    - { name: alice, sha256: "${aliceHash.stdout.trim()}", groups: [dba] }
  sshKeys: [{ name: devin, publicKey: "${agentKey.publicKey}", groups: [agents] }]
approvals: { timeout: APPROVAL_TIMEOUT, approvers: [group:dba] }
listeners:
  - name: db
    protocol: postgres
    listen: "127.0.0.1:0"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${postgres.port}, user: app, password: "${PASSWORD}", database: app }
  - name: shell
    protocol: ssh
    listen: "127.0.0.1:0"
    hostKey: ${join(dir, 'ssh_host_ed25519_key')}
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${sshd.user}, privateKey: ${sshd.upstreamKeyPath}, hostKey: "${sshd.hostKeyLine}" }
rules:
  - { name: no-drops, protocol: postgres, match: { commands: [DROP] }, action: deny }
  - { name: review-deletes, protocol: postgres, match: { commands: [DELETE] }, action: approve }
`;
  writeConfig('120s');
  auditorConfig = join(dir, 'auditor.yaml');
  writeFileSync(
    auditorConfig,
    `store: { path: ./transcripts }
signingKey: ./signing-key.json
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:15432
    allow: [group:agents]
    upstream: { host: db.internal, user: app, password: "\${env:AGENTGATE_AUDIT_TEST_UNSET}" }
    tls: { cert: ./missing-cert.pem, key: ./missing-key.pem }
  - name: shell
    protocol: ssh
    listen: 127.0.0.1:2222
    allow: [group:agents]
    upstream: { host: build, user: deploy, privateKey: ./missing-deploy-key, hostKey: "ssh-ed25519 AAAA" }
`,
  );

  gateway = await serveProcess(configFile);
  // A token hashed by `token hash` is what the gateway accepts: every psql below logs in with it.
  const big = Array.from(
    { length: 3 },
    () => "SELECT repeat('x', 2000) AS filler FROM generate_series(1, 100);",
  ).join('\n');
  const query = await psql(`SELECT 1 AS one;\n${big}\nDROP TABLE t;\n`);
  expect(query.stdout).toContain(' one');
  expect(query.stderr).toContain('denied by rule no-drops');

  const rejected = psql('DELETE FROM t;\n');
  const approval = await pendingApproval();
  const deny = await agentgate([
    'approvals',
    'deny',
    approval,
    '--admin',
    gateway.admin,
    '--token-file',
    join(dir, 'alice.token'),
    '--reason',
    'not today',
  ]);
  expect(deny).toMatchObject({ code: 0, stdout: `${approval} rejected by alice\n` });
  expect((await rejected).stderr).toContain('rejected: not today');

  // Expiry: the same configuration with a short approval timeout.
  await gateway.stop();
  writeConfig('1s');
  gateway = await serveProcess(configFile);
  const expired = await psql('DELETE FROM t;\n');
  expect(expired.stderr).toMatch(/expired/);

  const ssh = await run('ssh', [
    ...sshClientOptions(gateway.port('shell'), agentKey.path),
    'devin@127.0.0.1',
    'echo hello-from-ssh',
  ]);
  expect(ssh.stdout.toString()).toBe('hello-from-ssh\n');

  const jwks = await fetch(`${gateway.admin}/.well-known/jwks.json`);
  jwksFile = join(dir, 'gateway-jwks.json');
  writeFileSync(jwksFile, await jwks.text());
  await gateway.stop();

  const list = await sessionsJson();
  const pg = list.filter((s) => s.protocol === 'postgres');
  expect(pg).toHaveLength(3);
  [ids.query, ids.rejected, ids.expired] = pg.map((s) => s.id) as [string, string, string];
  ids.ssh = list.find((s) => s.protocol === 'ssh')!.id;
}, 300_000);

afterAll(async () => {
  if (gateway) gateway.process.kill('SIGKILL');
  await Promise.all([postgres?.stop(), sshd?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("reading the store without the gateway's secrets", () => {
  it('sessions list works from --store alone and from a config whose other sections it cannot satisfy', async () => {
    const fromStore = await agentgate(['sessions', 'list', '--store', storePath]);
    const fromConfig = await agentgate(['sessions', 'list', '--config', auditorConfig]);
    expect(fromStore).toMatchObject({ code: 0, stderr: '' });
    expect(fromConfig).toEqual(fromStore);
    expect(fromStore.stdout.split('\n')[0]).toMatch(
      /^ID +LISTENER +PROTOCOL +IDENTITY +STARTED +ENDED +COMMANDS +DENIED$/,
    );
    for (const id of Object.values(ids)) expect(fromStore.stdout).toContain(id);
    const show = await agentgate(['sessions', 'show', ids.ssh, '--config', auditorConfig, '--json']);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: ids.ssh, protocol: 'ssh' });
    const replay = await agentgate(['replay', ids.query, '--store', storePath]);
    expect(replay.stdout).toContain('DENIED by rule no-drops');
    // No signing key appeared anywhere for the auditor's config to have found.
    expect(existsSync(join(dir, 'transcripts', 'signing-key.json'))).toBe(false);
  });

  it('counts rejected and expired approvals as denied, and filters by time, listener, identity and denials', async () => {
    const all = await sessionsJson();
    const denied = Object.fromEntries(all.map((s) => [s.id, s.denied]));
    expect(denied).toEqual({ [ids.query]: 1, [ids.rejected]: 1, [ids.expired]: 1, [ids.ssh]: 0 });
    expect((await sessionsJson(['--denied'])).map((s) => s.id)).toEqual([
      ids.query,
      ids.rejected,
      ids.expired,
    ]);
    expect((await sessionsJson(['--protocol', 'ssh'])).map((s) => s.id)).toEqual([ids.ssh]);
    expect((await sessionsJson(['--listener', 'db'])).map((s) => s.id)).toEqual([
      ids.query,
      ids.rejected,
      ids.expired,
    ]);
    expect(await sessionsJson(['--identity', 'alice'])).toEqual([]);
    expect((await sessionsJson(['--limit', '2'])).map((s) => s.id)).toEqual([ids.expired, ids.ssh]);
    expect((await sessionsJson(['--since', '1h', '--limit', '1'])).map((s) => s.id)).toEqual([ids.ssh]);
    expect(await sessionsJson(['--until', '1h'])).toEqual([]);
    const startedAt = (
      JSON.parse(
        (await agentgate(['sessions', 'show', ids.expired, '--store', storePath, '--json'])).stdout,
      ) as { startedAt: number }
    ).startedAt;
    expect((await sessionsJson(['--since', new Date(startedAt).toISOString()])).map((s) => s.id)).toEqual([
      ids.expired,
      ids.ssh,
    ]);
    expect((await sessionsJson(['--until', new Date(startedAt).toISOString()])).map((s) => s.id)).toEqual([
      ids.query,
      ids.rejected,
    ]);
    const bad = await agentgate(['sessions', 'list', '--store', storePath, '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since: expected an ISO date or time');
  });

  it('verify checks signatures with public keys: --jwks (file or URL), the signing key file, or the store alone', async () => {
    const withJwks = await agentgate(['verify', '--config', auditorConfig, '--jwks', jwksFile, '--json']);
    expect(withJwks.code).toBe(0);
    const report = JSON.parse(withJwks.stdout) as {
      ok: boolean;
      checkpoints: number;
      keys: { source: string; verified: number }[];
    };
    expect(report.ok).toBe(true);
    expect(report.keys).toEqual([expect.objectContaining({ source: 'jwks', verified: report.checkpoints })]);

    const storeAlone = await agentgate(['verify', '--store', storePath]);
    expect(storeAlone.code).toBe(0);
    expect(storeAlone.stdout).toMatch(/^OK: 4 session\(s\)/);
    expect(storeAlone.stdout).toContain('(store, ');
    expect(storeAlone.stdout).toContain(
      'note: signatures were checked against public keys recorded in the store itself',
    );

    const withKeyFile = await agentgate(['verify', '--config', configFile]);
    expect(withKeyFile.code).toBe(0);
    expect(withKeyFile.stdout).toContain('(signingKey, ');
    expect(withKeyFile.stdout).not.toContain('note:');

    // A JWKS that does not hold the gateway's key: each checkpoint names the kid it was signed with.
    const kid = (JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: { kid: string }[] }).keys[0]!.kid;
    await agentgate([
      'keys',
      'generate',
      '--out',
      join(dir, 'other.json'),
      '--jwks',
      join(dir, 'other-jwks.json'),
    ]);
    const wrong = await agentgate(['verify', '--store', storePath, '--jwks', join(dir, 'other-jwks.json')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^BROKEN/);
    expect(wrong.stdout).toContain(`unknown-key: checkpoint ${ids.query}/`);
    expect(wrong.stdout).toContain(
      `signed by key ${kid}, which is not in --jwks ${join(dir, 'other-jwks.json')}`,
    );
  });

  it('verify with a missing signingKey file creates nothing and fails naming the key', async () => {
    const missingKey = join(dir, 'elsewhere', 'signing-key.json');
    const config = join(dir, 'missing-key.yaml');
    writeFileSync(config, `store: { path: ${storePath} }\nsigningKey: ${missingKey}\n`);
    const result = await agentgate(['verify', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      `agentgate: signingKey ${missingKey} does not exist (verify never creates a key)`,
    );
    const kid = (JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: { kid: string }[] }).keys[0]!.kid;
    expect(result.stderr).toContain(`the store records key ${kid}`);
    expect(existsSync(missingKey)).toBe(false);
    expect(existsSync(join(dir, 'elsewhere'))).toBe(false);
  });

  it("verify --jwks takes the gateway's JWKS URL", async () => {
    const served = await serveProcess(configFile);
    try {
      const result = await agentgate([
        'verify',
        '--store',
        join(dir, 'transcripts'),
        '--jwks',
        `${served.admin}/.well-known/jwks.json`,
      ]);
      // The running gateway holds the store: the read-only check runs beside it.
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^OK: /);
    } finally {
      await served.stop();
    }
  });
});

describe('exports and output', () => {
  it('refuses asciicast for a session with no terminal output, and writes it for SSH', async () => {
    const pg = await agentgate(['export', ids.query, '--store', storePath, '--format', 'asciicast']);
    expect(pg.code).toBe(1);
    expect(pg.stdout).toBe('');
    expect(pg.stderr).toBe(
      `agentgate: session ${ids.query} (postgres) has no terminal output to record as asciicast: use --format jsonl, or agentgate replay ${ids.query}\n`,
    );
    const ssh = await agentgate(['export', ids.ssh, '--store', storePath, '--format', 'asciicast']);
    expect(ssh.code).toBe(0);
    const [header, ...frames] = ssh.stdout.trimEnd().split('\n');
    expect(JSON.parse(header!)).toMatchObject({ version: 2, width: 80, height: 24 });
    // The exec's command line comes first, as the prompt a terminal would have shown.
    expect(frames.map((f) => (JSON.parse(f) as [number, string, string])[2]).join('')).toBe(
      '$ echo hello-from-ssh\r\nhello-from-ssh\n',
    );
  });

  it('export into a pipe that closes early (| head -c 10) exits quietly', async () => {
    const full = await agentgate(['export', ids.query, '--store', storePath, '--format', 'jsonl']);
    expect(full.stdout.length).toBeGreaterThan(256 * 1024); // more than a pipe holds
    const piped = await run('bash', [
      '-c',
      `set -o pipefail; "${process.execPath}" "${agentgateBin}" export ${ids.query} --store "${storePath}" --format jsonl | head -c 10`,
    ]);
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
    expect(piped.stdout.toString()).toBe(full.stdout.slice(0, 10));
  });

  it('prints colour only to a terminal, and not with NO_COLOR', async () => {
    const replay = `"${process.execPath}" "${agentgateBin}" replay ${ids.ssh} --store "${storePath}" --speed 0`;
    const piped = await agentgate(['replay', ids.ssh, '--store', storePath, '--speed', '0']);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain('command: echo hello-from-ssh');
    expect(piped.stdout).not.toContain('\x1b[');
    // `script` gives the command a terminal.
    const env = { ...process.env };
    delete env['NO_COLOR'];
    const terminal = await run('script', ['-qec', replay, '/dev/null'], { env });
    expect(terminal.stdout.toString()).toContain('\x1b[2m');
    const noColor = await run('script', ['-qec', replay, '/dev/null'], { env: { ...env, NO_COLOR: '1' } });
    expect(noColor.stdout.toString()).toContain('command: echo hello-from-ssh');
    expect(noColor.stdout.toString()).not.toContain('\x1b[2m');
  });

  it('--version prints the version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages', 'cli', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(await agentgate(['--version'])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });
});

describe('tokens and keys on the command line', () => {
  it('approvals take the token from AGENTGATE_TOKEN or --token-file, and say so when there is none', async () => {
    const served = await serveProcess(configFile);
    try {
      const fromEnv = await agentgate(['approvals', 'list', '--admin', served.admin], {
        env: { AGENTGATE_TOKEN: ALICE },
      });
      expect(fromEnv).toMatchObject({ code: 0, stdout: 'no pending approvals\n' });
      const fromStdin = await agentgate(['approvals', 'list', '--admin', served.admin, '--token-file', '-'], {
        input: `${ALICE}\n`,
      });
      expect(fromStdin).toMatchObject({ code: 0, stdout: 'no pending approvals\n' });
      const none = await agentgate(['approvals', 'list', '--admin', served.admin]);
      expect(none.code).toBe(2);
      expect(none.stderr).toBe(
        'agentgate: no token: give --token-file FILE (- for stdin) or set AGENTGATE_TOKEN\n',
      );
      const wrong = await agentgate(['approvals', 'list', '--admin', served.admin], {
        env: { AGENTGATE_TOKEN: 'nope' },
      });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/^agentgate: HTTP 401/);
    } finally {
      await served.stop();
    }
  });

  it('token hash refuses a token that clients could not send as it is', async () => {
    const spaced = await agentgate(['token', 'hash'], { input: ' padded-token\n' });
    expect(spaced).toMatchObject({ code: 1, stdout: '' });
    expect(spaced.stderr).toBe(
      'agentgate: stdin: the token has leading or trailing whitespace; tokens are sent as one word\n',
    );
    expect((await agentgate(['token', 'hash'], { input: '' })).stderr).toBe(
      'agentgate: stdin: the token is empty\n',
    );
    // \r\n (a file written on Windows) is a line ending too.
    expect((await agentgate(['token', 'hash'], { input: `${TOKEN}\r\n` })).stdout).toBe(
      createHash('sha256').update(TOKEN).digest('hex') + '\n',
    );
  });

  it('keys generate refuses to overwrite without --force', async () => {
    const out = join(dir, 'idp.json');
    const jwks = join(dir, 'idp-jwks.json');
    expect((await agentgate(['keys', 'generate', '--out', out, '--jwks', jwks])).code).toBe(0);
    const before = readFileSync(out, 'utf8');
    const refused = await agentgate(['keys', 'generate', '--out', join(dir, 'fresh.json'), '--jwks', jwks]);
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toBe(`agentgate: ${jwks} exists; give --force to overwrite it\n`);
    // Nothing was written, not even the file that did not exist.
    expect(existsSync(join(dir, 'fresh.json'))).toBe(false);
    const forced = await agentgate(['keys', 'generate', '--out', out, '--jwks', jwks, '--force']);
    expect(forced).toMatchObject({ code: 0, stdout: `wrote ${out} and ${jwks}\n` });
    expect(readFileSync(out, 'utf8')).not.toBe(before);
  });
});
