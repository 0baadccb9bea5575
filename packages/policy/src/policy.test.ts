import { describe, expect, it } from '@jest/globals';
import type { Command, Identity, RuleConfig, SqlStatementFacts } from '@agentgate/core';
import { createPolicy } from './policy.js';
import { normalizeImageRef } from './matchers.js';

const agent: Identity = { name: 'devin', groups: ['agents'], source: 'token' };
const dba: Identity = { name: 'alice', groups: ['dba'], source: 'oidc' };

const stmt = (command: string, extra: Partial<SqlStatementFacts> = {}): SqlStatementFacts => ({
  command,
  tables: [],
  functions: [],
  unfilteredWrite: false,
  text: command,
  dynamic: false,
  ...extra,
});
const pg = (statements: SqlStatementFacts[], extra: Partial<Command> = {}): Command =>
  ({ protocol: 'postgres', text: 'q', statements, unknownMatchesAll: true, ...extra }) as Command;
const ssh = (programs: (string | null)[], extra: Record<string, unknown> = {}): Command =>
  ({
    protocol: 'ssh',
    kind: 'exec',
    text: 'x',
    simpleCommands: programs.map((p) => ({
      program: p,
      argv: [p ?? '$x', '-rf', '/'],
      text: `${p ?? '$x'} -rf /`,
    })),
    unknownMatchesAll: true,
    ...extra,
  }) as Command;

const rules: RuleConfig[] = [
  {
    name: 'no-ddl-drops',
    protocol: 'postgres',
    match: { commands: ['DROP', 'TRUNCATE', 'ALTER SYSTEM'] },
    action: 'deny',
  },
  {
    name: 'deletes-need-review',
    protocol: 'postgres',
    match: { commands: ['DELETE', 'UPDATE'], tables: ['users'] },
    action: 'approve',
  },
  { name: 'no-unfiltered', protocol: 'postgres', match: { unfilteredWrites: true }, action: 'deny' },
  { name: 'no-file-read', match: { functions: ['pg_read_file'] }, action: 'deny' },
  {
    name: 'dba-may-drop',
    protocol: 'postgres',
    who: ['group:dba'],
    match: { commands: ['DROP'] },
    action: 'allow',
  },
  { name: 'no-rm-rf', protocol: 'ssh', match: { programs: ['rm'], pattern: '-[a-zA-Z]*r' }, action: 'deny' },
  { name: 'no-privileged', protocol: 'docker', match: { privileged: true }, action: 'deny' },
  { name: 'no-busybox', protocol: 'docker', match: { images: ['busybox'] }, action: 'approve' },
  {
    name: 'tunnel-for-dba',
    protocol: 'ssh',
    who: ['group:dba'],
    match: { channels: ['port-forward'] },
    action: 'allow',
  },
];
const policy = createPolicy(rules);

describe('postgres rules', () => {
  it('matches command words by prefix, case-insensitively', () => {
    expect(policy.decide(pg([stmt('drop table')]), agent, 'db')).toMatchObject({
      action: 'deny',
      rule: 'no-ddl-drops',
    });
    expect(policy.decide(pg([stmt('ALTER SYSTEM')]), agent, 'db').action).toBe('deny');
    expect(policy.decide(pg([stmt('ALTER TABLE')]), agent, 'db').action).toBe('allow');
    expect(policy.decide(pg([stmt('DROPX')]), agent, 'db').action).toBe('allow');
  });
  it('deny beats approve beats allow, and who scopes rules', () => {
    const d = policy.decide(pg([stmt('DROP TABLE')]), dba, 'db');
    expect(d).toMatchObject({ action: 'deny', rule: 'no-ddl-drops' });
    expect(d.matched).toEqual(['no-ddl-drops', 'dba-may-drop']);
    expect(policy.decide(pg([stmt('DELETE', { tables: ['public.users'] })]), agent, 'db')).toMatchObject({
      action: 'approve',
      rule: 'deletes-need-review',
    });
    expect(
      policy.decide(pg([stmt('DELETE', { tables: ['users'], unfilteredWrite: true })]), agent, 'db').action,
    ).toBe('deny');
  });
  it('any statement, nested or not, decides the whole message', () => {
    expect(policy.decide(pg([stmt('SELECT'), stmt('DROP INDEX')]), agent, 'db').action).toBe('deny');
    expect(policy.decide(pg([stmt('SELECT', { functions: ['PG_READ_FILE'] })]), agent, 'db').rule).toBe(
      'no-file-read',
    );
  });
  it('dynamic SQL matches every deny rule, never an allow rule', () => {
    const d = policy.decide(pg([stmt('DO', { dynamic: true })]), dba, 'db');
    expect(d.action).toBe('deny');
    expect(d.matched).not.toContain('dba-may-drop');
    expect(
      policy.decide(pg([stmt('DO', { dynamic: true })], { unknownMatchesAll: false }), agent, 'db').rule,
    ).toBe('builtin:dynamic-sql');
  });
  it('unanalysable commands are denied by a built-in rule', () => {
    expect(policy.decide(pg([], { unanalysable: 'syntax error' }), agent, 'db')).toMatchObject({
      action: 'deny',
      rule: 'builtin:unanalysable',
      reason: 'syntax error',
    });
  });
  it('schema-qualified table rules', () => {
    const p = createPolicy([{ name: 'r', match: { tables: ['billing.invoices'] }, action: 'deny' }]);
    expect(p.decide(pg([stmt('SELECT', { tables: ['billing.invoices'] })]), agent, 'db').action).toBe('deny');
    expect(p.decide(pg([stmt('SELECT', { tables: ['invoices'] })]), agent, 'db').action).toBe('deny');
    expect(p.decide(pg([stmt('SELECT', { tables: ['public.invoices'] })]), agent, 'db').action).toBe('allow');
  });
});

describe('ssh rules', () => {
  it('programs and pattern hold for the same simple command', () => {
    expect(policy.decide(ssh(['rm']), agent, 'h').action).toBe('deny');
    expect(policy.decide(ssh(['ls']), agent, 'h').action).toBe('allow');
  });
  it('an unknown program matches deny rules, or is denied outright', () => {
    expect(policy.decide(ssh([null]), agent, 'h').rule).toBe('no-rm-rf');
    expect(policy.decide(ssh([null], { unknownMatchesAll: false }), agent, 'h').rule).toBe(
      'builtin:unknown-program',
    );
  });
  it('forwarding is denied unless an allow rule names the channel for this identity', () => {
    const fwd = {
      protocol: 'ssh',
      kind: 'channel',
      channel: 'port-forward',
      text: 'fwd',
      simpleCommands: [],
    } as Command;
    expect(policy.decide(fwd, agent, 'h').rule).toBe('builtin:forwarding-not-allowed');
    expect(policy.decide(fwd, dba, 'h').action).toBe('allow');
    const x11 = { ...fwd, channel: 'x11' } as Command;
    expect(policy.decide(x11, dba, 'h').action).toBe('deny');
  });
  it('rules scoped to listeners', () => {
    const p = createPolicy([{ name: 'r', listeners: ['a'], match: { programs: ['ls'] }, action: 'deny' }]);
    expect(p.decide(ssh(['ls']), agent, 'a').action).toBe('deny');
    expect(p.decide(ssh(['ls']), agent, 'b').action).toBe('allow');
  });
});

describe('docker rules', () => {
  const create = (extra: Record<string, unknown>): Command =>
    ({
      protocol: 'docker',
      action: 'container.create',
      text: 'POST /containers/create',
      privileged: false,
      hostMounts: [],
      hostNamespaces: [],
      capabilities: [],
      images: ['alpine'],
      ...extra,
    }) as Command;
  it('privileged and images', () => {
    expect(policy.decide(create({ privileged: true }), agent, 'd').rule).toBe('no-privileged');
    expect(policy.decide(create({ images: ['docker.io/library/busybox:latest'] }), agent, 'd').action).toBe(
      'approve',
    );
    expect(policy.decide(create({ images: ['busybox:1.36'] }), agent, 'd').action).toBe('approve');
  });
  it('host mounts match by path prefix at component boundaries', () => {
    const p = createPolicy([{ name: 'm', match: { hostMounts: ['/etc'] }, action: 'deny' }]);
    expect(p.decide(create({ hostMounts: ['/etc/shadow'] }), agent, 'd').action).toBe('deny');
    expect(p.decide(create({ hostMounts: ['/etcetera'] }), agent, 'd').action).toBe('allow');
  });
  it('hostNamespaces: true means the namespaces that break isolation; cgroup counts only when named', () => {
    const isolation = createPolicy([{ name: 'ns', match: { hostNamespaces: true }, action: 'deny' }]);
    const cgroupRule = createPolicy([{ name: 'cg', match: { hostNamespaces: ['cgroup'] }, action: 'deny' }]);
    const pidOnly = createPolicy([{ name: 'pid', match: { hostNamespaces: ['pid'] }, action: 'deny' }]);
    const none = createPolicy([
      { name: 'isolated', match: { actions: ['container.exec'], hostNamespaces: false }, action: 'deny' },
    ]);
    const exec = (hostNamespaces: string[]) => create({ action: 'container.exec', hostNamespaces });
    expect(isolation.decide(exec(['cgroup']), agent, 'd').action).toBe('allow');
    expect(cgroupRule.decide(exec(['cgroup']), agent, 'd').rule).toBe('cg');
    for (const ns of ['pid', 'network', 'ipc', 'uts', 'userns']) {
      expect(isolation.decide(exec([ns, 'cgroup']), agent, 'd').rule).toBe('ns');
      expect(cgroupRule.decide(exec([ns]), agent, 'd').action).toBe('allow');
    }
    expect(pidOnly.decide(exec(['network']), agent, 'd').action).toBe('allow');
    expect(pidOnly.decide(exec(['network', 'pid']), agent, 'd').action).toBe('deny');
    expect(none.decide(exec(['cgroup']), agent, 'd').action).toBe('deny');
    expect(none.decide(exec(['uts']), agent, 'd').action).toBe('allow');
  });
  it('normalises image references', () => {
    expect(normalizeImageRef('busybox')).toBe('docker.io/library/busybox:latest');
    expect(normalizeImageRef('ghcr.io/a/b:1')).toBe('ghcr.io/a/b:1');
    expect(normalizeImageRef('me/app')).toBe('docker.io/me/app:latest');
    expect(normalizeImageRef('localhost:5000/x')).toBe('localhost:5000/x:latest');
  });
});

describe('reasons', () => {
  it('a rule that holds only through unknown facts says so', () => {
    const d = policy.decide(pg([stmt('DO', { dynamic: true })]), agent, 'db');
    expect(d.reason).toContain('dynamic SQL');
    expect(policy.decide(pg([stmt('DROP TABLE')]), agent, 'db').reason).toBeUndefined();
    expect(policy.decide(ssh([null]), agent, 'h').reason).toContain('cannot be known');
  });
});

describe('allow-list mode (listener default: deny)', () => {
  const listeners = [
    { name: 'db', default: 'deny' as const },
    { name: 'h', default: 'deny' as const },
    { name: 'd', default: 'deny' as const },
    { name: 'open' },
  ];
  const allowList = createPolicy(
    [
      { name: 'reads', protocol: 'postgres', match: { commands: ['SELECT'] }, action: 'allow' },
      {
        name: 'order-writes',
        protocol: 'postgres',
        match: { commands: ['INSERT', 'UPDATE'], tables: ['public.orders', 'order_lines'] },
        action: 'allow',
      },
      { name: 'deletes-reviewed', protocol: 'postgres', match: { commands: ['DELETE'] }, action: 'approve' },
      { name: 'no-secrets', protocol: 'postgres', match: { tables: ['secrets'] }, action: 'deny' },
      { name: 'tools', protocol: 'ssh', match: { programs: ['ls', 'cat', 'git', 'grep'] }, action: 'allow' },
      { name: 'echo-hello', protocol: 'ssh', match: { pattern: '^echo hello$' }, action: 'allow' },
      { name: 'uploads', protocol: 'ssh', match: { paths: ['/srv/upload'] }, action: 'allow' },
      { name: 'sftp', protocol: 'ssh', match: { programs: ['sftp'] }, action: 'allow' },
      { name: 'tunnels', protocol: 'ssh', match: { channels: ['port-forward'] }, action: 'allow' },
      {
        name: 'docker-read',
        protocol: 'docker',
        match: { actions: ['container.list', 'container.inspect', 'system.*'] },
        action: 'allow',
      },
      {
        name: 'exec-ls',
        protocol: 'docker',
        match: { actions: ['container.exec'], programs: ['ls'] },
        action: 'allow',
      },
      { name: 'exec-start', protocol: 'docker', match: { actions: ['exec.*'] }, action: 'allow' },
      {
        name: 'run-with-data',
        protocol: 'docker',
        match: { actions: ['container.create'], images: ['alpine'], hostMounts: ['/data'] },
        action: 'allow',
      },
    ],
    listeners,
  );
  const decide = (command: Command, listener: string, who: Identity = agent) =>
    allowList.decide(command, who, listener);
  const shell = (text: string, programs: (string | null)[]): Command =>
    ({
      protocol: 'ssh',
      kind: 'exec',
      text,
      simpleCommands: programs.map((p) => ({ program: p, argv: [p ?? '$x'], text: `${p ?? '$x'} args` })),
    }) as Command;
  const docker = (extra: Record<string, unknown>): Command =>
    ({
      protocol: 'docker',
      action: 'container.list',
      text: 'GET /containers/json',
      privileged: false,
      hostMounts: [],
      hostNamespaces: [],
      capabilities: [],
      images: [],
      ...extra,
    }) as Command;

  it('refuses what no allow rule matches, with its own rule name and reason', () => {
    const d = decide(pg([stmt('DROP TABLE', { tables: ['t'] })]), 'db');
    expect(d).toMatchObject({ action: 'deny', rule: 'builtin:default-deny' });
    expect(d.reason).toBe('no allow rule matches DROP TABLE on t (listener default: deny)');
    expect(decide(pg([stmt('SELECT', { tables: ['t'] })]), 'db').action).toBe('allow');
    // The same command on a listener with the default `allow` runs.
    expect(decide(pg([stmt('DROP TABLE', { tables: ['t'] })]), 'open').action).toBe('allow');
  });

  it('needs every statement, nested ones included, to be permitted', () => {
    const cte = pg([stmt('SELECT', { tables: ['t'] }), stmt('DROP TABLE', { tables: ['t'] })]);
    expect(decide(cte, 'db').rule).toBe('builtin:default-deny');
  });

  it('reads table lists as "at most these"', () => {
    const update = (tables: string[]) => pg([stmt('UPDATE', { tables })]);
    expect(decide(update(['orders']), 'db').action).toBe('allow');
    expect(decide(update(['public.orders', 'order_lines']), 'db').action).toBe('allow');
    expect(decide(update(['orders', 'users']), 'db').rule).toBe('builtin:default-deny');
    expect(decide(update(['billing.orders']), 'db').rule).toBe('builtin:default-deny');
    expect(decide(update([]), 'db').rule).toBe('builtin:default-deny');
  });

  it('permits transaction control and other session statements without a rule, never SET ROLE', () => {
    for (const command of [
      'BEGIN',
      'START TRANSACTION',
      'COMMIT',
      'ROLLBACK',
      'SAVEPOINT',
      'RELEASE',
      'SHOW',
    ]) {
      expect(decide(pg([stmt(command)]), 'db').action).toBe('allow');
    }
    expect(decide(pg([stmt('DISCARD'), stmt('DEALLOCATE'), stmt('SET TRANSACTION')]), 'db').action).toBe(
      'allow',
    );
    expect(decide(pg([stmt('SET ROLE')]), 'db').rule).toBe('builtin:default-deny');
    expect(decide(pg([stmt('SET')]), 'db').rule).toBe('builtin:default-deny');
    expect(decide(pg([stmt('COMMIT PREPARED')]), 'db').rule).toBe('builtin:default-deny');
  });

  it('still applies deny rules first, and holds what an approve rule permits', () => {
    expect(decide(pg([stmt('SELECT', { tables: ['secrets'] })]), 'db').rule).toBe('no-secrets');
    expect(decide(pg([stmt('DELETE', { tables: ['t'] })]), 'db').action).toBe('approve');
    expect(decide(pg([stmt('DELETE', { tables: ['t'] }), stmt('VACUUM')]), 'db').rule).toBe(
      'builtin:default-deny',
    );
  });

  it('never lets a rule naming what runs permit dynamic SQL', () => {
    const dynamic = pg([stmt('DO'), stmt('EXECUTE', { dynamic: true })]);
    const withDo = createPolicy(
      [{ name: 'do', protocol: 'postgres', match: { commands: ['DO', 'EXECUTE'] }, action: 'allow' }],
      listeners,
    );
    expect(withDo.decide(dynamic, agent, 'db')).toMatchObject({
      rule: 'builtin:default-deny',
      reason:
        'no allow rule matches dynamic SQL that cannot be known before it runs (listener default: deny)',
    });
  });

  it('needs every simple command of a shell line to be permitted', () => {
    expect(decide(shell('ls | grep x', ['ls', 'grep']), 'h').action).toBe('allow');
    const d = decide(shell('ls; rm -rf /', ['ls', 'rm']), 'h');
    expect(d).toMatchObject({ rule: 'builtin:default-deny' });
    expect(d.reason).toBe('no allow rule matches program rm (listener default: deny)');
    expect(decide(shell('$X', [null]), 'h').reason).toContain('a program that cannot be known');
    expect(decide(shell('python3 -c x', ['python3', null]), 'h').rule).toBe('builtin:default-deny');
    // A pattern rule reads the text as written.
    const echo = {
      protocol: 'ssh',
      kind: 'exec',
      text: 'echo hello',
      simpleCommands: [{ program: 'echo', argv: ['echo', 'hello'], text: 'echo hello' }],
    } as Command;
    expect(decide(echo, 'h').action).toBe('allow');
    expect(decide(shell('', []), 'h').action).toBe('allow');
  });

  it('permits file transfers by path, subsystems by name, and channels by kind', () => {
    const write = (path: string) =>
      ({
        protocol: 'ssh',
        kind: 'file-write',
        path,
        text: `sftp write ${path}`,
        simpleCommands: [],
      }) as Command;
    expect(decide(write('/srv/upload/a.txt'), 'h').action).toBe('allow');
    expect(decide(write('/etc/passwd'), 'h').reason).toBe(
      'no allow rule matches a file write of /etc/passwd (listener default: deny)',
    );
    const subsystem = (name: string) =>
      ({
        protocol: 'ssh',
        kind: 'subsystem',
        text: `subsystem ${name}`,
        simpleCommands: [{ program: name, argv: [name], text: name }],
      }) as Command;
    expect(decide(subsystem('sftp'), 'h').action).toBe('allow');
    expect(decide(subsystem('netconf'), 'h').rule).toBe('builtin:default-deny');
    const channel = (kind: string) =>
      ({ protocol: 'ssh', kind: 'channel', channel: kind, text: kind, simpleCommands: [] }) as Command;
    expect(decide(channel('port-forward'), 'h').action).toBe('allow');
    expect(decide(channel('x11'), 'h').rule).toBe('builtin:forwarding-not-allowed');
  });

  it('permits a Docker request by action, and risky facts only where a rule names them', () => {
    expect(decide(docker({}), 'd').action).toBe('allow');
    expect(decide(docker({ action: 'system.version' }), 'd').action).toBe('allow');
    expect(decide(docker({ action: 'container.remove' }), 'd').reason).toBe(
      'no allow rule matches container.remove (listener default: deny)',
    );
    const run = (extra: Record<string, unknown>) =>
      docker({ action: 'container.create', images: ['docker.io/library/alpine:latest'], ...extra });
    expect(decide(run({}), 'd').action).toBe('allow');
    expect(decide(run({ hostMounts: ['/data/x'] }), 'd').action).toBe('allow');
    expect(decide(run({ hostMounts: ['/data/x', '/etc'] }), 'd').reason).toContain(
      'host mounts /data/x, /etc',
    );
    expect(decide(run({ privileged: true }), 'd').rule).toBe('builtin:default-deny');
    expect(decide(run({ capabilities: ['NET_ADMIN'] }), 'd').rule).toBe('builtin:default-deny');
    expect(decide(run({ hostNamespaces: ['network'] }), 'd').rule).toBe('builtin:default-deny');
    // The host cgroup namespace every container has on cgroup v1 needs no rule.
    expect(decide(run({ hostNamespaces: ['cgroup'] }), 'd').action).toBe('allow');
    expect(decide(run({ images: ['docker.io/library/busybox:latest'] }), 'd').rule).toBe(
      'builtin:default-deny',
    );
  });

  it('permits a docker exec when a rule names its programs, or names none', () => {
    const exec = (programs: (string | null)[]) =>
      docker({
        action: 'container.exec',
        exec: programs.map((p) => ({ program: p, argv: [p ?? '$x'], text: p ?? '$x' })),
      });
    expect(decide(exec(['ls']), 'd').action).toBe('allow');
    expect(decide(exec(['ls', 'rm']), 'd').reason).toBe(
      'no allow rule matches program rm (listener default: deny)',
    );
    expect(decide(exec([null]), 'd').rule).toBe('builtin:default-deny');
    expect(decide(docker({ action: 'exec.start' }), 'd').action).toBe('allow');
    const anyExec = createPolicy(
      [{ name: 'exec', protocol: 'docker', match: { actions: ['container.exec'] }, action: 'allow' }],
      listeners,
    );
    expect(anyExec.decide(exec(['rm', null]), agent, 'd').action).toBe('allow');
    // A rule naming programs permits only requests that run a command.
    const programsOnly = createPolicy(
      [{ name: 'ls', protocol: 'docker', match: { programs: ['ls'] }, action: 'allow' }],
      listeners,
    );
    expect(programsOnly.decide(docker({ action: 'container.remove' }), agent, 'd').action).toBe('deny');
    expect(programsOnly.decide(exec(['ls']), agent, 'd').action).toBe('allow');
  });

  it('scopes allow rules by who and listener like any rule', () => {
    const scoped = createPolicy(
      [
        { name: 'dba-drops', who: ['group:dba'], match: { commands: ['DROP'] }, action: 'allow' },
        { name: 'other-listener', listeners: ['open'], match: { commands: ['VACUUM'] }, action: 'allow' },
      ],
      listeners,
    );
    expect(scoped.decide(pg([stmt('DROP TABLE')]), dba, 'db').action).toBe('allow');
    expect(scoped.decide(pg([stmt('DROP TABLE')]), agent, 'db').rule).toBe('builtin:default-deny');
    expect(scoped.decide(pg([stmt('VACUUM')]), dba, 'db').rule).toBe('builtin:default-deny');
  });
});
