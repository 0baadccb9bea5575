import { beforeAll, describe, expect, it } from '@jest/globals';
import type { ColumnSource, SessionMasker, ValueMasker } from '@agentgate/core';
import { loadPgParser, parseSql } from '../sql/pg-parser.js';
import { buildSnapshot } from './column-catalog.js';
import { compileRowPlan, maskDataRow } from './row-masker.js';
import { planStatements } from './statement-plan.js';
import { maskCopyRow } from './copy-masker.js';
import { mergedPlan } from './masking-filter.js';
import { TextScrubber } from './text-scrubber.js';

const star: ValueMasker = { mask: (v) => (v === '****' ? v : '****') };
const masker: SessionMasker = {
  active: true,
  detectors: { mask: (v) => v.replace(/[a-z]+@[a-z.]+/g, '****') },
  forColumn: (s: ColumnSource) =>
    s.table === 'users' && (s.column === 'email' || s.column === 'ssn') ? star : undefined,
  coversColumn: () => true,
};

const snapshot = buildSnapshot([
  ['r', '16400', 'public', 'users', 'r', '1', 'id', null],
  ['r', '16400', 'public', 'users', 'r', '2', 'email', null],
  ['r', '16400', 'public', 'users', 'r', '3', 'name', null],
  ['r', '16400', 'public', 'users', 'r', '4', 'ssn', null],
  ['r', '16500', 'public', 'orders', 'r', '1', 'id', null],
  ['r', '16500', 'public', 'orders', 'r', '2', 'user_id', null],
  [
    'r',
    '16600',
    'public',
    'user_emails',
    'v',
    '1',
    'id',
    ' SELECT users.id, lower(users.email) AS e FROM users;',
  ],
  ['r', '16600', 'public', 'user_emails', 'v', '2', 'e', null],
  ['f', null, 'public', 'leak', null, null, null, null],
]);

const plan = (text: string) => planStatements(text, masker, snapshot, parseSql as never);
const positions = (text: string) => [...(plan(text).plan.positional?.keys() ?? [])];

beforeAll(async () => {
  await loadPgParser();
});

describe('lineage plans', () => {
  it('masks derived outputs by position', () => {
    expect(positions('SELECT id, lower(email) FROM users')).toEqual([1]);
    expect(positions("SELECT email || '' AS x, name FROM users u")).toEqual([0]);
    expect(positions('SELECT coalesce(ssn, name), CASE WHEN id > 1 THEN email END FROM users')).toEqual([
      0, 1,
    ]);
    expect(positions("SELECT string_agg(email, ','), array_agg(ssn), count(*) FROM users")).toEqual([0, 1]);
    expect(positions('SELECT row_to_json(u), u FROM users u')).toEqual([0, 1]);
    expect(positions('SELECT *, lower(email) FROM users')).toEqual([1, 3, 4]);
    expect(positions('SELECT o.id, u.* FROM orders o JOIN users u ON u.id = o.user_id')).toEqual([2, 4]);
    expect(positions('SELECT name FROM users UNION SELECT email FROM users')).toEqual([0]);
    expect(positions('SELECT (SELECT email FROM users LIMIT 1)')).toEqual([0]);
    expect(positions('SELECT x FROM (SELECT upper(email) AS x FROM users) s')).toEqual([0]);
    expect(positions('WITH c AS (SELECT ssn FROM users) SELECT 1, * FROM c')).toEqual([1]);
    expect(positions('SELECT e FROM user_emails')).toEqual([0]);
    expect(positions("SELECT query_to_xml('select email from users', true, false, '')")).toEqual([0]);
    expect(positions('SELECT unnest(array_agg(email)) FROM users')).toEqual([0]);
    expect(positions('SELECT x FROM unnest(ARRAY(SELECT email FROM users)) AS t(x)')).toEqual([0]);
    expect(positions('SELECT email::text FROM users')).toEqual([0]);
    expect(positions('SELECT lower(email), id FROM (SELECT email, id FROM users) s')).toEqual([0]);
    expect(
      positions('WITH c AS (SELECT u.ssn, lower(email) FROM users u) SELECT upper(ssn), c.lower FROM c'),
    ).toEqual([0, 1]);
    expect(positions('SELECT lower(mystery) FROM users')).toEqual([0]);
    expect(positions('SELECT lower(email), id FROM users TABLESAMPLE SYSTEM (100)')).toEqual([0]);
    expect(positions('SELECT u.name, lower(u.ssn) FROM users u TABLESAMPLE BERNOULLI (50)')).toEqual([1]);
    expect(positions("SELECT 1, table_to_xml('users', true, false, '')")).toEqual([1]);
    expect(positions("SELECT table_to_xml('public.orders'::regclass, true, false, '')")).toEqual([]);
    expect(positions('UPDATE users SET name = name WHERE id = 1 RETURNING lower(email)')).toEqual([0]);
  });

  it('allows WHERE-clause predicates and outputs without masked lineage', () => {
    const r = plan(
      "SELECT id, name FROM users WHERE email LIKE 'a%' AND EXISTS (SELECT 1 FROM users WHERE ssn = '1')",
    );
    expect(r.refusal).toBeUndefined();
    expect(r.plan.positional).toBeNull();
    expect(r.plan.touchesMasked).toBe(true);
  });

  it('refuses what cannot be made safe, naming the masked column', () => {
    expect(plan('SELECT email::int FROM users').refusal).toMatch(
      /casting masked column users\.email to int4/,
    );
    expect(plan('CREATE TABLE c AS SELECT * FROM users').refusal).toMatch(
      /copying masked column users\.(email|ssn)/,
    );
    expect(plan('SELECT email INTO t2 FROM users').refusal).toMatch(/copying masked column users\.email/);
    expect(plan('INSERT INTO orders (id) SELECT length(ssn) FROM users').refusal).toMatch(
      /copying masked column users\.ssn/,
    );
    expect(plan('CREATE VIEW v AS SELECT lower(email) FROM users').refusal).toMatch(/users\.email/);
    expect(plan("SELECT set_config('application_name', email, false) FROM users").refusal).toMatch(
      /set_config/,
    );
    expect(plan("SELECT pg_notify('c', email) FROM users").refusal).toMatch(/pg_notify/);
    expect(plan('SELECT * FROM unnest(ARRAY(SELECT email FROM users))').refusal).toMatch(
      /cannot tell which result column/,
    );
    expect(plan("SELECT query_to_xml(name, true, false, '') FROM users").refusal).toMatch(/computed query/);
    expect(plan('SELECT leak()').refusal).toMatch(/user-defined function leak/);
    expect(plan("SELECT most_common_vals FROM pg_stats WHERE tablename = 'users'").refusal).toMatch(
      /pg_stats holds/,
    );
    expect(plan("SELECT schema_to_xml('public', true, false, '')").refusal).toMatch(/schema_to_xml/);
    expect(plan("SELECT cursor_to_xml('c', 10, true, false, '')").refusal).toMatch(
      /cursor_to_xml holds or dumps/,
    );
    expect(plan("SELECT table_to_xml(name, true, false, '') FROM users").refusal).toMatch(/computed query/);
    expect(plan('SELECT 1; SELECT lower(email) FROM users').refusal).toMatch(/single statement/);
    expect(plan('ALTER TABLE users RENAME email TO contact').refusal).toMatch(/users/);
    expect(plan('DECLARE c CURSOR FOR SELECT lower(email) FROM users').refusal).toMatch(/DECLARE CURSOR/);
    expect(plan('COPY users TO STDOUT WITH (FORMAT csv)').refusal).toMatch(/csv format/);
    expect(plan("COPY users TO '/tmp/x'").refusal).toMatch(/to a file/);
    expect(plan("DO $$ BEGIN EXECUTE 'SELECT em' || 'ail FROM us' || 'ers'; END $$").refusal).toMatch(
      /DO blocks cannot be checked/,
    );
    expect(plan('CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 1 $$').refusal).toMatch(
      /Function cannot be checked/,
    );
    expect(plan('CALL p()').refusal).toMatch(/CALL cannot be checked/);
    expect(plan("CREATE FOREIGN TABLE ft (pin int) SERVER lb OPTIONS (table_name 'users')").refusal).toMatch(
      /foreign tables cannot be checked/,
    );
    expect(plan('IMPORT FOREIGN SCHEMA public FROM SERVER lb INTO imp').refusal).toMatch(/foreign tables/);
    expect(
      plan('WITH x AS (SELECT ssn FROM users) INSERT INTO orders (id) SELECT length(ssn) FROM x').refusal,
    ).toMatch(/copying masked column users\.ssn/);
  });

  it('runs the SQL that ts_stat and ts_rewrite take as text through the same analysis', () => {
    expect(positions("SELECT ts_stat('SELECT to_tsvector(email) FROM users')")).toEqual([0]);
    expect(plan("SELECT * FROM ts_stat('SELECT to_tsvector(email) FROM users')").refusal).toMatch(
      /cannot tell which result column carries masked column users\.email/,
    );
    expect(
      positions("SELECT ts_rewrite('a'::tsquery, 'SELECT email::tsquery, ''b''::tsquery FROM users')"),
    ).toEqual([0]);
    expect(plan('SELECT ts_stat(name) FROM users').refusal).toMatch(/computed query/);
    // The three-argument form takes no SQL.
    expect(plan("SELECT ts_rewrite('a'::tsquery, 'a'::tsquery, 'b'::tsquery)").refusal).toBeUndefined();
  });

  it('refuses ALTER TABLE that moves masked values out of sight; charges DDL that validates rows as reads', () => {
    expect(
      plan("ALTER TABLE users ADD COLUMN e2 text GENERATED ALWAYS AS (email || '') STORED").refusal,
    ).toMatch(/generated column computed from masked column users\.email/);
    expect(plan('ALTER TABLE users ALTER COLUMN name SET EXPRESSION AS (lower(ssn))').refusal).toMatch(
      /generated column computed from masked column users\.ssn/,
    );
    expect(plan('ALTER TABLE users INHERIT parent').refusal).toMatch(
      /making users, which has masked columns, inherit/,
    );
    expect(plan('ALTER TABLE parent ATTACH PARTITION users DEFAULT').refusal).toMatch(/attaching users/);
    expect(plan('ALTER TABLE users ALTER COLUMN email TYPE varchar(3)').refusal).toMatch(/users/);
    expect(plan('ALTER TABLE users ADD CONSTRAINT c CHECK (email::int > 0)').refusal).toMatch(
      /casting masked column users\.email to int4/,
    );
    expect(plan('CREATE INDEX ON users ((ssn::int))').refusal).toMatch(/casting masked column users\.ssn/);
    // Allowed, but a failure quotes a row of users (Key (email)=(…)): its errors are scrubbed as for a read.
    const fk = plan('ALTER TABLE users ADD FOREIGN KEY (email) REFERENCES orders (id)');
    expect(fk.refusal).toBeUndefined();
    expect(fk.plan.touchesMasked).toBe(true);
    expect(plan('CREATE UNIQUE INDEX ON users (email)').plan.touchesMasked).toBe(true);
    expect(plan('ALTER TABLE orders INHERIT parent').refusal).toBeUndefined();
    expect(
      plan('ALTER TABLE orders ADD COLUMN t text GENERATED ALWAYS AS (id::text) STORED').refusal,
    ).toBeUndefined();
  });

  it('refuses writes of masked values by ON CONFLICT DO UPDATE and state-keeping functions', () => {
    expect(
      plan("INSERT INTO users (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = users.email")
        .refusal,
    ).toMatch(/copying masked column users\.email/);
    expect(
      plan(
        "INSERT INTO users AS u (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = lower(u.ssn) || excluded.name",
      ).refusal,
    ).toMatch(/copying masked column users\.ssn/);
    expect(
      plan(
        "INSERT INTO users (id, email) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = users.name",
      ).refusal,
    ).toBeUndefined();
    for (const fn of ['setval', 'pg_advisory_lock', 'pg_try_advisory_xact_lock', 'lo_create'])
      expect(plan(`SELECT ${fn}(length(email)) FROM users`).refusal).toMatch(new RegExp(`to ${fn}\\(\\)`));
    expect(plan('SELECT pg_advisory_lock(id) FROM users').refusal).toBeUndefined();
  });

  it('masks a column the catalog does not know yet by its name (added by DDL that did not pass the gateway)', () => {
    const stale = buildSnapshot([
      ['r', '16400', 'public', 'users', 'r', '1', 'id', null],
      ['r', '16400', 'public', 'users', 'r', '3', 'name', null],
    ]);
    const stalePositions = (text: string) => [
      ...(planStatements(text, masker, stale, parseSql as never).plan.positional?.keys() ?? []),
    ];
    expect(stalePositions('SELECT name, lower(ssn) FROM users')).toEqual([1]);
    expect(stalePositions('SELECT u.name, upper(u.email) FROM users u')).toEqual([1]);
    expect(stalePositions('SELECT lower(name) FROM users')).toEqual([]);
  });

  it('merges the plans of ambiguous statement texts conservatively', () => {
    const a = plan('SELECT lower(email), id FROM users').plan;
    const b = plan('SELECT id, lower(ssn) FROM users').plan;
    const m = mergedPlan([a, b]);
    expect([...(m.positional?.keys() ?? [])].sort()).toEqual([0, 1]);
    expect(m.width).toBe(2);
    expect(mergedPlan([a, plan('SELECT 1, 2, lower(email) FROM users').plan]).width).toBe(-1);
  });

  it('plans COPY TO STDOUT positions and flags DDL', () => {
    expect([...(plan('COPY users TO STDOUT').plan.copy?.keys() ?? [])]).toEqual([1, 3]);
    expect([...(plan('COPY users (name, email) TO STDOUT').plan.copy?.keys() ?? [])]).toEqual([1]);
    expect(plan('CREATE TABLE z (a int)').ddl).toBe(true);
    expect(plan('SELECT 1').ddl).toBe(false);
    expect(plan('DECLARE c CURSOR FOR SELECT email FROM users').refusal).toBeUndefined();
  });
});

function dataRow(values: (string | null)[]): Buffer {
  const parts = values.map((v) => {
    if (v === null) {
      const b = Buffer.alloc(4);
      b.writeInt32BE(-1);
      return b;
    }
    const body = Buffer.from(v);
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length);
    return Buffer.concat([len, body]);
  });
  const body = Buffer.concat([Buffer.from([0, values.length]), ...parts]);
  const head = Buffer.alloc(5);
  head[0] = 0x44;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

describe('row and text masking', () => {
  it('rewrites only rows that change; binary non-text masked values become NULL', () => {
    const rowPlan = compileRowPlan(
      3,
      (i) => (i === 2 ? 1 : 0),
      (i) => (i === 2 ? 23 : 25),
      (i) => (i === 1 || i === 2 ? star : undefined),
      masker.detectors,
    );
    const clean = dataRow(['1', null, null]);
    expect(maskDataRow(clean, rowPlan, () => undefined)).toBe(clean);
    const remembered: string[] = [];
    const out = maskDataRow(dataRow(['mail ada@x.io', 'secret', '\u0000\u0000\u0000\u0007']), rowPlan, (v) =>
      remembered.push(v),
    );
    expect(out.equals(dataRow(['mail ****', '****', null]))).toBe(true);
    expect(remembered).toEqual(['secret']);
    // Detectors skip types without free text (int4) but not text; values joined in one scan are split back exactly.
    const typed = compileRowPlan(
      3,
      () => 0,
      (i) => (i === 0 ? 23 : 25),
      () => undefined,
      masker.detectors,
    );
    const row = dataRow(['12', 'to a@b.io', 'c@d.io and e@f.io']);
    expect(maskDataRow(row, typed, () => undefined).equals(dataRow(['12', 'to ****', '**** and ****']))).toBe(
      true,
    );
  });

  it('runs detectors over binary values that can hold text: jsonb, arrays; a hit is sent as NULL', () => {
    // text (binary = the text), jsonb (version byte + text), text[] (array header + elements), int4.
    const binaryPlan = compileRowPlan(
      4,
      () => 1,
      (i) => [25, 3802, 1009, 23][i]!,
      () => undefined,
      masker.detectors,
    );
    const jsonb = '\u0001"to ada@x.io"';
    const array = '\u0000\u0000\u0000\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0019to ada@x.io';
    const out = maskDataRow(
      dataRow(['to ada@x.io', jsonb, array, '\u0000\u0000\u0000\u0007']),
      binaryPlan,
      () => undefined,
    );
    expect(out.equals(dataRow(['to ****', null, null, '\u0000\u0000\u0000\u0007']))).toBe(true);
    const cleanRow = dataRow(['hi', '\u0001"hi"', '\u0000\u0000\u0000\u0001hi', '\u0000\u0000\u0000\u0007']);
    expect(maskDataRow(cleanRow, binaryPlan, () => undefined)).toBe(cleanRow);
    // Formats unknown (no RowDescription): binary values read as text hold NUL, and each value is scanned alone.
    const unknown = compileRowPlan(
      3,
      () => 0,
      () => 0,
      () => undefined,
      masker.detectors,
    );
    const mixed = maskDataRow(dataRow(['a@b.io', array, 'c@d.io x']), unknown, () => undefined);
    expect(mixed.includes('ada@x.io')).toBe(false);
    expect(mixed.includes('a@b.io')).toBe(false);
    expect(mixed.includes('c@d.io')).toBe(false);
  });

  it('masks COPY text rows by position and detectors', () => {
    const msg = (s: string) => Buffer.concat([Buffer.from([0x64, 0, 0, 0, 0]), Buffer.from(s)]);
    const out = maskCopyRow(
      msg('1\tse\\tcret\tann@b.com\t\\N\n'),
      new Map([
        [1, star],
        [3, star],
      ]),
      4,
      masker.detectors,
      () => undefined,
    );
    expect(out.toString('utf8', 5)).toBe('1\t****\t****\t\\N\n');
    const wider = maskCopyRow(msg('1\ta\tb\tc\td\n'), new Map([[1, star]]), 4, undefined, () => undefined);
    expect(wider.toString('utf8', 5)).toBe('****\t****\t****\t****\t****\n');
  });

  it('scrubs error texts: detectors, remembered values and value-quoting shapes', () => {
    const s = new TextScrubber(masker.detectors, () => new Set(['users', 'email']));
    s.remember('123-45-6789');
    expect(s.scrub('value 123-45-6789 and bob@x.org')).toBe('value **** and ****');
    expect(s.scrubHard('invalid input syntax for type integer: "zz-top"')).toBe(
      'invalid input syntax for type integer: "****"',
    );
    expect(s.scrubHard('column "email" of relation "users"')).toBe('column "email" of relation "users"');
    expect(s.scrubHard('Failing row contains (1, secret, null).')).toBe('Failing row contains (****).');
    expect(s.scrubHard('Key (name)=(secret) already exists.')).toBe('Key (name)=(****) already exists.');
    expect(s.scrubDetail('line 1: Start tag expected\nsecret\n^')).toMatch(/withheld/);
    expect(s.scrubHard('date out of range: 8675309-01-01')).toBe('date out of range: ****-****-****');
    expect(s.scrubHard('PID 8675309 is not a PostgreSQL backend process')).toBe(
      'PID **** is not a PostgreSQL backend process',
    );
    expect(s.scrubHard('setseed parameter 8.67531e+06 is out of allowed range')).toBe(
      'setseed parameter **** is out of allowed range',
    );
    expect(s.scrubHard('could not determine data type of parameter $1 for int4')).toBe(
      'could not determine data type of parameter $1 for int4',
    );
  });
});
