import { describe, expect, it } from '@jest/globals';
import { numericLiteralKey } from './numeric-key.js';

const key = numericLiteralKey;

describe('numeric literal cache key: numbers', () => {
  it.each([
    [
      'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 00000;',
    ],
    ['select 12, 1.5, .5, 5., 1e-3, 2E+10, 1.5e3, .5e3', 'select 00, 0.0, .0, 0., 0e-0, 0E+00, 0.0e0, .0e0'],
    ['select 0x1F, 0XaB_cd, 0o17, 0O7_1, 0b101, 0B1_0', 'select 0x00, 0X00_00, 0o00, 0O0_0, 0b000, 0B0_0'],
    ['select 1_000, 1_000.000_5, 1e1_0', 'select 0_000, 0_000.000_0, 0e0_0'],
    ['select a[1:2], 1..5, x-1, -7, 3*4/2%1', 'select a[0:0], 0..0, x-0, -0, 0*0/0%0'],
    ['select \'a\'||1, "t"2, 1::int4, (1)', 'select \'a\'||0, "t"0, 0::int4, (0)'],
  ])('%s', (sql, expected) => {
    expect(key(sql)).toBe(expected);
  });

  it('is length-preserving and a fixed point', () => {
    const sql = "UPDATE t SET a = a + -2741, b = 'x9' WHERE id = 48213 AND f = 1.5e-3; -- 7";
    const k = key(sql);
    expect(k?.length).toBe(sql.length);
    expect(key(k ?? '')).toBe(k);
  });

  it('returns a text without numbers unchanged', () => {
    const sql = "SELECT * FROM t1 WHERE name = 'x'";
    expect(key(sql)).toBe(sql);
  });
});

describe('numeric literal cache key: digits that are not numeric literals stay', () => {
  it.each([
    "select 'it''s 42', 'a' -- 1\n '9'",
    'select "col 1", "a""2"',
    'select t1.c2, x$2, _3, tbl$1$x, café1',
    'select $1, $22 from t where a = $3',
    'select 1 -- 42 is here\n',
    'select 1 /* 42 /* nested 7 */ still 8 */',
    'select 1 +-- 42\n',
    "select U&'d\\0061t' UESCAPE '!', U&\"d\\0061t\", u&'1''2'",
    "select B'1010', X'1F', b'1', x'2', N'42'",
    "DO $$ BEGIN PERFORM 42; EXECUTE 'DELETE FROM t WHERE id = 7'; END $$",
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 42 $x$ 1 $body$',
    'select $a$ $b$ 7 $a$, $$ 8 $$',
    "select query_to_xml('DELETE FROM t WHERE id = 9', true, true, '')",
  ])('%s', (sql) => {
    const k = key(sql);
    expect(k).toBeDefined();
    // Only the numeric literals outside the quoted parts change: `select 1` → `select 0`.
    expect(k).toBe(sql.replace(/^select 1 /, 'select 0 '));
  });

  it('normalises numbers beside strings, comments and dollar quotes but not inside them', () => {
    expect(key('select 5, \'5\', $$5$$, /*5*/ 5 --5\n, "5", $5')).toBe(
      'select 0, \'5\', $$5$$, /*5*/ 0 --5\n, "5", $5',
    );
    expect(key("select 'a'5")).toBe("select 'a'0");
  });
});

describe('numeric literal cache key: digits whose value the parser reads keep them', () => {
  it.each([
    'select 2147483648',
    'select 1234567890',
    'select 0x7FFFFFFF',
    'select 1_000_000_0',
    'select 1::float(30), cast(1 as FLOAT ( /* p */ 10))',
    'ALTER TABLE t ALTER COLUMN 3 SET STATISTICS 100',
    'ALTER INDEX i ALTER 2 SET STATISTICS 100',
  ])('%s', (sql) => {
    const k = key(sql);
    expect(k).toBeDefined();
    for (const kept of [
      '2147483648',
      '1234567890',
      '0x7FFFFFFF',
      '1_000_000_0',
      '(30)',
      '10))',
      'COLUMN 3',
      'ALTER 2',
    ])
      if (sql.includes(kept)) expect(k).toContain(kept);
  });

  it('still zeroes the other numbers of such a statement', () => {
    expect(key('select 1::float(30), 5')).toBe('select 0::float(30), 0');
    expect(key('ALTER TABLE t ALTER COLUMN 3 SET STATISTICS 100')).toBe(
      'ALTER TABLE t ALTER COLUMN 3 SET STATISTICS 000',
    );
    expect(key('select 123456789')).toBe('select 000000000');
  });
});

describe('numeric literal cache key: bails out when unsure', () => {
  it.each([
    "select E'\\x41' || 1",
    "select e'1'",
    "select 'unterminated 1",
    'select "unterminated 1',
    'select 1 /* unterminated /* */',
    'select $$ unterminated 1',
    'select $a$ 1 $b$',
    "select U&'unterminated",
    "select B'1",
    'select 1abc',
    'select 1_',
    'select 1__0',
    'select 0x',
    'select 0xZ',
    'select 0x1G',
    'select 0b12',
    'select 0o8',
    'select 1e',
    'select 1e+',
    'select 1.5x',
    'select .5e',
    'select $1abc',
    'select 0x1F.5',
  ])('%s', (sql) => {
    expect(key(sql)).toBeUndefined();
  });
});
