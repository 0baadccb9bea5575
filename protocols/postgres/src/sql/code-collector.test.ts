/** What statements reach through the catalog and what they store for later (code-collector.ts). */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createSqlAnalyzer, SqlSessionState, type SqlAnalyzer } from './index.js';
import type { CodeRefs } from './code-refs.js';

let analyzer: SqlAnalyzer;
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheEntries: 100 });
});

const code = (sql: string, state?: SqlSessionState) => {
  const a = analyzer.analyze(sql, state);
  expect(a.error).toBeUndefined();
  return a.code;
};
const calls = (refs: CodeRefs): string[] =>
  refs.calls.map((c) => `${c.name}/${c.argc}${c.attribute ? '@' : ''}${c.variadicCall ? '…' : ''}`);
const relations = (refs: CodeRefs): string[] => refs.relations.map((r) => `${r.effect}:${r.name}`);

describe('references a statement runs', () => {
  it('routine calls with their argument counts, CALL, and attribute notation', () => {
    const refs = code(
      'SELECT f(1, 2), s.g(), u.purge, (u).wipe, h(VARIADIC ARRAY[1]), percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM users u',
    ).refs;
    expect(calls(refs)).toEqual(['f/2', 'g/0', 'purge/1@', 'wipe/1@', 'h/1…', 'percentile_cont/2']);
    expect(calls(code('CALL purge(1)').refs)).toEqual(['purge/1']);
  });

  it('operators, implicit comparisons and casts', () => {
    const refs = code(
      "SELECT a === b, x BETWEEN 1 AND 2, y LIKE 'a%', z::mytype, CAST(w AS dom) FROM t JOIN s USING (id) GROUP BY 1 ORDER BY 1",
    ).refs;
    expect([...new Set(refs.operators.map((o) => o.name))].sort()).toEqual([
      '<',
      '<=',
      '=',
      '===',
      '>',
      '>=',
      '~~',
    ]);
    expect(refs.types.map((t) => t.name)).toEqual(['mytype', 'dom']);
  });

  it('relations by effect: reads, writes, upserts, MERGE actions, TRUNCATE CASCADE, maintenance', () => {
    expect(relations(code('SELECT * FROM a JOIN b ON true WHERE EXISTS (SELECT 1 FROM c)').refs)).toEqual([
      'read:a',
      'read:b',
      'read:c',
    ]);
    expect(relations(code('UPDATE t SET a = 1 FROM s').refs)).toEqual(['update:t', 'read:t', 'read:s']);
    expect(relations(code('INSERT INTO t SELECT 1 ON CONFLICT (id) DO UPDATE SET a = 2').refs)).toEqual([
      'insert:t',
      'update:t',
      'read:t',
    ]);
    expect(relations(code('MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE').refs)).toEqual([
      'delete:t',
      'read:t',
      'read:s',
    ]);
    const truncate = code('TRUNCATE a CASCADE').refs.relations[0];
    expect(truncate).toMatchObject({ name: 'a', effect: 'truncate', cascade: true });
    expect(relations(code('VACUUM ANALYZE').refs)).toEqual(['maintain:*']);
    expect(relations(code('REFRESH MATERIALIZED VIEW mv').refs)).toEqual(['refresh:mv']);
    expect(relations(code('DROP TABLE a').refs)).toEqual([]);
  });

  it('DDL fires event triggers; queries do not', () => {
    expect(code('CREATE TABLE t (a int)').refs.ddl).toEqual([0]);
    expect(code('SELECT 1; BEGIN; INSERT INTO t VALUES (1)').refs.ddl).toEqual([]);
  });

  it('a prepared body reaches the same code when EXECUTEd', () => {
    const state = new SqlSessionState();
    code('PREPARE p AS SELECT cleanup() FROM users', state);
    const exec = analyzer.analyze('EXECUTE p', state);
    expect(calls(exec.code.refs)).toEqual(['cleanup/0']);
    expect(exec.code.refs.calls[0]?.origin).toBe(1);
    expect(exec.statements[1]?.functions).toEqual(['cleanup']);
  });
});

describe('code a statement stores', () => {
  it('a function body is stored under its name, not run', () => {
    const c = code("CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM users; SELECT purge()'");
    expect(c.refs.calls).toEqual([]);
    expect(c.definitions).toHaveLength(1);
    expect(c.definitions[0]).toMatchObject({ subjects: ['wipe'], from: 1, to: 3 });
    expect(calls(c.definitions[0]!.refs)).toEqual(['purge/0']);
    expect(relations(c.definitions[0]!.refs)).toEqual(['delete:users', 'read:users']);
  });

  it('triggers, rules, views, policies and column defaults are stored under their relation', () => {
    const trigger = code('CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION s.trg()')
      .definitions[0];
    expect(trigger?.subjects).toEqual(['t']);
    expect(calls(trigger!.refs)).toEqual(['trg/-1']);
    const rule = code('CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM users').definitions[0];
    expect(rule).toMatchObject({ subjects: ['t'] });
    expect(relations(rule!.refs)).toEqual(['delete:users', 'read:users']);
    expect(code('CREATE VIEW v AS SELECT f() FROM users').definitions[0]?.subjects).toEqual(['v']);
    expect(code('CREATE POLICY p ON t USING (f())').definitions[0]?.subjects).toEqual(['t']);
    const table = code(
      'CREATE TABLE c (a int DEFAULT f(), b int REFERENCES p ON DELETE CASCADE) INHERITS (parent)',
    );
    expect(table.refs.calls).toEqual([]);
    expect(table.definitions[0]).toMatchObject({
      subjects: ['c', 'p'],
      children: [{ parent: 'parent', child: 'c' }],
      foreignKeys: [{ referenced: 'p', referencing: 'c', onDelete: 'c', onUpdate: 'a' }],
    });
  });

  it('CREATE INDEX and ALTER TABLE store their expressions and run them at once', () => {
    const index = code('CREATE INDEX ON t (f(a))');
    expect(calls(index.refs)).toEqual(['f/1']);
    expect(calls(index.definitions[0]!.refs)).toEqual(['f/1']);
    const alter = code('ALTER TABLE t ADD COLUMN b int DEFAULT g()');
    expect(calls(alter.refs)).toEqual(['g/0']);
    expect(code('ALTER TABLE t ATTACH PARTITION t_1 FOR VALUES IN (1)').definitions[0]?.children).toEqual([
      { parent: 't', child: 't_1' },
    ]);
  });

  it('operators, aggregates, casts and domains are stored under their names', () => {
    expect(
      code('CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = op_fn)').definitions[0],
    ).toMatchObject({
      subjects: ['==='],
    });
    const agg = code('CREATE AGGREGATE agg (int) (SFUNC = s.f, STYPE = int, FINALFUNC = g)').definitions[0];
    expect(calls(agg!.refs)).toEqual(['f/-1', 'g/-1']);
    expect(code('CREATE CAST (int AS mytype) WITH FUNCTION to_my(int)').definitions[0]?.subjects).toEqual([
      'mytype',
      'int4',
    ]);
    expect(code('CREATE DOMAIN d AS int CHECK (ok(VALUE))').definitions[0]?.subjects).toEqual(['d']);
  });

  it('renames, event triggers and extension scripts', () => {
    expect(code('ALTER FUNCTION purge() RENAME TO harmless').definitions[0]).toMatchObject({
      subjects: ['purge', 'harmless'],
      renames: [{ from: 'purge', to: 'harmless' }],
    });
    expect(code('ALTER TABLE a RENAME TO b').definitions[0]?.renames).toEqual([{ from: 'a', to: 'b' }]);
    expect(
      code('CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION f()').definitions[0],
    ).toMatchObject({
      eventTrigger: true,
    });
    expect(code('CREATE EXTENSION hstore').definitions[0]?.opaque).toBeDefined();
  });
});
