/**
 * Resolution of code references through a catalog (code-resolver.ts). The catalog here is an in-memory table of
 * routines and relations answering the same queries the upstream answers; the integration suite
 * (tests/src/postgres-effects.test.ts) runs the same paths against a real PostgreSQL.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { SqlStatementFacts } from '@agentgate/core';
import type { CatalogQueryRunner, TextRows } from './catalog-connection.js';
import { CodeCatalog, TRIGGER_DELETE, TRIGGER_INSERT } from './code-catalog.js';
import { reachesNothing, resolveCode } from './code-resolver.js';
import { PendingCode } from './pending-code.js';
import { SqlSessionAnalysis } from './session-analysis.js';
import { createSqlAnalyzer, type SqlAnalyzer } from './index.js';

interface Routine {
  oid: number;
  xmin?: number;
  name: string;
  schema?: string;
  nargs?: number;
  ndefaults?: number;
  variadic?: boolean;
  kind?: string;
  language?: string;
  extension?: boolean;
  aliases?: string[];
  aggregate?: number[];
  /** The CREATE FUNCTION text pg_get_functiondef returns. */
  definition?: string;
}

/** An upstream catalog in memory: snapshot rows, and the routine queries answered from `routines`. */
class MemoryCatalog implements CatalogQueryRunner {
  routines: Routine[] = [];
  snapshotRows: TextRows = [];
  definitionsRead = 0;

  async query(sql: string): Promise<TextRows> {
    if (sql.includes("SELECT 'n'")) {
      const names = new Map<string, [boolean, boolean]>();
      for (const r of this.routines) names.set(r.name, [true, names.get(r.name)?.[1] ?? false]);
      for (const b of ['now', 'lower', 'count', 'lo_unlink', 'pg_terminate_backend'])
        names.set(b, [names.get(b)?.[0] ?? false, true]);
      return [
        ...[...names].map(([n, [user, builtin]]) => ['n', n, String(user), String(builtin), null, null]),
        ...this.snapshotRows,
      ];
    }
    if (sql.includes('pg_get_functiondef')) {
      const oids = listIn(sql, 'oid').map(Number);
      this.definitionsRead += oids.length;
      return this.routines
        .filter((r) => oids.includes(r.oid) && r.definition !== undefined)
        .map((r) => [String(r.oid), String(r.xmin ?? 1), r.definition!]);
    }
    const names = listIn(sql, 'name');
    const oids = listIn(sql, 'oid').map(Number);
    return this.routines
      .filter((r) => names.includes(r.name) || oids.includes(r.oid))
      .map((r) => [
        String(r.oid),
        String(r.xmin ?? 1),
        r.name,
        r.schema ?? 'public',
        String(r.nargs ?? 0),
        String(r.ndefaults ?? 0),
        String(r.variadic ?? false),
        r.kind ?? 'f',
        r.language ?? 'sql',
        String(r.extension ?? false),
        r.aliases?.join(',') ?? null,
        r.aggregate?.join(',') ?? null,
      ]);
  }

  close(): void {}
}

/** The elements of `ARRAY[…]::pg_catalog.<type>[]` in a query. */
function listIn(sql: string, type: string): string[] {
  const m = new RegExp(`ARRAY\\[([^\\]]*)\\]::pg_catalog\\.${type}\\[\\]`).exec(sql);
  if (!m || m[1] === '') return [];
  return m[1]!.split(',').map((x) => x.trim().replace(/^'|'$/g, '').replace(/''/g, "'"));
}

let analyzer: SqlAnalyzer;
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheEntries: 500 });
});

const fn = (oid: number, name: string, body: string, extra: Partial<Routine> = {}): Routine => ({
  oid,
  name,
  definition: `CREATE OR REPLACE FUNCTION public.${name}() RETURNS void LANGUAGE ${extra.language ?? 'sql'} AS $f$${body}$f$`,
  ...extra,
});

function setup(
  routines: Routine[],
  snapshotRows: TextRows = [],
): { memory: MemoryCatalog; catalog: CodeCatalog } {
  const memory = new MemoryCatalog();
  memory.routines = routines;
  memory.snapshotRows = snapshotRows;
  return { memory, catalog: new CodeCatalog(memory, analyzer) };
}

async function resolve(
  catalog: CodeCatalog,
  sql: string,
  pending = new PendingCode(),
): Promise<readonly SqlStatementFacts[]> {
  const a = analyzer.analyze(sql);
  expect(a.error).toBeUndefined();
  pending.add(a.code.definitions, a.statements, 0);
  return (await resolveCode(catalog, a.statements, a.code.refs, pending)).facts;
}

const summary = (facts: readonly SqlStatementFacts[]): string[] =>
  facts.map(
    (f) =>
      `${f.dynamic ? '?' : ''}${f.command}${f.tables.length ? ` ${f.tables.join(',')}` : ''}${
        f.functions.length ? ` (${f.functions.join(',')})` : ''
      }`,
  );

describe('routines', () => {
  it('a SQL function call runs its body; a PL/pgSQL one calling another runs both, once each', async () => {
    const { catalog } = setup([
      fn(20000, 'cleanup', 'DELETE FROM users WHERE id > 5'),
      fn(20001, 'outer_fn', 'BEGIN PERFORM cleanup(); PERFORM outer_fn(); END', { language: 'plpgsql' }),
    ]);
    expect(summary(await resolve(catalog, 'SELECT cleanup()'))).toEqual(['DELETE users']);
    expect(summary(await resolve(catalog, 'SELECT outer_fn()'))).toEqual([
      'SELECT (cleanup)',
      'SELECT (outer_fn)',
      'DELETE users',
    ]);
  });

  it('built-ins are not followed; names nobody has are unknown', async () => {
    const { catalog } = setup([]);
    expect(await resolve(catalog, "SELECT now(), lower('A'), count(*) FROM t")).toEqual([]);
    expect(summary(await resolve(catalog, 'SELECT nobody_has_this()'))).toEqual([
      '?EXECUTE (nobody_has_this)',
    ]);
    // Attribute notation is a column unless such a routine exists.
    expect(await resolve(catalog, 'SELECT u.name FROM users u')).toEqual([]);
  });

  it('every schema and every overload whose argument count fits', async () => {
    const { catalog } = setup([
      { ...fn(20010, 'pick', 'DELETE FROM a'), nargs: 1 },
      { ...fn(20011, 'pick', 'DELETE FROM b'), schema: 'evil', nargs: 2, ndefaults: 1 },
      { ...fn(20012, 'pick', 'DELETE FROM c'), nargs: 3 },
      { ...fn(20013, 'pick', 'DELETE FROM d'), nargs: 1, variadic: true },
    ]);
    expect(summary(await resolve(catalog, 'SELECT pick(1)')).sort()).toEqual([
      'DELETE a',
      'DELETE b',
      'DELETE d',
    ]);
    expect(summary(await resolve(catalog, 'SELECT pick(1, 2, 3, 4)'))).toEqual(['DELETE d']);
  });

  it('C outside an extension and other languages are unknown; extension C is the server’s; internal aliases are their built-in', async () => {
    const { catalog } = setup([
      { oid: 20020, name: 'c_fn', language: 'c' },
      { oid: 20021, name: 'ext_fn', language: 'c', extension: true },
      { oid: 20022, name: 'py_fn', language: 'plpython3u' },
      { oid: 20023, name: 'unlink_alias', language: 'internal', nargs: 1, aliases: ['lo_unlink'] },
    ]);
    expect(summary(await resolve(catalog, 'SELECT c_fn()'))).toEqual(['?EXECUTE (public.c_fn)']);
    expect(await resolve(catalog, 'SELECT ext_fn()')).toEqual([]);
    expect(summary(await resolve(catalog, 'SELECT py_fn()'))).toEqual(['?EXECUTE (public.py_fn)']);
    expect(summary(await resolve(catalog, 'SELECT unlink_alias(1)'))).toEqual([
      'SELECT (unlink_alias,lo_unlink)',
      'DELETE pg_largeobject (lo_unlink)',
    ]);
  });

  it('aggregates run their support functions', async () => {
    const { catalog } = setup([
      { oid: 20030, name: 'my_agg', kind: 'a', nargs: 1, aggregate: [20031] },
      fn(20031, 'my_sfunc', 'DELETE FROM audit'),
    ]);
    expect(summary(await resolve(catalog, 'SELECT my_agg(x) FROM t'))).toEqual([
      'SELECT t (my_agg,public.my_sfunc)',
      'DELETE audit',
    ]);
  });

  it('a chain deeper than the bound is unknown', async () => {
    const chain = Array.from({ length: 12 }, (_, i) =>
      fn(20100 + i, `step${i}`, i === 11 ? 'SELECT 1' : `SELECT step${i + 1}()`),
    );
    const { catalog } = setup(chain);
    expect((await resolve(catalog, 'SELECT step0()')).some((f) => f.dynamic)).toBe(true);
  });

  it('bodies are cached per (oid, xmin): a replaced routine is read again', async () => {
    const routine = fn(20200, 'later', 'SELECT 2');
    const { memory, catalog } = setup([routine]);
    expect(summary(await resolve(catalog, 'SELECT later()'))).toEqual(['SELECT']);
    expect(summary(await resolve(catalog, 'SELECT later()'))).toEqual(['SELECT']);
    expect(memory.definitionsRead).toBe(1);
    Object.assign(routine, { xmin: 2, definition: fn(0, 'later', 'DELETE FROM users').definition });
    expect(summary(await resolve(catalog, 'SELECT later()'))).toEqual(['DELETE users']);
    expect(memory.definitionsRead).toBe(2);
  });
});

describe('code attached to relations', () => {
  const rows: TextRows = [
    ['r', '30000', 'public', 'events', 'r', null],
    ['r', '30001', 'public', 'users', 'r', null],
    ['r', '30002', 'public', 'user_names', 'v', ' SELECT users.id, users.name FROM users;'],
    ['r', '30003', 'public', 'accounts', 'r', null],
    ['r', '30004', 'public', 'parent', 'r', null],
    ['r', '30005', 'public', 'child', 'r', null],
    ['r', '30006', 'public', 'logs', 'r', null],
    ['r', '30007', 'public', 'audit', 'r', null],
    ['t', '30000', String(TRIGGER_INSERT | 1), '20300', null, null],
    ['t', '30000', String(TRIGGER_DELETE | 1), '20301', null, null],
    [
      'u',
      '30006',
      '3',
      'CREATE RULE r AS ON INSERT TO public.logs DO ALSO DELETE FROM users WHERE users.id = 3;',
      null,
      null,
    ],
    ['w', '30007', '20302', null, null, null],
    ['i', '30005', '30004', null, null, null],
    ['f', '30001', '30003', 'c', 'n', null],
  ];
  const routines = [
    fn(20300, 'on_insert', 'DELETE FROM users WHERE id = 2'),
    fn(20301, 'on_delete', 'UPDATE users SET name = 1'),
    fn(20302, 'default_fn', 'DELETE FROM users WHERE id = 1'),
  ];

  it('triggers by event, rules, defaults', async () => {
    const { catalog } = setup(routines, rows);
    expect(summary(await resolve(catalog, 'INSERT INTO events VALUES (1)'))).toEqual([
      'INSERT events (public.on_insert)',
      'DELETE users',
    ]);
    expect(summary(await resolve(catalog, 'DELETE FROM events'))).toEqual([
      'DELETE events (public.on_delete)',
      'UPDATE users',
    ]);
    expect(await resolve(catalog, 'SELECT * FROM events')).toEqual([]);
    expect(summary(await resolve(catalog, 'INSERT INTO logs VALUES (1)'))).toEqual(['DELETE users']);
    expect(summary(await resolve(catalog, 'INSERT INTO audit VALUES (1)'))).toEqual([
      'INSERT audit (public.default_fn)',
      'DELETE users',
    ]);
    expect(await resolve(catalog, 'DELETE FROM audit WHERE id = 1')).toEqual([]);
  });

  it('views: reading runs their query, writing writes their tables', async () => {
    const { catalog } = setup(routines, rows);
    expect(summary(await resolve(catalog, 'SELECT * FROM user_names'))).toEqual(['SELECT users']);
    expect(summary(await resolve(catalog, "UPDATE user_names SET name = 'x' WHERE id = 1"))).toContain(
      'UPDATE users',
    );
  });

  it('inheritance children and foreign keys’ actions', async () => {
    const { catalog } = setup(routines, rows);
    // The target is read too (its WHERE, RETURNING), so the child is read and deleted from.
    expect(summary(await resolve(catalog, 'DELETE FROM parent WHERE id = 1'))).toEqual([
      'DELETE public.child',
      'SELECT public.child',
    ]);
    expect(summary(await resolve(catalog, 'DELETE FROM accounts WHERE id = 1'))).toEqual([
      'DELETE public.users',
    ]);
    expect(summary(await resolve(catalog, 'UPDATE accounts SET id = 2 WHERE id = 1'))).toEqual([
      'UPDATE public.users',
    ]);
    expect(await resolve(catalog, 'TRUNCATE accounts')).toEqual([]);
    expect(summary(await resolve(catalog, 'TRUNCATE accounts CASCADE'))).toEqual([
      'TRUNCATE public.users',
      'DELETE public.users',
    ]);
  });

  it('a relation with many partitions is one fact per command; VACUUM reaches only tables with expressions', async () => {
    const partitions: TextRows = Array.from({ length: 300 }, (_, i) => [
      ['r', String(31000 + i), 'public', `m_${i}`, 'r', null],
      ['i', String(31000 + i), '30004', null, null, null],
    ]).flat();
    const { catalog } = setup(routines, [...rows, ...partitions]);
    const facts = await resolve(catalog, 'UPDATE parent SET id = 2');
    expect(facts.map((f) => f.command)).toEqual(['UPDATE', 'SELECT']);
    expect(facts[0]?.tables).toHaveLength(301);
    expect(facts[0]?.unfilteredWrite).toBe(true);
    expect(summary(await resolve(catalog, 'VACUUM ANALYZE'))).toEqual([
      'VACUUM (public.default_fn)',
      'DELETE users',
    ]);
  });

  it('statements reaching no code need no resolution', async () => {
    const { catalog } = setup(routines, rows);
    const snapshot = await catalog.snapshot();
    const refs = (sql: string) => analyzer.analyze(sql).code.refs;
    expect(reachesNothing(snapshot, refs('SELECT lower(name), now() FROM users WHERE id = 1'))).toBe(true);
    expect(reachesNothing(snapshot, refs('UPDATE users SET name = 1 WHERE id = 1'))).toBe(true);
    expect(reachesNothing(snapshot, refs('SELECT * FROM user_names'))).toBe(false);
    expect(reachesNothing(snapshot, refs('SELECT on_insert()'))).toBe(false);
    expect(reachesNothing(snapshot, refs('SELECT unheard_of()'))).toBe(false);
  });
});

describe('code defined earlier in the transaction', () => {
  it('a function created, a routine renamed, a trigger added: later statements run them', async () => {
    const { catalog } = setup([fn(20400, 'cleanup', 'DELETE FROM users')]);
    const pending = new PendingCode();
    await resolve(catalog, "CREATE FUNCTION fresh() RETURNS void LANGUAGE sql AS 'TRUNCATE orders'", pending);
    expect(summary(await resolve(catalog, 'SELECT fresh()', pending))).toEqual([
      'TRUNCATE orders',
      'DELETE orders',
    ]);
    await resolve(catalog, 'ALTER FUNCTION cleanup() RENAME TO harmless', pending);
    expect(summary(await resolve(catalog, 'SELECT harmless()', pending))).toEqual(['DELETE users']);
    await resolve(
      catalog,
      'CREATE TRIGGER tr AFTER INSERT ON scratch FOR EACH ROW EXECUTE FUNCTION cleanup()',
      pending,
    );
    expect(summary(await resolve(catalog, 'INSERT INTO scratch VALUES (1)', pending))).toContain(
      'DELETE users',
    );
    pending.transactionEnded(0);
    expect(await resolve(catalog, 'INSERT INTO scratch VALUES (1)', new PendingCode())).toEqual([]);
  });

  it('after an extension script, everything that reaches code is unknown until the transaction ends', async () => {
    const { catalog } = setup([]);
    const pending = new PendingCode();
    await resolve(catalog, 'CREATE EXTENSION hstore', pending);
    expect((await resolve(catalog, "SELECT lower('x')", pending)).some((f) => f.dynamic)).toBe(true);
    expect(pending.transactionEnded(0)).toBe(true);
    expect(await resolve(catalog, "SELECT lower('x')", pending)).toEqual([]);
  });
});

describe('one session’s analysis', () => {
  it('adds what reached code does, redacts what is recorded, and keeps the decision on the real text', async () => {
    const { catalog } = setup([fn(20500, 'cleanup', 'DELETE FROM users')]);
    const session = new SqlSessionAnalysis(analyzer, catalog);
    const a = await session.analyze(["SELECT cleanup(); ALTER ROLE x PASSWORD 'hunter2'"], undefined, 1);
    expect(a.statements.map((s) => s.command)).toEqual(['SELECT', 'ALTER ROLE', 'DELETE']);
    expect(a.recordedText).toBe("SELECT cleanup(); ALTER ROLE x PASSWORD '[REDACTED]'");
    expect(a.statements[1]).toMatchObject({
      text: "ALTER ROLE x PASSWORD 'hunter2'",
      recordedText: "ALTER ROLE x PASSWORD '[REDACTED]'",
    });
    expect(a.secrets).toEqual(['hunter2']);
    const p = await session.analyze(['SELECT dblink_connect($1)'], ['password=p4ss'], 2);
    expect(p).toMatchObject({ recordedParams: ['[REDACTED]'], recordedText: 'SELECT dblink_connect($1)' });
  });

  it('a transaction that ran DDL makes the catalog reload when it ends, not before', async () => {
    const { memory, catalog } = setup([]);
    const session = new SqlSessionAnalysis(analyzer, catalog);
    let loads = 0;
    const query = memory.query.bind(memory);
    memory.query = async (sql) => {
      if (sql.includes("SELECT 'n'")) loads++;
      return query(sql);
    };
    await session.analyze(['SELECT * FROM t'], undefined, 1);
    await session.analyze(['CREATE TABLE t2 (a int)'], undefined, 2);
    await session.analyze(['SELECT * FROM t'], undefined, 3);
    expect(loads).toBe(1);
    session.transactionEnded(1); // an earlier exchange: the DDL's transaction is still open
    await session.analyze(['SELECT * FROM t'], undefined, 4);
    expect(loads).toBe(1);
    session.transactionEnded(3);
    await session.analyze(['SELECT * FROM t'], undefined, 5);
    expect(loads).toBe(2);
  });

  it('a catalog that cannot be read makes statements that reach code unknown, not allowed', async () => {
    const failing: CatalogQueryRunner = {
      async query() {
        throw new Error('connection refused');
      },
      close() {},
    };
    const session = new SqlSessionAnalysis(analyzer, new CodeCatalog(failing, analyzer));
    const a = await session.analyze(['SELECT * FROM users'], undefined, 1);
    expect(a.statements.some((s) => s.dynamic)).toBe(true);
    session.transactionEnded(1);
    const plain = await session.analyze(['SELECT 1'], undefined, 2);
    expect(plain.statements.some((s) => s.dynamic)).toBe(false);
  });

  it('answers without a promise once nothing needs the catalog, and with one while it must be read', async () => {
    const { catalog } = setup([fn(20500, 'cleanup', 'DELETE FROM users')]);
    const session = new SqlSessionAnalysis(analyzer, catalog);
    // The first statement that reaches code loads the catalog: that one waits.
    const first = session.analyze(['SELECT * FROM users WHERE id = 1'], undefined, 1);
    expect(first).toBeInstanceOf(Promise);
    await first;
    // The relay awaits only promises: a statement the fresh snapshot says reaches no code costs no await.
    const plain = session.analyze(['SELECT * FROM users WHERE id = 2'], undefined, 2);
    expect(plain).not.toBeInstanceOf(Promise);
    expect((plain as Awaited<typeof plain>).statements.map((s) => s.command)).toEqual(['SELECT']);
    const reaching = session.analyze(['SELECT cleanup()'], undefined, 3);
    expect(reaching).toBeInstanceOf(Promise);
    expect((await reaching).statements.map((s) => s.command)).toEqual(['SELECT', 'DELETE']);
  });

  it('a statement shape cleared under one snapshot is looked at again under the next', async () => {
    const { memory, catalog } = setup([], [['r', '30001', 'public', 'users', 'r', null]]);
    const session = new SqlSessionAnalysis(analyzer, catalog);
    await session.analyze(['SELECT * FROM users WHERE id = 1'], undefined, 1);
    expect(session.analyze(['SELECT * FROM users WHERE id = 2'], undefined, 2)).not.toBeInstanceOf(Promise);
    // users becomes a view: the same shape now reaches its query.
    memory.snapshotRows = [['r', '30001', 'public', 'users', 'v', ' SELECT 1;']];
    catalog.markStale();
    await catalog.snapshot();
    const again = session.analyze(['SELECT * FROM users WHERE id = 3'], undefined, 3);
    expect(again).toBeInstanceOf(Promise);
    expect((await again).statements.map((s) => s.command)).toEqual(['SELECT', 'SELECT']);
  });

  it('unanalysable commands are not resolved, and their recorded reason holds no secret', async () => {
    const { catalog } = setup([]);
    const session = new SqlSessionAnalysis(analyzer, catalog);
    const a = await session.analyze(['CREATE ROLE x PASSWORD hunter2'], undefined, 1);
    expect(a.unanalysable).toBe('syntax error at or near "[REDACTED]" at position 23');
    expect(a.recordedText).toBe('CREATE ROLE x PASSWORD [REDACTED]');
  });
});
