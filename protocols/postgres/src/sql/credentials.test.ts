/** Credential literals found in the tree and replaced in the recorded text (credentials.ts, recorded-text.ts). */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { connectionStringPasswords, redactConnectionString, redactParams } from './credentials.js';
import { decodeStringToken } from './pg-parser.js';
import { recordedMessage, recordedStatements, recordedTextOf } from './recorded-text.js';
import { createSqlAnalyzer, type SqlAnalyzer } from './index.js';

let analyzer: SqlAnalyzer;
beforeAll(async () => {
  analyzer = await createSqlAnalyzer({ cacheEntries: 100 });
});

/** What the record carries of `sql` (the text itself when it holds no credential). */
const recorded = (sql: string): string => {
  const credentials = analyzer.analyze(sql).credentials;
  return credentials === undefined ? sql : (recordedTextOf(sql, credentials) ?? sql);
};

describe('credentials in SQL text', () => {
  it.each([
    ["CREATE ROLE x PASSWORD 'hunter2'", "CREATE ROLE x PASSWORD '[REDACTED]'"],
    [
      "create user x with login encrypted password 'hunter2' valid until 'infinity'",
      "create user x with login encrypted password '[REDACTED]' valid until 'infinity'",
    ],
    [
      "ALTER USER x PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vydg=='",
      "ALTER USER x PASSWORD '[REDACTED]'",
    ],
    ["ALTER ROLE x PASSWORD E'hun\\'ter2'", "ALTER ROLE x PASSWORD '[REDACTED]'"],
    ['ALTER ROLE x PASSWORD $q$hunter2$q$', "ALTER ROLE x PASSWORD '[REDACTED]'"],
    ["ALTER ROLE x PASSWORD U&'hunt\\0065r2'", "ALTER ROLE x PASSWORD '[REDACTED]'"],
    [
      "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password 'hunter2')",
      "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password '[REDACTED]')",
    ],
    [
      "ALTER SERVER s OPTIONS (SET sslpassword 'hunter2', ADD client_secret 'tok3n!', host 'db')",
      "ALTER SERVER s OPTIONS (SET sslpassword '[REDACTED]', ADD client_secret '[REDACTED]', host 'db')",
    ],
    [
      "SELECT dblink_connect('c', 'host=db password=hunter2 dbname=app')",
      "SELECT dblink_connect('c', 'host=db password=[REDACTED] dbname=app')",
    ],
    [
      "SELECT dblink('host=db password=''two words''', 'SELECT 1') AS t(a int)",
      "SELECT dblink('host=db password=[REDACTED]', 'SELECT 1') AS t(a int)",
    ],
    [
      "SELECT dblink_exec('postgresql://app:hunter2@db:5432/app?sslmode=require', 'SELECT 1')",
      "SELECT dblink_exec('postgresql://app:[REDACTED]@db:5432/app?sslmode=require', 'SELECT 1')",
    ],
    [
      "CREATE SUBSCRIPTION s CONNECTION 'host=db password=hunter2' PUBLICATION p",
      "CREATE SUBSCRIPTION s CONNECTION 'host=db password=[REDACTED]' PUBLICATION p",
    ],
    [
      "SELECT crypt('hunter2', gen_salt('bf')), pgp_sym_encrypt(data, 'k3y-material') FROM t",
      "SELECT crypt('[REDACTED]', gen_salt('bf')), pgp_sym_encrypt(data, '[REDACTED]') FROM t",
    ],
    ["SET app.api_token = 'tok-123'", "SET app.api_token = '[REDACTED]'"],
    [
      "DO $$ BEGIN ALTER ROLE x PASSWORD 'hunter2'; END $$",
      "DO $$ BEGIN ALTER ROLE x PASSWORD '[REDACTED]'; END $$",
    ],
    [
      "DO $$ BEGIN EXECUTE 'ALTER ROLE x PASSWORD ''hunter2'''; END $$",
      "DO $$ BEGIN EXECUTE 'ALTER ROLE x PASSWORD ''[REDACTED]'''; END $$",
    ],
    [
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'ALTER ROLE x PASSWORD ''hunter2'''",
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'ALTER ROLE x PASSWORD ''[REDACTED]'''",
    ],
    [
      "CREATE ROLE x PASSWORD 'hunter2' /* was hunter2 */",
      "CREATE ROLE x PASSWORD '[REDACTED]' /* was [REDACTED] */",
    ],
  ])('%s', (sql, expected) => {
    expect(recorded(sql)).toBe(expected);
  });

  it('leaves texts without credentials alone', () => {
    for (const sql of [
      "SELECT 'password' AS word, name FROM users WHERE note = 'secret'",
      "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'app', password_required 'false')",
      "SELECT dblink_connect('c', 'host=db dbname=app')",
      'CREATE ROLE x PASSWORD NULL',
    ])
      expect(analyzer.analyze(sql).credentials).toBeUndefined();
  });

  it('text the parser rejects: the token after PASSWORD, secret options and connection strings', () => {
    expect(recorded('CREATE ROLE x PASSWORD hunter2')).toBe('CREATE ROLE x PASSWORD [REDACTED]');
    expect(recorded("CREATE ROLE x PASSWORD 'hunter2' BOGUS")).toBe(
      "CREATE ROLE x PASSWORD '[REDACTED]' BOGUS",
    );
    expect(recorded("DO $$ BEGIN ALTER ROLE x PASSWORD 'hunter2' oops; END $$")).toBe(
      "DO $$ BEGIN ALTER ROLE x PASSWORD '[REDACTED]' oops; END $$",
    );
    // Cannot even be scanned: nothing of it is recorded.
    expect(recorded("CREATE ROLE x PASSWORD 'hunter2")).toMatch(/^\[REDACTED\] \(unreadable/);
    const a = analyzer.analyze('CREATE ROLE x PASSWORD hunter2');
    expect(recordedMessage(a.error!, a.credentials!.secrets)).toBe(
      'syntax error at or near "[REDACTED]" at position 23',
    );
  });

  it('statement facts get the redacted text too; nested ones their own', () => {
    const a = analyzer.analyze("SELECT 1; DO $$ BEGIN ALTER ROLE x PASSWORD 'hunter2'; END $$");
    const texts = recordedStatements(a).map((s) => s.recordedText ?? s.text);
    expect(texts).toEqual([
      'SELECT 1',
      "DO $$ BEGIN ALTER ROLE x PASSWORD '[REDACTED]'; END $$",
      "ALTER ROLE x PASSWORD '[REDACTED]'",
    ]);
    expect(a.statements[2]?.text).toBe("ALTER ROLE x PASSWORD 'hunter2'");
  });

  it('Bind parameters in credential positions', () => {
    const secrets = (sql: string) => analyzer.analyze(sql).credentials?.secrets ?? [];
    expect(redactParams(['hunter2', 'x'], secrets('ALTER ROLE x PASSWORD $1'))).toEqual(['[REDACTED]', 'x']);
    expect(redactParams(['c', 'host=db password=p'], secrets('SELECT dblink_connect($1, $2)'))).toEqual([
      '[REDACTED]',
      '[REDACTED]',
    ]);
    expect(
      redactParams(['app.password', 'p'], secrets("SELECT set_config('app.password', $2, false)")),
    ).toEqual(['app.password', '[REDACTED]']);
    expect(redactParams(['a'], secrets('SELECT $1'))).toBeUndefined();
    expect(redactParams(['a', null], [], true)).toEqual(['[REDACTED]', null]);
  });

  it('analyses with credentials are never shared with other texts of the same shape', () => {
    analyzer.analyze("CREATE ROLE x PASSWORD 'a1' CONNECTION LIMIT 5");
    const other = analyzer.analyze("CREATE ROLE x PASSWORD 'a1' CONNECTION LIMIT 6");
    expect(other.statements[0]?.text).toBe("CREATE ROLE x PASSWORD 'a1' CONNECTION LIMIT 6");
  });
});

describe('connection strings and string tokens', () => {
  it('finds and replaces passwords in keyword/value strings and URIs', () => {
    expect(connectionStringPasswords("host=a password = 'x y' dbname=b")).toEqual(['x y']);
    expect(connectionStringPasswords('postgres://u:p%40ss@h/db?sslpassword=q')).toEqual(['p@ss', 'q']);
    expect(connectionStringPasswords('host=a dbname=b')).toEqual([]);
    expect(connectionStringPasswords('not a connection string')).toEqual([]);
    expect(redactConnectionString("host=a password='x y' port=1")).toBe('host=a password=[REDACTED] port=1');
    expect(redactConnectionString('postgresql://u:p@h/db?password=q&x=1')).toBe(
      'postgresql://u:[REDACTED]@h/db?password=[REDACTED]&x=1',
    );
  });

  it('decodes every string literal form', () => {
    expect(decodeStringToken("'it''s'")).toBe("it's");
    expect(decodeStringToken("'a'\n'b'")).toBe('ab');
    expect(decodeStringToken("E'a\\nb\\x41\\101\\u00e9'")).toBe('a\nbAAé');
    expect(decodeStringToken('$tag$x $$ y$tag$')).toBe('x $$ y');
    expect(decodeStringToken("U&'d\\0061t\\+000061'")).toBe('data');
    expect(decodeStringToken("E'\\U7fffffff'")).toBeUndefined();
  });
});
