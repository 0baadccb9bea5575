/**
 * Issue 5 against a real PostgreSQL through the real gateway (startTestGateway), with node-postgres and psql: every
 * bypass of column masking, each asserting that the sensitive values reach neither the client nor the transcript.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { RawClient, typed } from './harness/pg-raw-client.js';
import { PASSWORD, runPsql, startPostgres, type TestPostgres } from './harness/postgres.js';

/** Values that must never leave: api_key and pin match no detector, so only column masking can stop them. */
const API_KEY = 'KZ9PLAINSECRET77';
const API_KEY_2 = 'QX4OTHERSECRET55';
const PIN = '8675309';
const EMAIL = 'ada.lovelace@example.com';
const SSN = '123-45-6789';
const SECRETS = [
  API_KEY,
  API_KEY_2,
  API_KEY.toLowerCase(),
  API_KEY_2.toLowerCase(),
  PIN,
  EMAIL,
  SSN,
  'ada.lovelace',
];

let server: TestPostgres;
let gw: TestGateway;
let addr: { host: string; port: number };
const clients: pg.Client[] = [];

function expectClean(value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

async function connect(opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({
    ...addr,
    user: 'devin',
    database: 'app',
    password: await gw.token('devin', ['agents']),
    ...opts,
  });
  await client.connect();
  clients.push(client);
  return client;
}

async function rowsOf(client: pg.Client, sql: string, params?: unknown[]): Promise<unknown[]> {
  const config: pg.QueryArrayConfig = { text: sql, rowMode: 'array', ...(params ? { values: params } : {}) };
  const result = await client.query(config);
  expectClean(result.rows);
  return result.rows;
}

async function gwPsql(sql: string): Promise<string> {
  const out = await runPsql(addr.host, addr.port, ['-U', 'devin', '-d', 'app', '-At', '-c', sql], {
    env: { PGPASSWORD: await gw.token('devin', ['agents']) },
  });
  expectClean(out);
  return out;
}

beforeAll(async () => {
  server = await startPostgres();
  await server.psql(['-d', 'app'], {
    input: `
CREATE TABLE users (id int PRIMARY KEY, email text, name text NOT NULL, ssn text, api_key text, pin int);
CREATE TABLE orders (id int, user_id int, total int);
CREATE TABLE notes (id int, body text);
INSERT INTO users VALUES (1, '${EMAIL}', 'Ada', '${SSN}', '${API_KEY}', ${PIN}), (2, 'bob@example.org', 'Bob', NULL, '${API_KEY_2}', 1234);
INSERT INTO orders VALUES (10, 1, 99);
INSERT INTO notes VALUES (1, 'write to ${EMAIL} about the key');
CREATE VIEW user_keys AS SELECT id, upper(api_key) AS k, name FROM users;
CREATE EXTENSION postgres_fdw;
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', dbname 'app');
GRANT USAGE ON FOREIGN SERVER loopback TO app;
CREATE USER MAPPING FOR app SERVER loopback OPTIONS (user 'app', password '${PASSWORD}');
ALTER TABLE users OWNER TO app; ALTER TABLE orders OWNER TO app; ALTER TABLE notes OWNER TO app; ALTER VIEW user_keys OWNER TO app;
`,
  });
  gw = await startTestGateway(
    `
listeners:
  - name: prod-db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents, group:dba]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
masking:
  - name: pii
    who: [group:agents]
    columns: ["users.email", "users.ssn", "*.api_key", "public.users.pin"]
    detectors: [email, us_ssn]
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
  addr = gw.address('prod-db') as { host: string; port: number };
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.end()));
  await gw?.stop();
  await server?.stop();
});

describe('column masking by source', () => {
  it('masks by table OID and attnum: aliases, *, u.*, joins, views', async () => {
    const c = await connect();
    expect(await rowsOf(c, 'SELECT email AS e, api_key AS k, name FROM users ORDER BY id')).toEqual([
      ['****', '****', 'Ada'],
      ['****', '****', 'Bob'],
    ]);
    expect((await rowsOf(c, 'SELECT * FROM users WHERE id = 1'))[0]).toEqual([
      1,
      '****',
      'Ada',
      '****',
      '****',
      NaN,
    ]); // pin: '****' in an int4 column, as node-postgres parses it
    await rowsOf(c, 'SELECT u.* FROM users u');
    expect(
      await rowsOf(c, 'SELECT o.total, u.api_key, u.name FROM orders o JOIN users u ON u.id = o.user_id'),
    ).toEqual([[99, '****', 'Ada']]);
    expect(await rowsOf(c, 'SELECT k, name FROM user_keys WHERE id = 1')).toEqual([['****', 'Ada']]);
    expect(await rowsOf(c, 'SELECT x FROM (SELECT api_key AS x FROM users) s WHERE x IS NOT NULL')).toEqual([
      ['****'],
      ['****'],
    ]);
  });

  it('masks derived values it can place and refuses the ones it cannot (42501, naming the column)', async () => {
    const c = await connect();
    for (const sql of [
      'SELECT lower(api_key) FROM users',
      "SELECT api_key || '' FROM users",
      'SELECT api_key::text, pin::text FROM users',
      "SELECT coalesce(api_key, 'none'), CASE WHEN id = 1 THEN api_key ELSE name END FROM users",
      "SELECT string_agg(api_key, ','), array_agg(pin) FROM users",
      'SELECT row_to_json(u) FROM users u',
      'SELECT u FROM users u',
      "SELECT query_to_xml('select api_key from users', true, false, '')",
      "SELECT table_to_xml('users', true, false, '')",
      'SELECT unnest(array_agg(api_key)) FROM users',
      'SELECT name FROM orders, users UNION ALL SELECT api_key FROM users',
      'SELECT (SELECT max(api_key) FROM users), 1',
      'SELECT t.x FROM unnest(ARRAY(SELECT api_key FROM users)) AS t(x)',
      'WITH c AS (SELECT reverse(api_key) AS r FROM users) SELECT r FROM c',
    ]) {
      const rows = await rowsOf(c, sql);
      expect(JSON.stringify(rows)).toContain('****');
      expect(JSON.stringify(rows)).not.toMatch(/Ada|Bob/); // a derived output is masked whole
    }
    for (const [sql, column] of [
      ['SELECT api_key::int FROM users', 'users.api_key'],
      ['CREATE TABLE copy1 AS SELECT * FROM users', 'users.'],
      ['SELECT api_key INTO copy2 FROM users', 'users.api_key'],
      ['INSERT INTO notes (id, body) SELECT id, api_key FROM users', 'users.api_key'],
      ['CREATE VIEW v2 AS SELECT lower(api_key) FROM users', 'users.api_key'],
      ["SELECT set_config('application_name', api_key, false) FROM users", 'users.api_key'],
      ["SELECT pg_notify('ch', api_key) FROM users", 'users.api_key'],
      ['SELECT * FROM unnest(ARRAY(SELECT api_key FROM users))', 'users.api_key'],
      ['UPDATE notes SET body = (SELECT api_key FROM users WHERE id = 1)', 'users.api_key'],
      ["SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'users'", 'pg_stats'],
      ["SELECT schema_to_xml('public', true, false, '')", 'schema_to_xml'],
      ["CREATE FOREIGN TABLE ft (pin int) SERVER loopback OPTIONS (table_name 'users')", 'foreign tables'],
      ['IMPORT FOREIGN SCHEMA public FROM SERVER loopback INTO public', 'foreign tables'],
    ] as const) {
      await expect(c.query(sql)).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining(column),
      });
    }
    expect(await rowsOf(c, 'SELECT 1 AS still_usable')).toEqual([[1]]);
  });

  it('never guesses positions: a * it expanded differently (JOIN USING) masks the whole result', async () => {
    const c = await connect();
    const rows = await rowsOf(c, 'SELECT *, lower(api_key) FROM users JOIN notes USING (id)');
    expect(rows).toHaveLength(1);
    // Every column masked (int columns read '****', which node-postgres parses as NaN).
    expect((rows[0] as unknown[]).every((v) => v === '****' || Number.isNaN(v))).toBe(true);
    expect(
      await rowsOf(c, 'SELECT *, lower(api_key) FROM users u JOIN orders o ON o.user_id = u.id'),
    ).toEqual([[1, '****', 'Ada', '****', '****', NaN, 10, 1, 99, '****']]);
  });

  it('is scoped by who: an identity no rule applies to gets the bytes untouched', async () => {
    const dba = new pg.Client({
      ...addr,
      user: 'dana',
      database: 'app',
      password: await gw.token('dana', ['dba']),
    });
    await dba.connect();
    try {
      const result = await dba.query({
        text: 'SELECT api_key, lower(api_key) FROM users WHERE id = 1',
        rowMode: 'array',
      } as pg.QueryArrayConfig);
      expect(result.rows).toEqual([[API_KEY, API_KEY.toLowerCase()]]);
    } finally {
      await dba.end();
    }
  });

  it('allows WHERE-clause predicates (documented oracle policy) and returns no masked values', async () => {
    const c = await connect();
    expect(await rowsOf(c, "SELECT name FROM users WHERE api_key LIKE 'KZ9%'")).toEqual([['Ada']]);
  });

  it('masks the extended protocol, binary results (text re-encoded, other types as NULL) and content in any column', async () => {
    const c = await connect();
    expect(await rowsOf(c, 'SELECT api_key, lower(api_key), name FROM users WHERE id = $1', [1])).toEqual([
      ['****', '****', 'Ada'],
    ]);
    expect(await rowsOf(c, 'SELECT body FROM notes')).toEqual([['write to **** about the key']]);
    const binary = await connect({ binary: true } as Partial<pg.ClientConfig>);
    // (node-postgres's own binary int4 decoding is broken in array row mode, so only text and masked columns here.)
    expect(await rowsOf(binary, 'SELECT api_key, pin, name FROM users WHERE id = $1', [1])).toEqual([
      ['****', null, 'Ada'],
    ]);
  });

  it('sends a masked binary value as NULL when the client asked for binary results without a Describe', async () => {
    const raw = await RawClient.open(addr);
    try {
      expect((await raw.login(await gw.token('devin', ['agents']))).at(-1)?.[0]).toBe('Z');
      const query = Buffer.from('\0SELECT pin, name FROM users WHERE id = 1\0');
      raw.socket.write(
        Buffer.concat([
          typed('P', Buffer.concat([query, Buffer.from([0, 0])])),
          // Bind: unnamed portal and statement, no parameters, one result format code (binary) for every column
          typed('B', Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0, 1])),
          typed('E', Buffer.from([0, 0, 0, 0, 0])),
          typed('S', Buffer.alloc(0)),
        ]),
      );
      const row = (await raw.until('Z')).find(([type]) => type === 'D')![1];
      expect(row.readInt16BE(0)).toBe(2);
      // pin (int4, masked): its type unknown to the gateway, so NULL, not four bytes a client decodes as a number
      expect(row.readInt32BE(2)).toBe(-1);
      expect(row.readInt32BE(6)).toBe(3);
      expect(row.subarray(10, 13).toString()).toBe('Ada');
    } finally {
      raw.socket.destroy();
    }
  });

  it('runs detectors over binary values of every type that can hold text (jsonb, arrays, records)', async () => {
    const binary = await connect({ binary: true } as Partial<pg.ClientConfig>);
    const result = await binary.query({
      text: 'SELECT body::varchar, to_jsonb(body), ARRAY[body], ROW(body), id FROM notes WHERE id = $1',
      values: [1],
      rowMode: 'array',
    } as pg.QueryArrayConfig);
    const seen = (result.rows[0] as unknown[]).map((v) =>
      Buffer.isBuffer(v) ? v.toString('latin1') : JSON.stringify(v),
    );
    expectClean(seen.join('|'));
    expect(seen[0]).toBe('"write to **** about the key"');
    expect(seen.slice(1, 4)).toEqual(['null', 'null', 'null']); // cannot be re-encoded: sent as NULL
  });

  it('follows DDL: a table created through the gateway is masked once filled', async () => {
    const c = await connect();
    await c.query('CREATE TABLE vault (id int, api_key text)');
    await server.psql(['-d', 'app'], { input: `INSERT INTO vault VALUES (1, '${API_KEY_2}');` });
    expect(await rowsOf(c, 'SELECT api_key AS a FROM vault')).toEqual([['****']]);
  });
});

describe('every other channel', () => {
  it('COPY TO STDOUT rows (psql), refusing CSV for masked columns', async () => {
    const out = await gwPsql('COPY users (id, api_key, name) TO STDOUT');
    expect(out).toContain('1\t****\tAda');
    expect(await gwPsql('COPY (SELECT lower(api_key), name FROM users ORDER BY id) TO STDOUT')).toBe(
      '****\tAda\n****\tBob\n',
    );
    await expect(gwPsql('COPY users TO STDOUT WITH (FORMAT csv)')).rejects.toThrow(/csv format/);
  });

  it('psql sees masked rows and derived values, also through a cursor (FETCH_COUNT)', async () => {
    expect(await gwPsql('SELECT lower(email), api_key FROM users ORDER BY id')).toBe(
      '****|****\n****|****\n',
    );
    const token = await gw.token('devin', ['agents']);
    const viaCursor = await runPsql(
      addr.host,
      addr.port,
      ['-U', 'devin', '-d', 'app', '-At', '-v', 'FETCH_COUNT=1'],
      {
        env: { PGPASSWORD: token },
        input: 'SELECT api_key, name FROM users ORDER BY id;\nSELECT x.api_key FROM users x WHERE id = 2;\n',
      },
    );
    expectClean(viaCursor);
    expect(viaCursor).toBe('****|Ada\n****|Bob\n****\n');
    await expect(
      runPsql(
        addr.host,
        addr.port,
        ['-U', 'devin', '-d', 'app', '-At', '-v', 'FETCH_COUNT=1', '-c', 'SELECT lower(api_key) FROM users'],
        { env: { PGPASSWORD: token } },
      ),
    ).rejects.toThrow(/DECLARE CURSOR over a value derived from masked column users\.api_key/);
  });

  it('error and notice texts: failed casts in WHERE, Failing row contains, notices; DO blocks refused', async () => {
    const c = await connect();
    const cast = await c
      .query('SELECT id FROM users WHERE api_key::int > 0')
      .catch((e: Error & { code?: string; detail?: string }) => e);
    expect(cast).toBeInstanceOf(Error);
    expectClean([(cast as Error).message, (cast as { detail?: string }).detail]);
    const xml = await c.query('SELECT xmlparse(document api_key) FROM users').catch((e: Error) => e);
    expect(xml).toBeInstanceOf(Error);
    expectClean([(xml as Error).message, (xml as { detail?: string }).detail]);
    const notNull = await c.query('UPDATE users SET name = NULL WHERE id = 1').catch((e: Error) => e);
    expect(notNull).toMatchObject({ code: '23502' });
    expectClean([(notNull as Error).message, (notNull as { detail?: string }).detail]);
    expect((notNull as { detail?: string }).detail).toContain('Failing row contains (****)');
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    // NOTICE: table "…" does not exist, skipping — the name is the client's own text, the detector still masks it.
    await c.query(`DROP TABLE IF EXISTS "${'ada.lovelace'}@example.com"`);
    expect(notices.join()).toContain('table "****" does not exist');
    await expect(
      c.query(`DO $$ BEGIN RAISE NOTICE '%', (SELECT api_key FROM users LIMIT 1); END $$`),
    ).rejects.toMatchObject({
      code: '42501',
      message: expect.stringContaining('DO blocks cannot be checked'),
    });
    expectClean(notices);
  });

  it('NOTIFY payloads and ParameterStatus values', async () => {
    const c = await connect();
    const payloads: string[] = [];
    c.on('notification', (n) => payloads.push(n.payload ?? ''));
    await c.query('LISTEN ch');
    await server.psql(['-d', 'app'], { input: `NOTIFY ch, 'for ${EMAIL}';` });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await c.query('SELECT 1');
    expect(payloads).toEqual(['for ****']);
    const statuses: string[] = [];
    (
      c as unknown as {
        connection: {
          on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void;
        };
      }
    ).connection.on('parameterStatus', (m) => statuses.push(`${m.parameterName}=${m.parameterValue}`));
    await c
      .query("SELECT set_config('application_name', 'x' || (SELECT email FROM notes, users LIMIT 0), false)")
      .catch(() => undefined);
    await c.query(`SET application_name TO 'ops ${'ada.lovelace'}@example.com'`);
    expect(statuses).toContain('application_name=ops ****');
  });
});

describe('what reaches values past the result columns', () => {
  it('ts_stat and ts_rewrite run their SQL text through the same analysis', async () => {
    const c = await connect();
    expect(
      await rowsOf(c, "SELECT ts_stat('SELECT to_tsvector(''simple'', api_key) FROM users') ORDER BY 1"),
    ).toEqual([['****'], ['****']]);
    await expect(
      c.query("SELECT * FROM ts_stat('SELECT to_tsvector(''simple'', api_key) FROM users')"),
    ).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('users.api_key') });
    expect(
      await rowsOf(
        c,
        "SELECT ts_rewrite('a'::tsquery, 'SELECT to_tsquery(''simple'', api_key), ''a''::tsquery FROM users')",
      ),
    ).toEqual([['****']]);
  });

  it('refuses ALTER TABLE that would show masked values under other names: generated columns, INHERIT, ATTACH PARTITION', async () => {
    const c = await connect();
    await c.query('CREATE TABLE heir (id int, email text, name text, ssn text, api_key text, pin int)');
    await c.query(
      'CREATE TABLE parted (id int, email text, name text NOT NULL, ssn text, api_key text, pin int) PARTITION BY LIST (id)',
    );
    for (const [sql, message] of [
      ["ALTER TABLE users ADD COLUMN k2 text GENERATED ALWAYS AS (api_key || '') STORED", 'users.api_key'],
      ['ALTER TABLE users INHERIT heir', 'inherit'],
      ['ALTER TABLE parted ATTACH PARTITION users DEFAULT', 'attaching users'],
    ] as const) {
      await expect(c.query(sql)).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining(message),
      });
    }
    expect(await rowsOf(c, 'SELECT pin FROM heir UNION ALL SELECT pin FROM parted')).toEqual([]);
    await c.query('DROP TABLE heir, parted');
  });

  it('scrubs the errors of constraints and indexes validated against masked rows, refuses their casts', async () => {
    const c = await connect();
    await c.query('CREATE TABLE known_keys (k text PRIMARY KEY)');
    const fk = await c
      .query('ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (api_key) REFERENCES known_keys (k)')
      .catch((e: Error & { code?: string; detail?: string }) => e);
    expect(fk).toMatchObject({ code: '23503', detail: expect.stringContaining('Key (api_key)=(****)') });
    expectClean([(fk as Error).message, (fk as { detail?: string }).detail]);
    for (const sql of [
      'ALTER TABLE users ADD CONSTRAINT ck CHECK (api_key::int > 0)',
      'CREATE INDEX ON users ((api_key::int))',
    ])
      await expect(c.query(sql)).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining('casting masked column users.api_key'),
      });
    await c.query('DROP TABLE known_keys');
  });

  it('scrubs masked numbers that errors and notices print unquoted', async () => {
    const c = await connect();
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    for (const sql of [
      'SELECT make_date(pin, 1, 1) FROM users WHERE id = 1',
      'SELECT 1 FROM users WHERE id = 1 AND chr(pin) IS NULL',
      'SELECT lo_get(pin) FROM users WHERE id = 1',
    ]) {
      const err = await c.query(sql).catch((e: Error & { detail?: string }) => e);
      expect(err).toBeInstanceOf(Error);
      expectClean([(err as Error).message, (err as { detail?: string }).detail]);
    }
    await rowsOf(c, 'SELECT pg_cancel_backend(pin) FROM users WHERE id = 1');
    expect(notices.join()).toContain('PID **** is not a PostgreSQL backend process');
    expectClean(notices);
  });

  it('refuses writing masked values where another query reads them back: ON CONFLICT DO UPDATE, sequences, advisory locks, large objects', async () => {
    const c = await connect();
    await c.query('CREATE SEQUENCE pins');
    for (const [sql, message] of [
      [
        "INSERT INTO users (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = users.api_key",
        'copying masked column users.api_key',
      ],
      ["SELECT setval('pins', pin) FROM users WHERE id = 1", 'setval()'],
      ['SELECT pg_advisory_lock(pin) FROM users WHERE id = 1', 'pg_advisory_lock()'],
      ['SELECT lo_create(pin) FROM users WHERE id = 1', 'lo_create()'],
    ] as const) {
      await expect(c.query(sql)).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining(message),
      });
    }
    const currval = await c
      .query({ text: "SELECT currval('pins')", rowMode: 'array' })
      .catch((e: Error) => e);
    expectClean(currval instanceof Error ? currval.message : currval.rows);
    await rowsOf(c, "SELECT objid FROM pg_locks WHERE locktype = 'advisory'");
    await rowsOf(c, 'SELECT oid FROM pg_largeobject_metadata');
    expect(await rowsOf(c, 'SELECT name FROM users ORDER BY id')).toEqual([['Ada'], ['Bob']]);
    // A sequence is a relation like any other: its columns are masked only when a rule names them.
    expect(await rowsOf(c, 'SELECT last_value, is_called FROM pins')).toEqual([['1', false]]);
    // An upsert of the client's own values still works.
    await c.query("INSERT INTO notes VALUES (1, 'x') ON CONFLICT DO NOTHING");
    await c.query('DROP SEQUENCE pins');
  });

  it('masks a column added by another client before the gateway has reloaded its catalog', async () => {
    const c = await connect();
    await c.query('CREATE TABLE ledger (id int)');
    await c.query('INSERT INTO ledger VALUES (1)'); // the catalog, reloaded after the DDL, knows ledger(id)
    await server.psql(['-d', 'app'], {
      input: `ALTER TABLE ledger ADD COLUMN api_key text; UPDATE ledger SET api_key = '${API_KEY_2}';`,
    });
    expect(await rowsOf(c, 'SELECT lower(api_key), l.id FROM ledger l')).toEqual([['****', 1]]);
    expect(await rowsOf(c, 'SELECT api_key, id FROM ledger')).toEqual([['****', 1]]);
  });
});

describe('metrics', () => {
  it('count masked values per rule and detector', async () => {
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const count = (detector: string): number =>
      Number(
        new RegExp(`agentgate_masked_values_total\\{[^}]*detector="${detector}"[^}]*\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    expect(text).toMatch(/agentgate_masked_values_total\{[^}]*rule="pii"/);
    expect(count('column')).toBeGreaterThan(20);
    expect(count('email')).toBeGreaterThan(0);
  });
});

describe('the transcript', () => {
  it('holds masked values only', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    await gw.store.flush();
    const sessions = gw.store
      .listSessions({})
      .filter((s) => s.listener === 'prod-db' && s.identity === 'devin');
    expect(sessions.length).toBeGreaterThan(5);
    let all = '';
    let typed = '';
    for (const s of sessions) {
      for (const event of gw.store.events(s.id)) {
        // `command` events hold the statement text as the client typed it (two tests type a value on purpose).
        if (event.type === 'command') typed += JSON.stringify(event);
        else all += JSON.stringify(event);
      }
    }
    expectClean(all);
    expectClean(typed.replaceAll('ada.lovelace@example.com', ''));
    expect(all).toContain('****');
  });
});
