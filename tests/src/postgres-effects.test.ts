/**
 * Rules match effects, not statement names (protocols/postgres/README.md "Effects"): with DELETE denied and
 * UPDATE on `users` held for approval, every other statement that deletes or updates those rows — MERGE actions,
 * upserts, COPY, TRUNCATE, routines already in the database (SQL, PL/pgSQL, procedures, transitively), defaults,
 * views, triggers, rules, operators, foreign keys' actions, code defined earlier in the same transaction — is
 * refused or held too, against a real PostgreSQL through the real gateway, and the rows are unchanged afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, runPsql, startPostgres, type TestPostgres } from './harness/postgres.js';

let server: TestPostgres;
let gw: TestGateway;

const SETUP = `
CREATE EXTENSION pgcrypto;
-- A C function outside any extension: its body is machine code the gateway cannot read.
CREATE FUNCTION c_digest(bytea, text) RETURNS bytea LANGUAGE c IMMUTABLE STRICT AS '$libdir/pgcrypto', 'pg_digest';
GRANT EXECUTE ON FUNCTION c_digest(bytea, text) TO app;
CREATE SCHEMA evil AUTHORIZATION app;
-- A user alias of a built-in (language internal needs a superuser).
CREATE FUNCTION remove_lo(oid) RETURNS int LANGUAGE internal AS 'be_lo_unlink';
CREATE DATABASE evt OWNER app;
SET ROLE app;
CREATE TABLE accounts (id int PRIMARY KEY);
INSERT INTO accounts SELECT g FROM generate_series(1, 10) g;
CREATE TABLE users (id int PRIMARY KEY, name text, account int REFERENCES accounts ON UPDATE CASCADE);
INSERT INTO users SELECT g, 'u' || g, g FROM generate_series(1, 10) g;
CREATE TABLE staging (id int, name text);
INSERT INTO staging VALUES (1, 'changed'), (11, 'new');
CREATE TABLE scratch (id int PRIMARY KEY, v text);
CREATE TABLE ledger (id int PRIMARY KEY, name text);
CREATE FUNCTION cleanup() RETURNS void LANGUAGE sql AS 'DELETE FROM users WHERE id > 5';
CREATE FUNCTION rename_all() RETURNS void LANGUAGE plpgsql AS $$ BEGIN UPDATE users SET name = 'x'; END $$;
CREATE FUNCTION outer_fn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM cleanup(); END $$;
CREATE FUNCTION deeper() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 FROM outer_fn(); END;
CREATE PROCEDURE purge() LANGUAGE sql AS $$ DELETE FROM users $$;
CREATE FUNCTION harmless() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION evil.harmless() RETURNS int LANGUAGE sql AS 'DELETE FROM users RETURNING 1';
CREATE FUNCTION later() RETURNS int LANGUAGE sql AS 'SELECT 2';
CREATE FUNCTION benign() RETURNS int LANGUAGE sql AS 'SELECT 3';
CREATE FUNCTION touch_staging() RETURNS void LANGUAGE sql AS $$UPDATE staging SET name = 'touched'$$;
CREATE FUNCTION wipe_one() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM users WHERE id = 1; RETURN 1; END $$;
CREATE TABLE audit (id int, v int DEFAULT wipe_one());
CREATE FUNCTION cleanup_count() RETURNS int LANGUAGE sql AS 'DELETE FROM users WHERE id > 5 RETURNING 1';
CREATE VIEW cleaned AS SELECT id, (SELECT cleanup_count()) AS c FROM users;
CREATE VIEW user_names AS SELECT id, name FROM users;
CREATE FUNCTION trg_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM users WHERE id = 2; RETURN NEW; END $$;
CREATE TABLE events (id int);
CREATE TRIGGER tr AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION trg_delete();
CREATE TABLE logs (id int);
CREATE RULE r AS ON INSERT TO logs DO ALSO DELETE FROM users WHERE id = 3;
CREATE FUNCTION op_fn(int, int) RETURNS bool LANGUAGE sql AS 'DELETE FROM users WHERE id = $1 RETURNING true';
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = op_fn);
CREATE FUNCTION purge_row(users) RETURNS int LANGUAGE sql AS 'DELETE FROM users WHERE id = $1.id RETURNING 1';
CREATE FUNCTION with_default(n int DEFAULT wipe_one()) RETURNS int LANGUAGE sql AS 'SELECT $1';
CREATE TABLE parent (id int);
CREATE TABLE child_users () INHERITS (parent);
INSERT INTO child_users VALUES (1);
CREATE FUNCTION guard_fn(int) RETURNS bool LANGUAGE sql AS 'DELETE FROM users WHERE id = $1 RETURNING true';
CREATE DOMAIN guarded AS int CHECK (guard_fn(VALUE));
CREATE TABLE guarded_t (g guarded);
CREATE TYPE mood AS ENUM ('ok');
CREATE FUNCTION mood_cast(int) RETURNS mood LANGUAGE sql AS 'DELETE FROM users WHERE id = $1 RETURNING ''ok''::mood';
CREATE CAST (int AS mood) WITH FUNCTION mood_cast(int);
CREATE FUNCTION policy_fn(int) RETURNS bool LANGUAGE sql AS 'DELETE FROM users WHERE id = $1 RETURNING true';
CREATE TABLE secured (id int);
ALTER TABLE secured ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON secured USING (policy_fn(id));
CREATE FUNCTION agg_step(int, int) RETURNS int LANGUAGE sql AS 'DELETE FROM users WHERE id = $2 RETURNING $1';
CREATE AGGREGATE wipe_agg(int) (SFUNC = agg_step, STYPE = int, INITCOND = '0');
CREATE FUNCTION trg_update_users() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE users SET name = 'p'; RETURN NEW; END $$;
CREATE TABLE measures (id int) PARTITION BY LIST (id);
CREATE TABLE measures_1 PARTITION OF measures FOR VALUES IN (1);
CREATE TRIGGER tr_measures AFTER INSERT ON measures_1 FOR EACH ROW EXECUTE FUNCTION trg_update_users();
`;

/** A database whose DDL fires an event trigger that deletes rows (creating one needs a superuser). */
const EVENT_TRIGGER_SETUP = `
CREATE TABLE victims (id int);
INSERT INTO victims VALUES (1), (2);
ALTER TABLE victims OWNER TO app;
CREATE FUNCTION evt_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM public.victims; END $$;
GRANT ALL ON SCHEMA public TO app;
CREATE EVENT TRIGGER et ON ddl_command_end EXECUTE FUNCTION evt_fn();
`;

beforeAll(async () => {
  server = await startPostgres();
  await server.psql(['-d', 'app'], { input: SETUP });
  await server.psql(['-d', 'evt'], { input: EVENT_TRIGGER_SETUP });
  // A foreign table on a loopback server: writing it writes `users` of this very database.
  await server.psql(['-d', 'app'], {
    input: `
CREATE EXTENSION postgres_fdw;
CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '${server.port}', dbname 'app');
GRANT USAGE ON FOREIGN SERVER loop TO app;
CREATE USER MAPPING FOR app SERVER loop OPTIONS (user 'app', password '${PASSWORD}');
SET ROLE app;
CREATE FOREIGN TABLE remote_people (id int, name text, account int) SERVER loop OPTIONS (schema_name 'public', table_name 'users');
`,
  });
  gw = await startTestGateway(
    `
approvals:
  timeout: 30s
  approvers: [group:dba]
listeners:
  - name: db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
  - name: strict
    protocol: postgres
    listen: 127.0.0.1:0
    default: deny
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
  - name: evt-db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: evt }
rules:
  - { name: no-deletes, protocol: postgres, match: { commands: [DELETE] }, action: deny }
  - { name: user-updates-need-review, protocol: postgres, match: { commands: [UPDATE], tables: [users] }, action: approve }
  - { name: no-archive-writes, protocol: postgres, match: { commands: [INSERT], tables: [archive, ledger] }, action: deny }
  - { name: no-child-reads, protocol: postgres, match: { commands: [SELECT], tables: [child_users] }, action: deny }
  - { name: strict-reads, listeners: [strict], match: { commands: [SELECT] }, action: allow }
  - { name: strict-scratch, listeners: [strict], match: { commands: [INSERT, UPDATE], tables: [scratch] }, action: allow }
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
}, 90_000);

afterAll(async () => {
  await gw?.stop();
  await server?.stop();
});

async function connect(): Promise<pg.Client> {
  const addr = gw.address('db') as { host: string; port: number };
  const client = new pg.Client({
    ...addr,
    user: 'devin',
    database: 'app',
    password: await gw.token('devin', ['agents']),
  });
  await client.connect();
  return client;
}

/** The table as the server has it, read directly (not through the gateway). */
async function rows(table: string): Promise<string> {
  return server.psql([
    '-d',
    'app',
    '-tA',
    '-c',
    `SELECT string_agg(t::text, ';' ORDER BY t) FROM ${table} t`,
  ]);
}

async function expectRefused(sql: string, rule: string, client?: pg.Client): Promise<void> {
  const c = client ?? (await connect());
  try {
    await expect(c.query(sql)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringContaining(`rule ${rule}`),
    });
  } finally {
    if (client === undefined) await c.end();
  }
}

interface Pending {
  readonly id: string;
  readonly identity: string;
  readonly command: string;
  readonly rule: string;
}

/** Waits until a statement containing `text` is held, then rejects it as an approver. */
async function rejectHeld(text: string): Promise<Pending> {
  const token = await gw.token('carol', ['dba']);
  for (let i = 0; i < 400; i++) {
    const res = await fetch(`${gw.adminUrl}/api/approvals`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const held = ((await res.json()) as Pending[]).find((p) => p.command.includes(text));
    if (held !== undefined) {
      const rejected = await fetch(`${gw.adminUrl}/api/approvals/${held.id}/deny`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(rejected.status).toBe(200);
      return held;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing held for ${text}`);
}

/** `sql` is held for approval under `rule`; rejected, it fails and changes nothing. */
async function expectHeld(sql: string, rule: string): Promise<void> {
  const client = await connect();
  try {
    const running = client.query(sql);
    const held = await rejectHeld(sql.slice(0, 40));
    expect(held.rule).toBe(rule);
    await expect(running).rejects.toMatchObject({
      code: '42501',
      message: expect.stringContaining('rejected'),
    });
  } finally {
    await client.end();
  }
}

const USERS = Array.from({ length: 10 }, (_, i) => `(${i + 1},u${i + 1},${i + 1})`).join(';');

describe('statements whose actions delete or update rows', () => {
  it('MERGE … THEN DELETE is refused by a DELETE rule', async () => {
    await expectRefused(
      'MERGE INTO users u USING staging s ON u.id = s.id WHEN MATCHED THEN DELETE',
      'no-deletes',
    );
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('MERGE … THEN UPDATE on users is held for approval', async () => {
    await expectHeld(
      'MERGE INTO users u USING staging s ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name',
      'user-updates-need-review',
    );
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('MERGE … THEN INSERT is refused by an INSERT rule on the target', async () => {
    await expectRefused(
      'MERGE INTO ledger l USING staging s ON l.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.name)',
      'no-archive-writes',
    );
    expect((await rows('ledger')).trim()).toBe('');
  });

  it('INSERT … ON CONFLICT DO UPDATE on users is held for approval', async () => {
    await expectHeld(
      "INSERT INTO scratch VALUES (1, 'a') ON CONFLICT (id) DO NOTHING; " +
        "INSERT INTO users (id, name) VALUES (1, 'upserted') ON CONFLICT (id) DO UPDATE SET name = excluded.name",
      'user-updates-need-review',
    );
    expect((await rows('users')).trim()).toBe(USERS);
    expect((await rows('scratch')).trim()).toBe('');
  });

  it('writable CTEs, TRUNCATE and COPY FROM count as what they do', async () => {
    await expectRefused(
      'WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone',
      'no-deletes',
    );
    await expectRefused('TRUNCATE users CASCADE', 'no-deletes');
    const addr = gw.address('db') as { host: string; port: number };
    await expect(
      runPsql(addr.host, addr.port, ['-U', 'devin', '-d', 'app', '-c', 'COPY ledger (id, name) FROM STDIN'], {
        input: '99\tcopied\n\\.\n',
        env: { PGPASSWORD: await gw.token('devin', ['agents']) },
      }),
    ).rejects.toThrow(/no-archive-writes/);
    expect((await rows('users')).trim()).toBe(USERS);
    expect((await rows('ledger')).trim()).toBe('');
  });

  it('SELECT INTO and CREATE TABLE AS insert into the table they create', async () => {
    await expectRefused('SELECT * INTO archive FROM staging', 'no-archive-writes');
    await expectRefused('CREATE TABLE archive AS SELECT * FROM staging', 'no-archive-writes');
    expect(await server.psql(['-d', 'app', '-tA', '-c', "SELECT to_regclass('archive') IS NULL"])).toContain(
      't',
    );
  });
});

describe('routines already in the database', () => {
  it.each([
    ['a SQL function', 'SELECT cleanup()', 'no-deletes'],
    ['a PL/pgSQL function calling another function', 'SELECT outer_fn()', 'no-deletes'],
    ['a BEGIN ATOMIC function three levels up', 'SELECT deeper()', 'no-deletes'],
    ['a procedure', 'CALL purge()', 'no-deletes'],
    ['a function in FROM', 'SELECT * FROM cleanup()', 'no-deletes'],
    ['a function in a column default', 'INSERT INTO audit (id) VALUES (1)', 'no-deletes'],
    ['a function in an argument default', 'SELECT with_default()', 'no-deletes'],
    ['a function in a view', 'SELECT * FROM cleaned', 'no-deletes'],
    ['a trigger', 'INSERT INTO events VALUES (1)', 'no-deletes'],
    ['a rule', 'INSERT INTO logs VALUES (1)', 'no-deletes'],
    ['an operator', 'SELECT 1 === 2', 'no-deletes'],
    ['attribute notation', 'SELECT u.purge_row FROM users u', 'no-deletes'],
    [
      'a schema the search_path puts first',
      'SET search_path = evil, public; SELECT harmless()',
      'no-deletes',
    ],
    ['a C function outside any extension', "SELECT c_digest('x', 'sha256')", 'no-deletes'],
    ['a routine that does not exist', 'SELECT no_such_routine()', 'no-deletes'],
    ['a function called from a DO block', 'DO $$ BEGIN PERFORM cleanup(); END $$', 'no-deletes'],
    ['a function in a prepared statement', 'PREPARE p AS SELECT cleanup(); EXECUTE p', 'no-deletes'],
    ['a function under EXPLAIN ANALYZE', 'EXPLAIN ANALYZE SELECT cleanup()', 'no-deletes'],
    ['a function in a cursor', 'BEGIN; DECLARE c CURSOR FOR SELECT cleanup(); FETCH c; COMMIT', 'no-deletes'],
    ['a function in COPY (query)', 'COPY (SELECT cleanup()) TO STDOUT', 'no-deletes'],
    ['a function in RETURNING', "INSERT INTO scratch VALUES (9, 'x') RETURNING cleanup()", 'no-deletes'],
    ['a function in a CTE', 'WITH x AS (SELECT cleanup()) SELECT * FROM x', 'no-deletes'],
    [
      'a function filling a new column',
      'ALTER TABLE scratch ADD COLUMN z int DEFAULT wipe_one()',
      'no-deletes',
    ],
    ['a function in an index expression', 'CREATE INDEX ON scratch ((wipe_one() + id))', 'no-deletes'],
    ['a domain CHECK on a cast', 'SELECT 5::guarded', 'no-deletes'],
    ['a domain CHECK on a column written', 'INSERT INTO guarded_t VALUES (5)', 'no-deletes'],
    ['a user-defined cast', 'SELECT 1::mood', 'no-deletes'],
    ['a row security policy', 'SELECT * FROM secured', 'no-deletes'],
    ['an aggregate’s state function', 'SELECT wipe_agg(id) FROM scratch', 'no-deletes'],
    ['attribute notation in parentheses', 'SELECT (u).purge_row FROM users u', 'no-deletes'],
    ['a large-object unlink', 'SELECT lo_unlink(1)', 'no-deletes'],
    ['a user alias of lo_unlink', 'SELECT remove_lo(1)', 'no-deletes'],
  ])('%s is refused', async (_label, sql, rule) => {
    await expectRefused(sql, rule);
    expect((await rows('users')).trim()).toBe(USERS);
    expect((await rows('audit')).trim()).toBe('');
  });

  it('a PL/pgSQL function updating users is held for approval', async () => {
    await expectHeld('SELECT rename_all()', 'user-updates-need-review');
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('an update of a referenced key cascades to users and is held', async () => {
    await expectHeld('UPDATE accounts SET id = 100 WHERE id = 1', 'user-updates-need-review');
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('writes through a view count as writes of its table', async () => {
    await expectRefused('DELETE FROM user_names WHERE id = 4', 'no-deletes');
    await expectHeld("UPDATE user_names SET name = 'v' WHERE id = 4", 'user-updates-need-review');
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('a statement on a parent reaches its inheritance children and partitions', async () => {
    await expectRefused('SELECT * FROM parent', 'no-child-reads');
    await expectHeld('INSERT INTO measures VALUES (1)', 'user-updates-need-review');
    expect((await rows('measures')).trim()).toBe('');
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('a foreign table writes the relation it stands for', async () => {
    await expectHeld("UPDATE remote_people SET name = 'r' WHERE id = 1", 'user-updates-need-review');
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('an extended-protocol Execute reaches the routine too', async () => {
    const client = await connect();
    try {
      await expect(client.query('SELECT cleanup() WHERE $1', [true])).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining('no-deletes'),
      });
    } finally {
      await client.end();
    }
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('DDL in a database with an event trigger runs the trigger’s function', async () => {
    const addr = gw.address('evt-db') as { host: string; port: number };
    const client = new pg.Client({
      ...addr,
      user: 'devin',
      database: 'evt',
      password: await gw.token('devin', ['agents']),
    });
    await client.connect();
    try {
      await expectRefused('CREATE TABLE created (a int)', 'no-deletes', client);
      expect((await client.query('SELECT count(*)::int AS n FROM victims')).rows[0].n).toBe(2);
    } finally {
      await client.end();
    }
  });

  it('ordinary statements and harmless routines still run', async () => {
    const client = await connect();
    try {
      expect((await client.query('SELECT benign() AS b')).rows[0].b).toBe(3);
      expect((await client.query('SELECT count(*)::int AS n FROM user_names')).rows[0].n).toBe(10);
      expect((await client.query("SELECT lower('A') AS l, now() IS NOT NULL AS t")).rows[0].l).toBe('a');
      await client.query("INSERT INTO scratch VALUES (5, 'ok')");
      await client.query("UPDATE scratch SET v = 'ok2' WHERE id = 5");
      expect((await client.query('SELECT v FROM scratch WHERE id = 5')).rows[0].v).toBe('ok2');
      expect((await client.query('SELECT u.name FROM users u WHERE u.id = 1')).rows[0].name).toBe('u1');
    } finally {
      await client.end();
      await server.psql(['-d', 'app'], { input: 'DELETE FROM scratch;' });
    }
  });

  it('a body replaced outside the gateway is judged as it is now', async () => {
    const client = await connect();
    try {
      expect((await client.query('SELECT later() AS n')).rows[0].n).toBe(2);
      await server.psql(['-d', 'app'], {
        input:
          "SET ROLE app; CREATE OR REPLACE FUNCTION later() RETURNS int LANGUAGE sql AS 'DELETE FROM users RETURNING 2';",
      });
      await expectRefused('SELECT later()', 'no-deletes', client);
    } finally {
      await client.end();
    }
    expect((await rows('users')).trim()).toBe(USERS);
  });
});

describe('allow-list mode (default: deny)', () => {
  it('every effect of the code a statement reaches must be allowed, not only the statement', async () => {
    const addr = gw.address('strict') as { host: string; port: number };
    const client = new pg.Client({
      ...addr,
      user: 'devin',
      database: 'app',
      password: await gw.token('devin', ['agents']),
    });
    await client.connect();
    try {
      expect((await client.query('SELECT benign() AS b')).rows[0].b).toBe(3);
      await expect(client.query('SELECT touch_staging()')).rejects.toMatchObject({
        code: '42501',
        message: expect.stringContaining('builtin:default-deny (no allow rule matches UPDATE on staging'),
      });
      await client.query("INSERT INTO scratch VALUES (42, 'allowed')");
      await expect(client.query('SELECT * FROM cleaned')).rejects.toMatchObject({
        message: expect.stringMatching(/no-deletes|default-deny/),
      });
    } finally {
      await client.end();
      await server.psql(['-d', 'app'], { input: 'DELETE FROM scratch;' });
    }
    expect((await rows('users')).trim()).toBe(USERS);
    expect((await rows('staging')).trim()).toBe('(1,changed);(11,new)');
  });
});

describe('code defined earlier in the same transaction', () => {
  it('a routine renamed in the transaction is judged by its body', async () => {
    const client = await connect();
    try {
      expect((await client.query('SELECT benign() AS b')).rows[0].b).toBe(3);
      await client.query('BEGIN');
      await client.query('ALTER FUNCTION benign() RENAME TO benign_before');
      await client.query('ALTER FUNCTION cleanup() RENAME TO benign');
      await expectRefused('SELECT benign()', 'no-deletes', client);
      await client.query('ROLLBACK');
      expect((await client.query('SELECT benign() AS b')).rows[0].b).toBe(3);
    } finally {
      await client.end();
    }
    expect((await rows('users')).trim()).toBe(USERS);
  });

  it('a trigger created in the transaction fires on the next insert', async () => {
    const client = await connect();
    try {
      await client.query('BEGIN');
      await client.query(
        'CREATE TRIGGER tr2 AFTER INSERT ON scratch FOR EACH ROW EXECUTE FUNCTION trg_delete()',
      );
      await expectRefused("INSERT INTO scratch VALUES (7, 'x')", 'no-deletes', client);
      await client.query('ROLLBACK');
      // In one message, too.
      await expectRefused(
        'CREATE TRIGGER tr3 AFTER INSERT ON scratch FOR EACH ROW EXECUTE FUNCTION trg_delete(); ' +
          "INSERT INTO scratch VALUES (8, 'x')",
        'no-deletes',
        client,
      );
    } finally {
      await client.end();
    }
    expect((await rows('users')).trim()).toBe(USERS);
    expect((await rows('scratch')).trim()).toBe('');
  });
});
