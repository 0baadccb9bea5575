/**
 * The postgres listener wired by the real composition root (startTestGateway: config loading, OIDC identity, gate,
 * LMDB transcript): an OIDC token as the password, a denial, and the recorded session read back from the store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';

let server: TestPostgres;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  await server.psql(['-d', 'app'], {
    input:
      "SET ROLE app; CREATE TABLE users (id int, email text, note text); INSERT INTO users VALUES (1, 'ann@example.com', 'mail bob@example.org');",
  });
  gw = await startTestGateway(
    `
listeners:
  - name: prod-db
    protocol: postgres
    listen: 127.0.0.1:0
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${server.port}, user: app, password: "\${env:PG_PASSWORD}", database: app }
rules:
  - name: no-ddl-drops
    protocol: postgres
    match: { commands: [DROP, TRUNCATE, ALTER SYSTEM] }
    action: deny
masking:
  - name: pii
    columns: ["users.email"]
    detectors: [email]
    replacement: "****"
`,
    { env: { PG_PASSWORD: PASSWORD } },
  );
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await server?.stop();
});

describe('postgres listener in the gateway', () => {
  it('admits an OIDC token, denies by rule, and records the session in the transcript store', async () => {
    const addr = gw.address('prod-db') as { host: string; port: number };
    const client = new pg.Client({
      ...addr,
      user: 'devin',
      database: 'app',
      password: await gw.token('devin', ['agents']),
      application_name: 'jest',
    });
    await client.connect();
    expect((await client.query('SELECT $1::int + 1 AS n', [41])).rows[0].n).toBe(42);
    await expect(client.query('DROP TABLE pg_class')).rejects.toMatchObject({
      code: '42501',
      message: 'agentgate: denied by rule no-ddl-drops',
    });
    expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    // Masking plugs in at the result filter: a masked column and a detector hit in another column.
    const masked = await client.query('SELECT id, email, note FROM users WHERE id = $1', [1]);
    expect(masked.rows[0]).toMatchObject({ id: 1, email: '****' });
    expect(masked.rows[0].note).not.toContain('bob@example.org');
    await client.end();
    const outsider = new pg.Client({
      ...addr,
      user: 'eve',
      database: 'app',
      password: await gw.token('eve', ['visitors']),
    });
    await expect(outsider.connect()).rejects.toMatchObject({ code: '28000' });

    await new Promise((resolve) => setTimeout(resolve, 200));
    await gw.store.flush();
    const session = gw.store
      .listSessions({})
      .find((s) => s.identity === 'devin' && s.protocol === 'postgres');
    expect(session).toMatchObject({ listener: 'prod-db', commands: 4, denied: 1 });
    const events = [...gw.store.events(session!.id)];
    expect(events[0]).toMatchObject({ type: 'session.start' });
    expect(JSON.stringify(events[0])).toContain('"application_name":"jest"');
    const result = events.find(
      (e) =>
        e.type === 'result' &&
        e.commandTag === 'SELECT 1' &&
        Array.isArray(e.rows) &&
        (e.rows as unknown[][])[0]?.[0] === '42',
    );
    expect(result).toMatchObject({ rowDescription: { names: ['n'], typeOids: [23] }, rowCount: 1 });
    expect(events.at(-1)?.type === 'session.end' || events.some((e) => e.type === 'session.end')).toBe(true);
  });

  it('ends a session when the token it was opened with expires (FATAL 28000), and records why', async () => {
    const addr = gw.address('prod-db') as { host: string; port: number };
    const client = new pg.Client({
      ...addr,
      user: 'devin',
      database: 'app',
      password: await gw.token('devin', ['agents'], 4),
    });
    const ended = new Promise<Error>((resolve) => client.on('error', resolve));
    await client.connect();
    expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    expect(await ended).toMatchObject({
      code: '28000',
      message: expect.stringMatching(/^agentgate: the token expired at .*; reconnect with a fresh one$/),
    });
    await client.end().catch(() => undefined);
    await gw.store.flush();
    const events = gw.store.listSessions({ identity: 'devin' }).flatMap((s) => [...gw.store.events(s.id)]);
    expect(events.some((e) => e.type === 'error' && e['event'] === 'identity.expired')).toBe(true);
  });
});
