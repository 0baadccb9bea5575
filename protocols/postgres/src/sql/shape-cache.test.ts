/** The analysis cache shared by statements that differ only in numeric literals (numeric-key.ts). */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createSqlAnalyzer, SqlSessionState, type SqlAnalysis, type SqlAnalyzer } from './index.js';

let cached: SqlAnalyzer;
let uncached: SqlAnalyzer;
beforeAll(async () => {
  cached = await createSqlAnalyzer({ cacheEntries: 500 });
  uncached = await createSqlAnalyzer({ cacheEntries: 0 });
});

/** Everything a caller can observe of an analysis. */
const observable = (a: SqlAnalysis): unknown => JSON.parse(JSON.stringify(a));

describe('shared analyses are rebuilt for the current text', () => {
  it('statement texts are the slices of the new input', () => {
    const first = cached.analyze('SELECT 1; /* c 9 */ DELETE FROM t WHERE id = 7 ;');
    const second = cached.analyze('SELECT 2; /* c 9 */ DELETE FROM t WHERE id = 8 ;');
    expect(second).not.toBe(first);
    expect(second.statements.map(({ command, text }) => ({ command, text }))).toEqual([
      { command: 'SELECT', text: 'SELECT 2' },
      { command: 'DELETE', text: '/* c 9 */ DELETE FROM t WHERE id = 8' },
    ]);
    expect(first.statements[1]?.text).toBe('/* c 9 */ DELETE FROM t WHERE id = 7');
  });

  it('a rebound analysis is frozen and renders as a fresh one, member order included', () => {
    cached.analyze('SELECT abalance FROM pgbench_accounts WHERE aid = 1; DELETE FROM t WHERE id = 2');
    const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = 31; DELETE FROM t WHERE id = 42';
    const rebound = cached.analyze(sql);
    const fresh = uncached.analyze(sql);
    expect(JSON.stringify(rebound)).toBe(JSON.stringify(fresh));
    expect(Object.isFrozen(rebound)).toBe(true);
    expect(Object.isFrozen(rebound.statements)).toBe(true);
    for (const s of rebound.statements) expect(Object.isFrozen(s)).toBe(true);
  });

  it('slices by UTF-8 offsets after non-ASCII text', () => {
    cached.analyze("select 'ünï ✓', 1; delete from t where x = 1");
    const a = cached.analyze("select 'ünï ✓', 2; delete from t where x = 22");
    expect(a.statements.map((s) => s.text)).toEqual(["select 'ünï ✓', 2", 'delete from t where x = 22']);
  });

  it("a text sent again at once is the same analysis, with the session's statements applied each time", () => {
    const state = new SqlSessionState();
    cached.analyze('PREPARE p AS DELETE FROM t', state);
    const first = cached.analyze('EXECUTE p', state);
    const again = cached.analyze('EXECUTE p', state);
    expect(again.statements.map((s) => s.command)).toEqual(['EXECUTE', 'DELETE']);
    expect(observable(again)).toEqual(observable(first));
    cached.analyze('DEALLOCATE p', state);
    expect(cached.analyze('EXECUTE p', state).error).toMatch(/not known/);
    const text = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';
    expect(cached.analyze(text)).toBe(cached.analyze(text));
  });

  it('returns the cached object for the exact text it was made from', () => {
    const q = 'SELECT abalance FROM pgbench_accounts WHERE aid = 31';
    const a = cached.analyze(q);
    cached.analyze('SELECT abalance FROM pgbench_accounts WHERE aid = 32');
    expect(cached.analyze(q)).toBe(a);
  });

  it('nested statements sliced from the client text follow it; texts from inside literals are the literal', () => {
    cached.analyze('WITH d AS (DELETE FROM t WHERE id = 5 RETURNING *) SELECT * FROM d LIMIT 1');
    const cte = cached.analyze('WITH d AS (DELETE FROM t WHERE id = 6 RETURNING *) SELECT * FROM d LIMIT 2');
    expect(cte.statements.map((s) => s.text)).toEqual([
      'WITH d AS (DELETE FROM t WHERE id = 6 RETURNING *) SELECT * FROM d LIMIT 2',
      'WITH d AS (DELETE FROM t WHERE id = 6 RETURNING *) SELECT * FROM d LIMIT 2',
    ]);
    const body = (cost: number): string =>
      `CREATE FUNCTION f() RETURNS int LANGUAGE sql COST ${cost} AS $$ DELETE FROM t WHERE id = 3 $$`;
    cached.analyze(body(5));
    const fn = cached.analyze(body(6));
    expect(fn.statements.map((s) => [s.command, s.text])).toEqual([
      ['CREATE FUNCTION', body(6)],
      ['DELETE', 'DELETE FROM t WHERE id = 3'],
    ]);
    const doBlock = (n: number): string =>
      `SELECT ${n}; DO $$ BEGIN EXECUTE 'DELETE FROM t WHERE id = 4'; UPDATE u SET a = 1; END $$`;
    cached.analyze(doBlock(1));
    const pl = cached.analyze(doBlock(2));
    expect(observable(pl)).toEqual(observable(uncached.analyze(doBlock(2))));
    expect(pl.statements.find((s) => s.command === 'DELETE')?.text).toBe('DELETE FROM t WHERE id = 4');
  });

  it('a pattern rule sees the real statement (the policy matches s.text case-insensitively)', () => {
    const pattern = /aid = 7\b/i;
    const matches = (sql: string): boolean =>
      cached.analyze(sql).statements.some((s) => pattern.test(s.text));
    expect(matches('SELECT abalance FROM pgbench_accounts WHERE aid = 8;')).toBe(false);
    expect(matches('SELECT abalance FROM pgbench_accounts WHERE aid = 7;')).toBe(true);
    expect(matches('SELECT abalance FROM pgbench_accounts WHERE aid = 71;')).toBe(false);
    expect(matches('SELECT abalance FROM pgbench_accounts WHERE aid = 9;')).toBe(false);
  });

  it('PREPARE bodies remembered from a shared analysis carry their own text', () => {
    const one = new SqlSessionState();
    const two = new SqlSessionState();
    cached.analyze('PREPARE p AS DELETE FROM users WHERE id = 1', one);
    cached.analyze('PREPARE p AS DELETE FROM users WHERE id = 2', two);
    expect(cached.analyze('EXECUTE p', two).statements[1]?.text).toBe(
      'PREPARE p AS DELETE FROM users WHERE id = 2',
    );
    expect(cached.analyze('EXECUTE p', one).statements[1]?.text).toBe(
      'PREPARE p AS DELETE FROM users WHERE id = 1',
    );
  });

  it('unfiltered writes do not depend on the constant: WHERE 1 = 1 and WHERE 1 = 0 reference no column', () => {
    expect(cached.analyze('DELETE FROM users WHERE 1 = 1').statements[0]?.unfilteredWrite).toBe(true);
    expect(cached.analyze('DELETE FROM users WHERE 1 = 0').statements[0]?.unfilteredWrite).toBe(true);
    expect(cached.analyze('DELETE FROM users WHERE id = 0').statements[0]?.unfilteredWrite).toBe(false);
  });
});

describe('analyses that depend on a number are never shared', () => {
  it.each([
    ['SET standard_conforming_strings = 1', 'SET standard_conforming_strings = 0'],
    [
      "SELECT set_config('standard_conforming_strings', 1::text, false)",
      "SELECT set_config('standard_conforming_strings', 0::text, false)",
    ],
  ])('%s / %s', async (allowed, refused) => {
    const forward = await createSqlAnalyzer();
    expect(forward.analyze(allowed).refused).toBeUndefined();
    expect(forward.analyze(refused).refused).toMatch(/refused/);
    const backward = await createSqlAnalyzer();
    expect(backward.analyze(refused).refused).toMatch(/refused/);
    expect(backward.analyze(allowed).refused).toBeUndefined();
  });

  it('numbers the grammar checks keep their digits: float(p), ALTER COLUMN n, int32 overflow', async () => {
    const a = await createSqlAnalyzer();
    expect(a.analyze('SELECT 1::float(10)').error).toBeUndefined();
    expect(a.analyze('SELECT 1::float(0)').error).toMatch(/precision/);
    expect(a.analyze('SELECT 1::float(99)').error).toMatch(/precision/);
    expect(a.analyze('ALTER TABLE t ALTER COLUMN 1 SET STATISTICS 5').error).toBeUndefined();
    expect(a.analyze('ALTER TABLE t ALTER COLUMN 0 SET STATISTICS 5').error).toMatch(/column number/);
    expect(a.analyze('SELECT 1::varchar(1000000000)').error).toBeUndefined();
    expect(a.analyze('SELECT 1::varchar(9999999999)').error).toMatch(/syntax error/);
  });

  it('errors are cached by exact text only', async () => {
    const a = await createSqlAnalyzer();
    expect(a.analyze('SELECT 1 2').error).toMatch(/"2"/);
    expect(a.analyze('SELECT 1 3').error).toMatch(/"3"/);
  });
});

/** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LITERALS = [
  '0',
  '1',
  '7',
  '42',
  '48213',
  '-3',
  '1.5',
  '.5',
  '5.',
  '1e-3',
  '2E+9',
  '0x1F',
  '0o17',
  '0b101',
  '1_000',
  '999999999',
  '2147483647',
  '2147483648',
  '99999999999999999999',
  '3.14159e10',
  '00',
  '10',
];

const TEMPLATES = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = #;',
  'UPDATE pgbench_accounts SET abalance = abalance + # WHERE aid = #;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (#, #, #, #, CURRENT_TIMESTAMP);',
  'SELECT #; DELETE FROM users WHERE id = # ; UPDATE t SET a = # WHERE # = #',
  'DELETE FROM users WHERE # = #',
  'SELECT \'x#\', "c#", t#.a FROM t# WHERE a = # -- #\n AND b = /* # */ #',
  'SELECT * FROM t LIMIT # OFFSET #',
  'SELECT #::float(#), #::varchar(#), #::numeric(#, #)',
  'ALTER TABLE t ALTER COLUMN # SET STATISTICS #',
  'SET standard_conforming_strings = #',
  "SELECT set_config('client_encoding', #::text, false), set_config('work_mem', '#', false)",
  "SELECT query_to_xml('DELETE FROM users WHERE id = #', #, true, '')",
  'WITH d AS (DELETE FROM users WHERE id = # RETURNING *) SELECT * FROM d WHERE x > #',
  'CREATE FUNCTION f(a int DEFAULT #) RETURNS int LANGUAGE sql COST # AS $$ SELECT # $$',
  'CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql COST # AS $f$ BEGIN DELETE FROM t WHERE id = #; RETURN #; END $f$',
  "DO $$ BEGIN EXECUTE 'DROP TABLE t#'; PERFORM #; END $$",
  'SELECT $1 + #, ARRAY[#, #][#], x[#:#] FROM t',
  'PREPARE p AS DELETE FROM users WHERE id = #; EXECUTE p(#)',
  "SELECT E'\\x#' || #",
  "SELECT 'ü✓' || #; DELETE FROM t WHERE a = #",
  'FETCH # FROM c',
  'SELECT # #',
  "SELECT interval(#) '1 day', 1..#",
];

describe('property: the shared cache answers what a fresh analysis answers', () => {
  it('for generated statements with mixed literals', () => {
    const next = random(20240611);
    const pick = (): string => LITERALS[Math.floor(next() * LITERALS.length)] ?? '0';
    let analysable = 0;
    let compared = 0;
    for (let round = 0; round < 14; round++) {
      for (const template of TEMPLATES) {
        const sql = template.replace(/#/g, pick);
        const state = new SqlSessionState();
        const fresh = uncached.analyze(sql, new SqlSessionState());
        const viaCache = cached.analyze(sql, state);
        expect({ sql, analysis: observable(viaCache) }).toEqual({ sql, analysis: observable(fresh) });
        compared++;
        if (viaCache.error === undefined && viaCache.refused === undefined) analysable++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(300);
    expect(analysable).toBeGreaterThan(150);
  });

  it('for statements whose literals share a key, whichever is analysed first', async () => {
    // Same-length literals have the same key; each group is tried in both orders, each order on its own cache.
    const groups = [
      ['1', '0', '7'],
      ['42', '10', '99', '00'],
      ['1.5', '0.5', '9.0'],
      ['0x1F', '0x00', '0xfe'],
      ['999999999', '100000000'],
      ['2147483648', '1000000000'],
    ];
    const forward = await createSqlAnalyzer();
    const backward = await createSqlAnalyzer();
    let compared = 0;
    for (const template of TEMPLATES) {
      for (const group of groups) {
        for (const [analyzer, order] of [
          [forward, group],
          [backward, [...group].reverse()],
        ] as const) {
          for (const literal of order) {
            const sql = template.replace(/#/g, literal);
            const fresh = uncached.analyze(sql, new SqlSessionState());
            const viaCache = analyzer.analyze(sql, new SqlSessionState());
            expect({ sql, analysis: observable(viaCache) }).toEqual({ sql, analysis: observable(fresh) });
            compared++;
          }
        }
      }
    }
    expect(compared).toBeGreaterThanOrEqual(600);
  });
});
