import { beforeAll, describe, expect, it } from '@jest/globals';
import type { SqlStatementFacts } from '@agentgate/core';
import { createSqlAnalyzer, SqlSessionState, type SqlAnalyzer } from './index.js';
import { assignmentAsSelect } from './statement-walker.js';
import { LruCache } from './lru-cache.js';

let analyzer: SqlAnalyzer;
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheEntries: 100 });
});

const facts = (sql: string): readonly SqlStatementFacts[] => {
  const a = analyzer.analyze(sql);
  expect(a.error).toBeUndefined();
  return a.statements;
};
const commands = (sql: string): string[] => facts(sql).map((s) => s.command);
const find = (sql: string, command: string): SqlStatementFacts => {
  const s = facts(sql).find((f) => f.command === command);
  if (s === undefined) throw new Error(`no ${command} in ${JSON.stringify(facts(sql))}`);
  return s;
};

describe('SQL analysis: commands, tables, functions', () => {
  it('splits statements as the server does and slices their text', () => {
    const a = analyzer.analyze('select 1; /* a /* nested */ comment */ DrOp TaBlE users;  ');
    expect(a.statements.map(({ command, text }) => ({ command, text }))).toEqual([
      { command: 'SELECT', text: 'select 1' },
      { command: 'DROP TABLE', text: '/* a /* nested */ comment */ DrOp TaBlE users' },
    ]);
    expect(a.statements[1]?.tables).toEqual(['users']);
  });

  it('slices statement text by UTF-8 byte offsets', () => {
    const a = analyzer.analyze("select 'ünïcødé ✓'; delete from t where x = 1");
    expect(a.statements.map((s) => s.text)).toEqual(["select 'ünïcødé ✓'", 'delete from t where x = 1']);
  });

  it('folds unquoted names, keeps quoted case and decodes U& identifiers', () => {
    expect(find('DROP TABLE App."Users", U&"d\\0061t"', 'DROP TABLE').tables).toEqual(['app.Users', 'dat']);
    expect(find('SELECT * FROM Public.ORDERS o JOIN x ON true', 'SELECT').tables).toEqual([
      'public.orders',
      'x',
    ]);
  });

  it('names every kind of drop with a leading DROP', () => {
    expect(
      commands('DROP INDEX i; DROP VIEW v; DROP MATERIALIZED VIEW m; DROP SCHEMA s CASCADE; DROP DATABASE d'),
    ).toEqual(['DROP INDEX', 'DROP VIEW', 'DROP MATERIALIZED VIEW', 'DROP SCHEMA', 'DROP DATABASE']);
    expect(commands('TRUNCATE a, b; ALTER TABLE t ADD c int; ALTER SYSTEM SET work_mem = 1')[0]).toBe(
      'TRUNCATE',
    );
    expect(find('TRUNCATE a, s.b', 'TRUNCATE').tables).toEqual(['a', 's.b']);
    expect(find('ALTER TABLE users DROP COLUMN ssn', 'ALTER TABLE').tables).toEqual(['users']);
  });

  it('collects relations from joins, subqueries, CTEs and DML targets', () => {
    const s = find(
      'SELECT (SELECT max(id) FROM a) FROM b JOIN c USING (id) WHERE EXISTS (SELECT 1 FROM d) AND id IN (SELECT id FROM e)',
      'SELECT',
    );
    expect([...s.tables].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(s.functions).toEqual(['max']);
    expect(find('INSERT INTO t SELECT * FROM u RETURNING lower(x)', 'INSERT')).toMatchObject({
      tables: ['t', 'u'],
      functions: ['lower'],
    });
    expect(find('UPDATE t SET a = f(1) FROM u WHERE t.id = u.id', 'UPDATE')).toMatchObject({
      tables: ['t', 'u'],
      unfilteredWrite: false,
    });
    expect(find('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'MERGE').tables).toEqual([
      't',
      's',
    ]);
    expect(find('LOCK TABLE a', 'LOCK TABLE').tables).toEqual(['a']);
  });

  it('reports functions anywhere, schema-qualified, including in FROM, defaults and CALL', () => {
    expect(find("SELECT * FROM pg_catalog.PG_READ_FILE('/etc/passwd')", 'SELECT').functions).toEqual([
      'pg_catalog.pg_read_file',
    ]);
    expect(find('CREATE TABLE t (a int DEFAULT nextval(1))', 'CREATE TABLE').functions).toEqual(['nextval']);
    expect(find("CALL p(lo_import('/etc/shadow'))", 'CALL').functions).toEqual(['p', 'lo_import']);
    expect(
      find('CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION s.trg()', 'CREATE TRIGGER'),
    ).toMatchObject({
      tables: ['t'],
      functions: ['s.trg'],
    });
  });

  it('flags UPDATE/DELETE without a WHERE that references a column', () => {
    expect(find('DELETE FROM users', 'DELETE').unfilteredWrite).toBe(true);
    expect(find('DELETE FROM users WHERE true', 'DELETE').unfilteredWrite).toBe(true);
    expect(find('UPDATE users SET a = 1 WHERE 1 = 1', 'UPDATE').unfilteredWrite).toBe(true);
    expect(find('DELETE FROM users WHERE id = 3', 'DELETE').unfilteredWrite).toBe(false);
    expect(find('SELECT 1', 'SELECT').unfilteredWrite).toBe(false);
  });
});

describe('SQL analysis: nested statements', () => {
  it('writable CTEs are statements of their own', () => {
    const all = facts('WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone');
    expect(all.map((s) => s.command)).toEqual(['SELECT', 'DELETE']);
    expect(all[1]).toMatchObject({ tables: ['users'], unfilteredWrite: true });
    expect(all[0]?.tables).toContain('users');
  });

  it('EXPLAIN ANALYZE, CREATE VIEW/TABLE AS, COPY (query), SELECT INTO and rule actions', () => {
    expect(commands('EXPLAIN ANALYZE DELETE FROM t')).toEqual(['EXPLAIN', 'DELETE']);
    expect(commands('CREATE VIEW v AS SELECT * FROM users')).toEqual(['CREATE VIEW', 'SELECT']);
    expect(commands('CREATE MATERIALIZED VIEW v AS SELECT 1')).toEqual([
      'CREATE MATERIALIZED VIEW',
      'SELECT',
      'INSERT',
    ]);
    expect(commands('COPY (SELECT * FROM users) TO STDOUT')).toEqual(['COPY', 'SELECT']);
    expect(find('SELECT * INTO copy_of_users FROM users', 'CREATE TABLE AS').tables).toEqual([
      'copy_of_users',
      'users',
    ]);
    expect(find('CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM users', 'DELETE').tables).toEqual([
      'users',
    ]);
  });

  it('function bodies are analysed at CREATE time: SQL, BEGIN ATOMIC and PL/pgSQL', () => {
    expect(
      find("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DROP TABLE users'", 'DROP TABLE'),
    ).toMatchObject({
      tables: ['users'],
      text: 'DROP TABLE users',
    });
    expect(commands('CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM users; END')).toEqual([
      'CREATE PROCEDURE',
      'DELETE',
    ]);
    const pl = facts(`CREATE FUNCTION g(n int) RETURNS int LANGUAGE plpgsql AS $$
      DECLARE x int := (SELECT count(*) FROM t0); r record;
      BEGIN
        x := (SELECT max(id) FROM t1);
        PERFORM pg_read_file('/etc/passwd');
        FOR r IN SELECT * FROM t2 LOOP UPDATE t3 SET a = 1; END LOOP;
        TRUNCATE t4;
        RETURN n;
      END $$`);
    const plCommands = pl.map((s) => s.command);
    expect(plCommands[0]).toBe('CREATE FUNCTION');
    expect(plCommands).toEqual(expect.arrayContaining(['UPDATE', 'TRUNCATE']));
    expect([...(pl[0]?.tables ?? [])].sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
    expect(pl[0]?.functions).toEqual(expect.arrayContaining(['pg_read_file', 'count', 'max']));
    expect(pl.find((s) => s.command === 'UPDATE')?.unfilteredWrite).toBe(true);
  });

  it('bodies in languages the gateway cannot read are dynamic', () => {
    expect(facts("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'")[0]?.dynamic).toBe(true);
    expect(
      facts("CREATE FUNCTION rd(text) RETURNS text LANGUAGE internal AS 'pg_read_file_off_len'")[0]?.dynamic,
    ).toBe(true);
    expect(facts("DO LANGUAGE plperl 'system(1)'")[0]?.dynamic).toBe(true);
  });

  it('DO blocks: static EXECUTE strings are analysed, computed ones are dynamic', () => {
    const all = facts(
      "DO $$ BEGIN EXECUTE 'DROP TABLE users'; EXECUTE format('TRUNCATE %I', 'x' || 'y'); END $$",
    );
    expect(all[0]?.command).toBe('DO');
    expect(all.find((s) => s.command === 'DROP TABLE')?.tables).toEqual(['users']);
    const dyn = all.find((s) => s.dynamic);
    expect(dyn).toMatchObject({ command: 'EXECUTE', functions: ['format'] });
    expect(
      facts('DO $$ DECLARE q text := 1; r record; BEGIN FOR r IN EXECUTE q LOOP END LOOP; END $$').some(
        (s) => s.dynamic,
      ),
    ).toBe(true);
  });

  it('SQL run by query_to_xml/dblink is analysed when literal, dynamic when computed', () => {
    expect(find("SELECT query_to_xml('DELETE FROM users', true, true, '')", 'DELETE').tables).toEqual([
      'users',
    ]);
    expect(facts("SELECT dblink_exec('dbname=app', 'DROP TABLE t')").map((s) => s.command)).toContain(
      'DROP TABLE',
    );
    expect(facts("SELECT dblink_exec('dbname=app', $1)").some((s) => s.dynamic)).toBe(true);
    expect(find("SELECT * FROM ts_stat('SELECT to_tsvector(x) FROM secret')", 'SELECT').tables).toContain(
      'secret',
    );
    expect(
      facts("SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')").flatMap((s) => s.tables),
    ).toContain('aliases');
    expect(facts("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)").some((s) => s.dynamic)).toBe(
      false,
    );
  });
});

describe('SQL analysis: traps', () => {
  it.each([
    'SET standard_conforming_strings = off',
    'SET LOCAL standard_conforming_strings TO off',
    'SET SESSION standard_conforming_strings = 0',
    'RESET standard_conforming_strings',
    'SET standard_conforming_strings TO DEFAULT',
    "SET client_encoding = 'SJIS'",
    "SET NAMES 'GBK'",
    'SET client_encoding FROM CURRENT',
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT pg_catalog.set_config('client_encoding', 'BIG5', true)",
    'SELECT set_config(name, setting, false) FROM x',
    'ALTER ROLE bob SET standard_conforming_strings = off',
    "ALTER DATABASE app SET client_encoding = 'SJIS'",
    'ALTER SYSTEM SET standard_conforming_strings = off',
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = off AS 'select 1'",
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    "DO $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$",
  ])('refuses %s', (sql) => {
    expect(analyzer.analyze(sql).refused).toMatch(/refused/);
  });

  it.each([
    "SET client_encoding = 'UTF8'",
    'SET standard_conforming_strings = on',
    'RESET ALL',
    'DISCARD ALL',
    'SET work_mem = 1',
  ])('allows %s', (sql) => {
    expect(analyzer.analyze(sql).refused).toBeUndefined();
  });

  it('reports SET ROLE and SET SESSION AUTHORIZATION however they are spelt', () => {
    expect(commands('SET ROLE admin')).toEqual(['SET ROLE']);
    expect(commands('SET LOCAL ROLE admin')).toEqual(['SET ROLE']);
    expect(commands('SET SESSION AUTHORIZATION postgres')).toEqual(['SET SESSION AUTHORIZATION']);
    expect(commands("SELECT set_config('ROLE', 'admin', false)")).toEqual(['SELECT', 'SET ROLE']);
    expect(commands("SELECT pg_catalog.set_config('session_authorization', 'x', true)")).toContain(
      'SET SESSION AUTHORIZATION',
    );
  });

  it('COPY PROGRAM and server files get a statement of their own', () => {
    expect(commands("COPY t TO PROGRAM 'curl x'")).toEqual(['COPY', 'COPY PROGRAM', 'SELECT']);
    expect(commands("COPY t FROM '/etc/passwd'")).toEqual(['COPY', 'COPY FILE', 'INSERT']);
    expect(commands('COPY t FROM STDIN')).toEqual(['COPY', 'INSERT']);
  });

  it('parse failures are errors, never empty passes', () => {
    expect(analyzer.analyze('SELEC 1').error).toMatch(/syntax error/);
    expect(analyzer.analyze('SELECT 1; DROP TABLE').error).toMatch(/syntax error/);
    expect(analyzer.analyze("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DROPP x'").error).toMatch(
      /syntax error/,
    );
    expect(analyzer.analyze('DO $$ BEGIN DROPP; END $$').error).toBeDefined();
  });
});

describe('SQL analysis: PREPARE / EXECUTE per session', () => {
  it('EXECUTE yields the prepared body, DEALLOCATE forgets it, unknown names are errors', () => {
    const state = new SqlSessionState();
    analyzer.analyze('PREPARE wipe AS DELETE FROM users', state);
    const exec = analyzer.analyze('EXECUTE wipe', state);
    expect(exec.statements.map((s) => s.command)).toEqual(['EXECUTE', 'DELETE']);
    expect(exec.statements[1]).toMatchObject({ tables: ['users'], unfilteredWrite: true });
    // The cache holds the session-independent part: another session does not know `wipe`.
    expect(analyzer.analyze('EXECUTE wipe', new SqlSessionState()).error).toMatch(/not known/);
    analyzer.analyze('DEALLOCATE wipe', state);
    expect(analyzer.analyze('EXECUTE wipe', state).error).toMatch(/not known/);
  });

  it('resolves within one message, through EXPLAIN and CREATE TABLE AS, and survives DEALLOCATE ALL / DISCARD ALL', () => {
    const state = new SqlSessionState();
    const one = analyzer.analyze('PREPARE p AS DELETE FROM a; EXPLAIN ANALYZE EXECUTE p', state);
    expect(one.statements.filter((s) => s.command === 'DELETE')).toHaveLength(2);
    expect(analyzer.analyze('CREATE TABLE x AS EXECUTE p', state).statements.map((s) => s.command)).toContain(
      'DELETE',
    );
    analyzer.analyze('DEALLOCATE ALL', state);
    expect(state.size).toBe(0);
    analyzer.analyze('PREPARE q AS SELECT 1', state);
    analyzer.analyze('DISCARD ALL', state);
    expect(analyzer.analyze('EXECUTE q', state).error).toBeDefined();
  });

  it('a re-PREPARE under a live name keeps both bodies (the server keeps the first)', () => {
    const state = new SqlSessionState();
    analyzer.analyze('PREPARE p AS DELETE FROM users WHERE id = $1', state);
    analyzer.analyze('PREPARE p AS SELECT 1', state);
    expect(analyzer.analyze('EXECUTE p(1)', state).statements.map((s) => s.command)).toContain('DELETE');
  });

  it('EXECUTE without a session state is unanalysable', () => {
    expect(analyzer.analyze('EXECUTE anything').error).toBeDefined();
  });
});

describe('helpers', () => {
  it('turns PL/pgSQL assignments into SELECTs', () => {
    const squeeze = (s: string): string => s.replace(/\s+/g, ' ');
    expect(squeeze(assignmentAsSelect('a[i] := (SELECT 1 FROM t)'))).toBe('SELECT a[i] , (SELECT 1 FROM t)');
    expect(squeeze(assignmentAsSelect("x = 'a:=b'"))).toBe("SELECT x , 'a:=b'");
  });

  it('LRU evicts the least recently used entry', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.size).toBe(2);
  });

  it('returns the cached analysis object for a repeated text', () => {
    const q = 'SELECT abalance FROM pgbench_accounts WHERE aid = 1';
    expect(analyzer.analyze(q)).toBe(analyzer.analyze(q));
  });
});
