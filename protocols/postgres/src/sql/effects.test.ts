/** Row effects beyond a statement's own command (effects.ts), as the analyzer reports them. */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { SqlStatementFacts } from '@agentgate/core';
import { createSqlAnalyzer, type SqlAnalyzer } from './index.js';

let analyzer: SqlAnalyzer;
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheEntries: 100 });
});

const facts = (sql: string): readonly SqlStatementFacts[] => {
  const a = analyzer.analyze(sql);
  expect(a.error).toBeUndefined();
  return a.statements;
};
const summary = (sql: string): string[] =>
  facts(sql).map((f) => `${f.command}${f.unfilteredWrite ? '!' : ''} ${[...f.tables].join(',')}`.trim());

describe('row effects', () => {
  it('MERGE: one fact per action, unfiltered when neither the join nor the WHEN condition names a column', () => {
    expect(
      summary(
        'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND s.x THEN DELETE ' +
          'WHEN MATCHED THEN UPDATE SET a = 1 WHEN NOT MATCHED THEN INSERT VALUES (1) ' +
          'WHEN NOT MATCHED BY SOURCE THEN DO NOTHING',
      ),
    ).toEqual(['MERGE t,s', 'DELETE t,s', 'UPDATE t,s', 'INSERT t,s']);
    expect(summary('MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE')).toEqual([
      'MERGE t,s',
      'DELETE! t,s',
    ]);
    expect(summary('MERGE INTO t USING s ON true WHEN MATCHED AND t.id > 3 THEN UPDATE SET a = 1')).toEqual([
      'MERGE t,s',
      'UPDATE t,s',
    ]);
  });

  it('MERGE inside a writable CTE or a function body has the same effects', () => {
    const cte = facts(
      'WITH m AS (MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN DELETE RETURNING *) SELECT 1',
    );
    expect(cte.map((f) => f.command)).toEqual(['SELECT', 'MERGE', 'DELETE']);
    const body = facts(
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN UPDATE SET a = 1'",
    );
    expect(body.map((f) => f.command)).toEqual(['CREATE FUNCTION', 'MERGE', 'UPDATE']);
  });

  it('INSERT … ON CONFLICT DO UPDATE updates; DO NOTHING does not', () => {
    expect(summary('INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2')).toEqual([
      'INSERT users',
      'UPDATE users',
    ]);
    expect(summary('INSERT INTO users VALUES (1) ON CONFLICT DO NOTHING')).toEqual(['INSERT users']);
  });

  it('TRUNCATE deletes every row; COPY FROM inserts, COPY TO reads', () => {
    expect(summary('TRUNCATE a, b CASCADE')).toEqual(['TRUNCATE a,b', 'DELETE! a,b']);
    expect(summary('COPY users FROM STDIN')).toEqual(['COPY users', 'INSERT users']);
    expect(summary('COPY users (id) TO STDOUT')).toEqual(['COPY users', 'SELECT users']);
    expect(summary('COPY (SELECT * FROM users) TO STDOUT')).toEqual(['COPY users', 'SELECT users']);
  });

  it('SELECT INTO, CREATE TABLE AS and materialized views fill the table they create (unless WITH NO DATA)', () => {
    expect(summary('SELECT * INTO archive FROM users')).toEqual([
      'SELECT archive,users',
      'CREATE TABLE AS archive,users',
      'INSERT archive,users',
    ]);
    expect(summary('CREATE TABLE archive AS SELECT * FROM users')).toEqual([
      'CREATE TABLE AS users,archive',
      'SELECT users',
      'INSERT users,archive',
    ]);
    expect(
      summary('CREATE TABLE archive AS SELECT * FROM users WITH NO DATA').map((s) => s.split(' ')[0]),
    ).toEqual(['CREATE', 'SELECT']);
    expect(summary('REFRESH MATERIALIZED VIEW mv')).toEqual([
      'REFRESH MATERIALIZED VIEW mv',
      'DELETE! mv',
      'INSERT mv',
    ]);
  });

  it('large-object and sequence built-ins write rows', () => {
    expect(summary('SELECT lo_unlink(16400)')).toEqual(['SELECT', 'DELETE pg_largeobject']);
    expect(summary("SELECT pg_catalog.lo_import('/etc/hosts')")).toEqual(['SELECT', 'INSERT pg_largeobject']);
    expect(summary("SELECT setval('public.order_seq', 1)")).toEqual(['SELECT', 'UPDATE public.order_seq']);
    expect(summary("SELECT myschema.lo_unlink('x')")).toEqual(['SELECT']);
  });

  it('publications expose tables to readers; subscriptions write to tables nobody named', () => {
    expect(summary('CREATE PUBLICATION p FOR TABLE users')).toEqual([
      'CREATE PUBLICATION users',
      'SELECT users',
    ]);
    const all = facts('CREATE PUBLICATION p FOR ALL TABLES');
    expect(all[1]).toMatchObject({ command: 'SELECT', dynamic: true });
    const sub = facts("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p");
    expect(sub[1]).toMatchObject({ command: 'INSERT', dynamic: true });
  });
});
