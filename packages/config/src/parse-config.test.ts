import { generateKeyPairSync, createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DockerListenerConfig, PostgresListenerConfig, SshListenerConfig } from '@agentgate/core';
import { ConfigError, KNOWN_DETECTORS, didYouMean, loadConfig, parseConfig } from './index.js';

/** A real OpenSSH public key line: RFC 4253 §6.6 blob = string "ssh-ed25519" + string key. */
function sshEd25519PublicKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const field = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64')} test@host`;
}

let dir: string;
let file: string;
const hostKeyLine = sshEd25519PublicKey();

/** The smallest valid config, plus `extra` YAML appended at the top level. */
const minimal = (extra = ''): string =>
  `store: { path: ./data/transcripts }\nsigningKey: ./data/signing-key.json\n${extra}`;

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): { path: string; message: string }[] {
  try {
    parseConfig(text, file, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const configError = err as ConfigError;
    expect(configError.code).toBe('CONFIG_INVALID');
    // One line per issue, each `<file>: <path>: …`.
    expect(configError.message.split('\n')).toHaveLength(configError.issues.length);
    for (const line of configError.message.split('\n')) expect(line.startsWith(`${file}: `)).toBe(true);
    return [...configError.issues];
  }
  throw new Error('expected a ConfigError');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentgate-config-'));
  file = join(dir, 'agentgate.yaml');
  mkdirSync(join(dir, 'tls'));
  writeFileSync(join(dir, 'deploy_key'), 'not checked here\n');
  writeFileSync(join(dir, 'tls', 'cert.pem'), 'x');
  writeFileSync(join(dir, 'tls', 'key.pem'), 'x');
  writeFileSync(join(dir, 'jwks.json'), '{"keys":[]}');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseConfig', () => {
  it('loads the SPEC §3 example (placeholders filled in) from a file', async () => {
    const spec = `
store:
  path: ./data/transcripts
  failMode: closed
signingKey: ./data/signing-key.json
admin:
  listen: 127.0.0.1:9090
identity:
  oidc:
    - issuer: https://idp.example.com/
      audience: agentgate
      jwks: https://idp.example.com/.well-known/jwks.json
      groupsClaim: groups
  tokens:
    - name: devin
      sha256: "${createHash('sha256').update('secret-token').digest('hex')}"
      groups: [agents]
  sshKeys:
    - name: devin
      publicKey: "${hostKeyLine}"
      groups: [agents]
approvals:
  timeout: 120s
  approvers: [group:dba]
  webhook: { url: "http://127.0.0.1:8088/hook" }
listeners:
  - name: prod-db
    protocol: postgres
    listen: 127.0.0.1:15432
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: 5432, user: app, password: "\${env:PG_PASSWORD}", database: app }
  - name: build-host
    protocol: ssh
    listen: 127.0.0.1:2222
    hostKey: ./data/ssh_host_ed25519_key
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: 22, user: deploy, privateKey: ./deploy_key, hostKey: "${hostKeyLine}" }
  - name: docker
    protocol: docker
    listen: 127.0.0.1:2375
    allow: [group:agents]
    upstream: { socket: /var/run/docker.sock }
rules:
  - name: no-ddl-drops
    protocol: postgres
    match: { commands: [DROP, TRUNCATE, ALTER SYSTEM] }
    action: deny
  - name: deletes-need-review
    protocol: postgres
    match: { commands: [DELETE, UPDATE], tables: [users] }
    action: approve
  - name: no-rm-rf
    protocol: ssh
    match: { programs: [rm], pattern: "-[a-zA-Z]*r" }
    action: deny
  - name: no-privileged
    protocol: docker
    match: { privileged: true }
    action: deny
masking:
  - name: pii
    columns: ["users.email", "users.ssn", "*.api_key"]
    detectors: [email, credit_card, us_ssn, aws_access_key, private_key, jwt]
    replacement: "****"
`;
    writeFileSync(file, spec);
    const config = await loadConfig(file, { PG_PASSWORD: 's3cret' });
    expect(config.file).toBe(file);
    expect(config.store).toEqual({
      path: join(dir, 'data/transcripts'),
      failMode: 'closed',
      checkpointIntervalMs: 60_000,
    });
    expect(config.signingKey).toBe(join(dir, 'data/signing-key.json'));
    expect(config.identity.oidc[0]).toEqual({
      issuer: 'https://idp.example.com/',
      audience: 'agentgate',
      jwks: 'https://idp.example.com/.well-known/jwks.json',
      groupsClaim: 'groups',
      clockSkewSeconds: 60,
    });
    expect(config.approvals).toEqual({
      timeoutMs: 120_000,
      approvers: ['group:dba'],
      webhook: { url: 'http://127.0.0.1:8088/hook', timeoutMs: 5000, retries: 3, format: 'agentgate' },
    });
    const [pg, ssh, docker] = config.listeners as [
      PostgresListenerConfig,
      SshListenerConfig,
      DockerListenerConfig,
    ];
    expect(pg.upstream).toEqual({
      host: '127.0.0.1',
      port: 5432,
      user: 'app',
      password: 's3cret',
      database: 'app',
    });
    expect(ssh.hostKey).toBe(join(dir, 'data/ssh_host_ed25519_key'));
    expect(ssh.upstream.privateKey).toBe(join(dir, 'deploy_key'));
    expect(docker.upstream.socket).toBe('/var/run/docker.sock');
    expect(config.rules.map((r) => r.action)).toEqual(['deny', 'approve', 'deny', 'deny']);
    expect(config.rules[2]!.match).toEqual({ programs: ['rm'], pattern: '-[a-zA-Z]*r' });
    expect(config.masking[0]).toMatchObject({ name: 'pii', strategy: 'replace', replacement: '****' });
  });

  it('applies every documented default', () => {
    const config = parseConfig(
      minimal(`identity:
  oidc: [{ issuer: "https://i/", audience: a, jwks: ./jwks.json }]
approvals: { webhook: { url: "http://127.0.0.1:1/h" } }
listeners:
  - { name: pg, protocol: postgres, listen: "127.0.0.1:0", allow: [group:a], upstream: { host: 127.0.0.1, user: app } }
  - { name: sh, protocol: ssh, listen: "127.0.0.1:0", allow: [group:a], upstream: { host: 127.0.0.1, user: u, password: p, hostKey: "${hostKeyLine}" } }
  - { name: dk, protocol: docker, listen: "unix:./dk.sock", identity: ci, allow: [identity:ci], upstream: { socket: /var/run/docker.sock } }
masking: [{ name: m, detectors: [email] }]
`),
      file,
      {},
    );
    expect(config.store.failMode).toBe('closed');
    expect(config.store.checkpointIntervalMs).toBe(60_000);
    expect(config.admin.listen).toBe('127.0.0.1:9090');
    expect(config.shutdown).toEqual({ drainTimeoutMs: 30_000 });
    expect(config.identity.tokens).toEqual([]);
    expect(config.identity.sshKeys).toEqual([]);
    expect(config.identity.oidc[0]).toMatchObject({
      groupsClaim: 'groups',
      clockSkewSeconds: 60,
      jwks: join(dir, 'jwks.json'),
    });
    expect(config.approvals).toEqual({
      timeoutMs: 120_000,
      approvers: [],
      webhook: { url: 'http://127.0.0.1:1/h', timeoutMs: 5000, retries: 3, format: 'agentgate' },
    });
    const [pg, ssh, docker] = config.listeners as [
      PostgresListenerConfig,
      SshListenerConfig,
      DockerListenerConfig,
    ];
    expect(pg).toMatchObject({
      allowCleartext: false,
      maxMessageBytes: 64 * 1024 * 1024,
      recordRows: 100,
      dynamicSql: 'match-all',
      loginTimeoutMs: 60_000,
    });
    expect(pg.upstream.port).toBe(5432);
    for (const listener of config.listeners) expect(listener.default).toBe('allow');
    expect(ssh).toMatchObject({
      shell: 'allow',
      unknownPrograms: 'match-all',
      envAllow: ['LANG', 'LC_*', 'TERM'],
      maxAuthTries: 6,
      authPenaltyMaxMs: 10_000,
    });
    expect(ssh.upstream.port).toBe(22);
    expect(ssh.hostKey).toBe(join(dir, 'data', 'ssh_host_ed25519_key.sh'));
    expect(docker).toMatchObject({
      listen: `unix:${join(dir, 'dk.sock')}`,
      socketMode: 0o660,
      maxBodyBytes: 16 * 1024 * 1024,
      unknownPrograms: 'match-all',
      identity: 'ci',
    });
    expect(config.masking[0]).toEqual({
      name: 'm',
      columns: [],
      detectors: ['email'],
      replacement: '****',
      strategy: 'replace',
    });
    expect(config.rules).toEqual([]);
  });

  it('accepts the alternative spellings of durations and sizes', () => {
    const config = parseConfig(
      minimal(`listeners:
  - { name: pg, protocol: postgres, listen: "[::1]:5433", allow: [group:a], maxMessageBytes: 1MiB, upstream: { host: h, user: u } }
approvals: { timeout: 1h30m }
`).replace('./data/transcripts }', './data/transcripts, checkpointInterval: 5s }'),
      file,
      {},
    );
    expect(config.store.checkpointIntervalMs).toBe(5000);
    expect(config.approvals.timeoutMs).toBe(5_400_000);
    expect((config.listeners[0] as PostgresListenerConfig).maxMessageBytes).toBe(1024 * 1024);
  });

  it('reads shutdown.drainTimeout, 0s included, and refuses what is no duration', () => {
    expect(parseConfig(minimal('shutdown: { drainTimeout: 2m }\n'), file, {}).shutdown).toEqual({
      drainTimeoutMs: 120_000,
    });
    expect(parseConfig(minimal('shutdown: { drainTimeout: 0s }\n'), file, {}).shutdown).toEqual({
      drainTimeoutMs: 0,
    });
    expect(issuesOf(minimal('shutdown: { drainTimeout: 30 }\n'))).toEqual([
      {
        path: 'shutdown.drainTimeout',
        message: 'expected a duration such as 500ms, 120s, 5m, 8h or 1h30m, found number 30',
      },
    ]);
    expect(issuesOf(minimal('shutdown: { drainTimeuot: 30s }\n'))).toEqual([
      expect.objectContaining({ path: 'shutdown.drainTimeuot' }),
    ]);
  });

  it('expands ${env:NAME} in any string, including numbers and booleans written through env', () => {
    const config = parseConfig(
      minimal(`listeners:
  - name: pg
    protocol: postgres
    listen: "127.0.0.1:\${env:PORT}"
    allow: ["group:\${env:GROUP}"]
    allowCleartext: \${env:CLEAR}
    upstream: { host: "\${env:HOST}", port: "\${env:UP_PORT}", user: u, password: "pre-\${env:PW}-post" }
`),
      file,
      { PORT: '15432', GROUP: 'agents', CLEAR: 'true', HOST: 'db.local', UP_PORT: '6543', PW: 'x' },
    );
    const pg = config.listeners[0] as PostgresListenerConfig;
    expect(pg.listen).toBe('127.0.0.1:15432');
    expect(pg.allow).toEqual(['group:agents']);
    expect(pg.allowCleartext).toBe(true);
    expect(pg.upstream).toMatchObject({ host: 'db.local', port: 6543, password: 'pre-x-post' });
  });

  it('names the key path of a missing environment variable', () => {
    const issues = issuesOf(
      minimal(`listeners:
  - { name: pg, protocol: postgres, listen: "127.0.0.1:1", allow: [group:a], upstream: { host: h, user: u, password: "\${env:PG_PASSWORD}" } }
`),
    );
    expect(issues).toEqual([
      { path: 'listeners[0].upstream.password', message: expect.stringContaining('PG_PASSWORD to be set') },
    ]);
  });

  it('reports unknown keys with a did-you-mean, at every level', () => {
    const issues = issuesOf(
      minimal(`aprovals: {}
listeners:
  - { name: pg, protocol: postgres, listen: "127.0.0.1:1", allow: [group:a], upstream: { host: h, user: u, prot: 1 }, recordrows: 5 }
rules:
  - { name: r, protocol: postgres, match: { comands: [DROP] }, action: deny }
  - { name: s, protocol: postgres, match: { commands: [DROP] }, action: dney }
`),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'aprovals',
      'listeners[0].recordrows',
      'listeners[0].upstream.prot',
      'rules[0].match.comands',
      'rules[1].action',
    ]);
    expect(issues[0]!.message).toContain('did you mean "approvals"?');
    expect(issues[1]!.message).toContain('did you mean "recordRows"?');
    expect(issues[2]!.message).toContain('did you mean "port"?');
    expect(issues[3]!.message).toContain('did you mean "commands"?');
    expect(issues[4]!.message).toContain('did you mean "deny"?');
    expect(didYouMean('zzzzzz', ['store', 'rules'])).toBeUndefined();
  });

  it('reports wrong types and enum values as expected/found, all at once', () => {
    const issues = issuesOf(`store: { path: 5, failMode: maybe }
signingKey: [a]
admin: { listen: "localhost" }
listeners:
  - name: pg
    protocol: postgres
    listen: "127.0.0.1:99999"
    allow: group:a
    recordRows: lots
    upstream: { host: h, port: "5432", user: u }
`);
    expect(issues).toEqual([
      { path: 'store.path', message: 'expected a string, found number 5' },
      { path: 'store.failMode', message: 'expected one of closed, open, found "maybe"' },
      { path: 'signingKey', message: 'expected a string, found a list of 1' },
      {
        path: 'admin.listen',
        message: 'expected an address "host:port" with a port from 0 to 65535, found "localhost"',
      },
      {
        path: 'listeners[0].listen',
        message: 'expected an address "host:port" with a port from 0 to 65535, found "127.0.0.1:99999"',
      },
      { path: 'listeners[0].allow', message: 'expected a list, found "group:a"' },
      { path: 'listeners[0].upstream.port', message: 'expected an integer from 1 to 65535, found "5432"' },
      { path: 'listeners[0].recordRows', message: 'expected an integer of at least 0, found "lots"' },
    ]);
  });

  it("checks an ssh listener's authentication limits", () => {
    const listener = (limits: string): string =>
      minimal(`listeners:
  - { name: sh, protocol: ssh, listen: "127.0.0.1:0", allow: [group:a], ${limits}upstream: { host: h, user: u, password: p, hostKey: "${hostKeyLine}" } }
`);
    const ssh = parseConfig(listener('maxAuthTries: 3, authPenaltyMax: 0s, '), file, {})
      .listeners[0] as SshListenerConfig;
    expect(ssh).toMatchObject({ maxAuthTries: 3, authPenaltyMaxMs: 0 });
    expect(issuesOf(listener('maxAuthTries: 0, authPenaltyMax: soon, '))).toEqual([
      { path: 'listeners[0].maxAuthTries', message: 'expected an integer from 1 to 100, found number 0' },
      {
        path: 'listeners[0].authPenaltyMax',
        message: 'expected a duration such as 500ms, 120s, 5m, 8h or 1h30m, found "soon"',
      },
    ]);
  });

  it('requires required keys', () => {
    const issues = issuesOf(`listeners:\n  - { name: pg, protocol: postgres, allow: [] , upstream: {} }\n`);
    expect(issues.map((i) => i.path)).toEqual([
      'store',
      'signingKey',
      'listeners[0].listen',
      'listeners[0].upstream.host',
      'listeners[0].upstream.user',
    ]);
    expect(issues[0]!.message).toMatch(/^expected a mapping .*, found nothing$/);
  });

  it('reads the console section with its defaults and the issuer’s groups claim', () => {
    const config = parseConfig(
      minimal(`identity:
  oidc: [{ issuer: "https://login.example.com/realms/eng", audience: agentgate, jwks: ./jwks.json, groupsClaim: roles }]
console:
  publicUrl: https://agentgate.example.com/
  oidc: { issuer: "https://login.example.com/realms/eng", clientId: console, clientSecret: "\${env:SECRET}" }
  auditors: [group:security]
`),
      file,
      { SECRET: 's3cret' },
    );
    expect(config.console).toEqual({
      publicUrl: 'https://agentgate.example.com',
      oidc: {
        issuer: 'https://login.example.com/realms/eng',
        clientId: 'console',
        clientSecret: 's3cret',
        scopes: ['openid', 'profile', 'email'],
        groupsClaim: 'roles',
      },
      auditors: ['group:security'],
      admins: [],
      sessionTtlMs: 8 * 3_600_000,
    });
    expect(parseConfig(minimal(), file).console).toBeUndefined();
    expect(
      parseConfig(minimal('console: { publicUrl: "http://127.0.0.1:9090" }\n'), file).console,
    ).toMatchObject({
      publicUrl: 'http://127.0.0.1:9090',
    });
  });

  it('takes a JWKS over plain http only from a loopback address', () => {
    const jwks = (url: string): string =>
      minimal(
        `identity:\n  oidc: [{ issuer: "https://idp.example.com", audience: agentgate, jwks: "${url}" }]\n`,
      );
    expect(issuesOf(jwks('http://idp.example.com/.well-known/jwks.json'))).toEqual([
      {
        path: 'identity.oidc[0].jwks',
        message:
          'expected an https:// URL (plain http only on a loopback address), found "http://idp.example.com/.well-known/jwks.json"',
      },
    ]);
    for (const url of [
      'https://idp.example.com/jwks',
      'http://127.0.0.1:8080/jwks',
      'http://[::1]/jwks',
      'HTTP://localhost/jwks',
    ])
      expect(parseConfig(jwks(url), file, {}).identity.oidc[0]?.jwks).toBe(url);
  });

  it('checks the console section: an https origin off loopback, a configured issuer, openid in the scopes', () => {
    const issues = issuesOf(
      minimal(`identity:
  oidc: [{ issuer: "https://idp.example.com", audience: agentgate, jwks: ./jwks.json }]
console:
  publicUrl: http://agentgate.example.com/console
  oidc: { issuer: "https://idp.example.com/", clientId: console, scopes: [profile] }
  admins: [alice]
  sessionTtl: 10s
`),
    );
    expect(issues).toEqual([
      {
        path: 'console.publicUrl',
        message:
          'expected an https:// URL (plain http only on a loopback address), found "http://agentgate.example.com/console"',
      },
      { path: 'console.oidc.scopes', message: 'expected a list that includes openid, found a list of 1' },
      {
        path: 'console.oidc.issuer',
        message:
          'expected one of the identity.oidc issuers (https://idp.example.com), found "https://idp.example.com/" (did you mean "https://idp.example.com"?)',
      },
      {
        path: 'console.admins[0]',
        message: 'expected a principal "group:NAME" or "identity:NAME", found "alice"',
      },
      { path: 'console.sessionTtl', message: 'expected a duration of at least 1m, found "10s"' },
    ]);
    expect(issuesOf(minimal('console: { publicUrl: "https://a.example.com/x" }\n'))).toEqual([
      {
        path: 'console.publicUrl',
        message:
          'expected an origin such as https://agentgate.example.com (no path or query), found "https://a.example.com/x"',
      },
    ]);
  });

  it('refuses two listeners on one address', () => {
    const issues = issuesOf(
      minimal(`admin: { listen: "127.0.0.1:9000" }
listeners:
  - { name: a, protocol: docker, listen: "127.0.0.1:9000", allow: [], upstream: { socket: /s } }
  - { name: b, protocol: docker, listen: "unix:/tmp/d.sock", allow: [], upstream: { socket: /s } }
  - { name: c, protocol: docker, listen: "unix:/tmp/d.sock", allow: [], upstream: { socket: /s } }
`),
    );
    expect(issues).toEqual([
      {
        path: 'listeners[0].listen',
        message:
          'expected an address no other listener uses, found 127.0.0.1:9000, also used by admin.listen',
      },
      {
        path: 'listeners[2].listen',
        message:
          'expected an address no other listener uses, found unix:/tmp/d.sock, also used by listeners[1].listen',
      },
    ]);
  });

  it('reads socketMode as the octal mode written', () => {
    const modes = ['0600', '"0640"', '0o644', '"660"'].map((mode) => {
      const config = parseConfig(
        minimal(
          `listeners: [{ name: d, protocol: docker, listen: "unix:/tmp/d.sock", socketMode: ${mode}, allow: [], upstream: { socket: /s } }]\n`,
        ),
        file,
        {},
      );
      return (config.listeners[0] as DockerListenerConfig).socketMode;
    });
    expect(modes).toEqual([0o600, 0o640, 0o644, 0o660]);
  });

  it('refuses the test protocol in a config file', () => {
    const issues = issuesOf(
      minimal(`listeners: [{ name: t, protocol: test, listen: "127.0.0.1:0", allow: [] }]\n`),
    );
    expect(issues).toEqual([
      { path: 'listeners[0].protocol', message: 'expected one of postgres, ssh, docker, found "test"' },
    ]);
  });

  it('allows unix: listen addresses only for docker', () => {
    const issues = issuesOf(
      minimal(`listeners:
  - { name: pg, protocol: postgres, listen: "unix:/tmp/pg.sock", allow: [group:a], upstream: { host: h, user: u } }
  - { name: dk, protocol: docker, listen: "127.0.0.1:2375", identity: ci, allow: [group:a], upstream: { socket: /var/run/docker.sock } }
`),
    );
    expect(issues.map((i) => i.path)).toEqual(['listeners[0].listen', 'listeners[1].identity']);
    expect(issues[0]!.message).toContain('only for docker');
  });

  it('gives a fixed socket identity the groups of the configured identity of that name', () => {
    const config = parseConfig(
      minimal(`identity:
  tokens: [{ name: ci, sha256: "${'a'.repeat(64)}", groups: [agents, builders] }]
  sshKeys: [{ name: ci, publicKey: "${hostKeyLine}", groups: [agents, ssh] }]
listeners:
  - { name: dk, protocol: docker, listen: "unix:./dk.sock", identity: ci, allow: [group:agents], upstream: { socket: /var/run/docker.sock } }
  - { name: lone, protocol: docker, listen: "unix:./lone.sock", identity: nobody, allow: [identity:nobody], upstream: { socket: /var/run/docker.sock } }
`),
      file,
      {},
    );
    const [dk, lone] = config.listeners as [DockerListenerConfig, DockerListenerConfig];
    expect(dk.identityGroups).toEqual(['agents', 'builders', 'ssh']);
    expect(lone.identityGroups).toEqual([]);
  });

  it('rejects duplicate listener, rule and masking names', () => {
    const issues = issuesOf(
      minimal(`listeners:
  - { name: a, protocol: docker, listen: "127.0.0.1:0", allow: [], upstream: { socket: /var/run/docker.sock } }
  - { name: a, protocol: docker, listen: "127.0.0.1:0", allow: [], upstream: { socket: /var/run/docker.sock } }
rules:
  - { name: r, match: { pattern: x }, action: deny }
  - { name: r, match: { pattern: y }, action: deny }
masking:
  - { name: m, detectors: [jwt] }
  - { name: m, detectors: [jwt] }
`),
    );
    expect(issues).toEqual([
      {
        path: 'listeners[1].name',
        message: 'expected a unique listener name, found "a" again (first at listeners[0].name)',
      },
      {
        path: 'rules[1].name',
        message: 'expected a unique rule name, found "r" again (first at rules[0].name)',
      },
      {
        path: 'masking[1].name',
        message: 'expected a unique masking rule name, found "m" again (first at masking[0].name)',
      },
    ]);
  });

  it('checks principal references', () => {
    const issues = issuesOf(
      minimal(`approvals: { approvers: [dba] }
listeners: [{ name: a, protocol: docker, listen: "127.0.0.1:0", allow: ["team:x"], upstream: { socket: /var/run/docker.sock } }]
rules: [{ name: r, who: [identity:devin, "group:"], match: { pattern: x }, action: approve, approvers: [group:dba] }]
`),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'approvals.approvers[0]',
      'listeners[0].allow[0]',
      'rules[0].who[1]',
    ]);
    expect(issues[0]!.message).toBe('expected a principal "group:NAME" or "identity:NAME", found "dba"');
  });

  it('checks rule match keys against the rule protocol, regexes and listener references', () => {
    const issues = issuesOf(
      minimal(`listeners:
  - { name: db, protocol: postgres, listen: "127.0.0.1:1", allow: [group:a], upstream: { host: h, user: u } }
rules:
  - { name: a, protocol: postgres, match: { programs: [rm] }, action: deny }
  - { name: b, match: { pattern: "([" }, action: deny }
  - { name: c, listeners: [db, dbb], match: { tables: [t] }, action: deny }
  - { name: d, protocol: ssh, listeners: [db], match: { programs: [rm] }, action: deny }
  - { name: e, match: { commands: [DROP], programs: [rm] }, action: deny }
  - { name: f, match: {}, action: allow, approvers: [group:x] }
  - { name: g, match: { channels: [x11, tunnel] }, action: deny }
`),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'rules[0].match.programs',
      'rules[1].match.pattern',
      'rules[2].listeners[1]',
      'rules[3].listeners[0]',
      'rules[4].match',
      'rules[5].match',
      'rules[5].approvers',
      'rules[6].match.channels[1]',
    ]);
    expect(issues[0]!.message).toMatch(
      /^expected a postgres match key \(commands, .*\), found "programs", which is a ssh\/docker key$/,
    );
    expect(issues[1]!.message).toContain('expected a valid regular expression');
    expect(issues[2]!.message).toContain('did you mean "db"?');
    expect(issues[3]!.message).toBe(
      'expected a ssh listener (the rule\'s protocol), found "db", a postgres listener',
    );
  });

  it('reads a listener default (allow-list mode) and refuses anything but allow or deny', () => {
    const config = parseConfig(
      minimal(`listeners:
  - { name: db, protocol: postgres, listen: "127.0.0.1:1", default: deny, allow: [group:a], upstream: { host: h, user: u } }
  - { name: dk, protocol: docker, listen: "127.0.0.1:2", default: allow, allow: [group:a], upstream: { socket: /x } }
`),
      file,
      {},
    );
    expect(config.listeners.map((l) => l.default)).toEqual(['deny', 'allow']);
    const issues = issuesOf(
      minimal(`listeners:
  - { name: db, protocol: postgres, listen: "127.0.0.1:1", default: denied, allow: [group:a], upstream: { host: h, user: u } }
`),
    );
    expect(issues).toEqual([
      { path: 'listeners[0].default', message: 'expected one of allow, deny, found "denied"' },
    ]);
  });

  it('reads hostNamespaces as true/false or a list of namespace names', () => {
    const config = parseConfig(
      minimal(`rules:
  - { name: a, match: { hostNamespaces: true }, action: deny }
  - { name: b, match: { hostNamespaces: [cgroup, pid, cgroup] }, action: deny }
`),
      file,
      {},
    );
    expect(config.rules.map((r) => r.match.hostNamespaces)).toEqual([true, ['cgroup', 'pid']]);
    const issues = issuesOf(
      minimal(`rules:
  - { name: a, match: { hostNamespaces: [net, pid] }, action: deny }
  - { name: b, match: { hostNamespaces: [] }, action: deny }
  - { name: c, match: { hostNamespaces: host }, action: deny }
`),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'rules[0].match.hostNamespaces[0]',
      'rules[1].match.hostNamespaces',
      'rules[2].match.hostNamespaces',
    ]);
    expect(issues[0]!.message).toMatch(
      /^expected one of pid, network, ipc, uts, userns, cgroup, found "net"/,
    );
  });

  it('checks masking detectors and columns', () => {
    const issues = issuesOf(
      minimal(`masking:
  - { name: m, columns: ["users"], detectors: [emial, credit_card], strategy: blur }
  - { name: n }
`),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'masking[0].columns[0]',
      'masking[0].detectors[0]',
      'masking[0].strategy',
      'masking[1]',
    ]);
    expect(issues[1]!.message).toContain('did you mean "email"?');
    expect(KNOWN_DETECTORS).toContain('password_in_url');
  });

  it('reads the redact section: defaults on, built-ins turned off, regexes and detectors added', () => {
    expect(parseConfig(minimal(), file, {}).redact).toEqual({ defaults: true, disable: [], entries: [] });
    expect(parseConfig(minimal('redact: false\n'), file, {}).redact).toEqual({
      defaults: false,
      disable: [],
      entries: [],
    });
    const config = parseConfig(
      minimal(`redact:
  disable: [login-password]
  entries:
    - name: ticket
      pattern: 'TKT-(?<secret>[0-9a-f]{8})'
      ignoreCase: true
    - name: personal
      detectors: [email, iban]
`),
      file,
      {},
    );
    expect(config.redact).toEqual({
      defaults: true,
      disable: ['login-password'],
      entries: [
        { name: 'ticket', pattern: 'TKT-(?<secret>[0-9a-f]{8})', ignoreCase: true },
        { name: 'personal', detectors: ['email', 'iban'] },
      ],
    });
  });

  it('checks redact entries', () => {
    const issues = issuesOf(
      minimal(`redact:
  defualts: false
  disable: [mysql-pasword]
  entries:
    - name: bad
      pattern: '(unclosed'
    - name: empty
      pattern: 'x*'
    - name: neither
    - name: default:mine
      detectors: [emial]
    - name: bad
      pattern: 'y'
`),
    );
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(byPath['redact.defualts']).toMatch(/did you mean "defaults"/);
    expect(byPath['redact.disable[0]']).toMatch(/did you mean "mysql-password"/);
    expect(byPath['redact.entries[0].pattern']).toMatch(/expected a JavaScript regular expression/);
    expect(byPath['redact.entries[1].pattern']).toMatch(/cannot match empty text/);
    expect(byPath['redact.entries[2]']).toMatch(/expected a pattern or detectors/);
    expect(byPath['redact.entries[3].name']).toMatch(/not starting with "default:"/);
    expect(byPath['redact.entries[3].detectors[0]']).toMatch(/did you mean "email"/);
    expect(byPath['redact.entries[4].name']).toMatch(/unique redaction name/);
  });

  it('checks that referenced files exist', () => {
    const issues = issuesOf(
      minimal(`identity:
  oidc: [{ issuer: "https://i/", audience: a, jwks: ./missing-jwks.json }]
listeners:
  - { name: pg, protocol: postgres, listen: "127.0.0.1:1", allow: [], tls: { cert: ./tls/cert.pem, key: ./tls/nokey.pem }, upstream: { host: h, user: u } }
  - { name: sh, protocol: ssh, listen: "127.0.0.1:2", allow: [], upstream: { host: h, user: u, privateKey: ./nokey, hostKey: "${hostKeyLine}" } }
`),
    );
    expect(issues).toEqual([
      {
        path: 'identity.oidc[0].jwks',
        message: `expected an existing file, found no file at ${join(dir, 'missing-jwks.json')}`,
      },
      {
        path: 'listeners[0].tls.key',
        message: `expected an existing file, found no file at ${join(dir, 'tls/nokey.pem')}`,
      },
      {
        path: 'listeners[1].upstream.privateKey',
        message: `expected an existing file, found no file at ${join(dir, 'nokey')}`,
      },
    ]);
  });

  it('checks token hashes and ssh public keys', () => {
    const notAKey = `ssh-rsa ${hostKeyLine.split(' ')[1]}`;
    const issues = issuesOf(
      minimal(`identity:
  tokens: [{ name: t, sha256: my-raw-token }]
  sshKeys: [{ name: k, publicKey: "AAAA" }, { name: l, publicKey: "${notAKey}" }]
`),
    );
    expect(issues.map((i) => i.path)).toEqual([
      'identity.tokens[0].sha256',
      'identity.sshKeys[0].publicKey',
      'identity.sshKeys[1].publicKey',
    ]);
    // The secret-ish value is not echoed back.
    expect(issues[0]!.message).toBe(
      'expected 64 hex characters (the SHA-256 of the token, not the token), found a string of 12 characters',
    );
    expect(issues[2]!.message).toContain('whose key data is a ssh-rsa key');
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('store: { path: x\nsigningKey: [\n');
    expect(issues[0]!.path).toMatch(/^line \d+:\d+$/);
    expect(issues[0]!.message).toMatch(/^expected valid YAML, found /);
  });

  it('reports an unreadable file', async () => {
    await expect(loadConfig(join(dir, 'nope.yaml'))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      issues: [{ path: '(file)', message: 'expected a readable config file, found ENOENT' }],
    });
  });
});
