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
      hostNamespaces: false,
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
