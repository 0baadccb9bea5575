/**
 * Credential literals in SQL never reach the record (protocols/postgres/src/sql/credentials.ts): role passwords
 * (simple and extended protocol, a SCRAM verifier, a Bind parameter, inside a DO block, in text the parser
 * rejects), user mapping and server options, dblink connection strings, a statement held for approval. The whole
 * LMDB store directory is searched byte for byte for the secret afterwards; the command events say they were
 * redacted and keep the SQL's shape.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTestGateway, type TestGateway } from './harness/gateway.js';
import { PASSWORD, startPostgres, type TestPostgres } from './harness/postgres.js';

const SECRET = 'hunter2';

let server: TestPostgres;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  await server.psql(['-d', 'app'], {
    input: `
CREATE EXTENSION dblink;
CREATE EXTENSION postgres_fdw;
GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO app;
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', dbname 'app');
GRANT USAGE ON FOREIGN SERVER loopback TO app;
CREATE FOREIGN DATA WRAPPER dummy;
GRANT USAGE ON FOREIGN DATA WRAPPER dummy TO app;
ALTER ROLE app CREATEROLE;
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
rules:
  - { name: role-changes-need-review, protocol: postgres, match: { commands: [ALTER ROLE], pattern: held }, action: approve }
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

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Every command event recorded for devin, as JSON. */
async function commandEvents(): Promise<Record<string, unknown>[]> {
  await gw.store.flush();
  return gw.store
    .listSessions({ identity: 'devin' })
    .flatMap((s) => [...gw.store.events(s.id)])
    .filter((e) => e.type === 'command') as unknown as Record<string, unknown>[];
}

describe('credentials in SQL are not recorded', () => {
  it('replaces every credential literal in the recorded text, and the store holds none', async () => {
    const client = await connect();
    const port = server.port;
    try {
      await client.query(`CREATE ROLE agent_role LOGIN PASSWORD '${SECRET}'`);
      await client.query({
        name: 'pw',
        text: `ALTER ROLE agent_role ENCRYPTED PASSWORD '${SECRET}-extended'`,
      });
      await client.query(
        `ALTER USER agent_role PASSWORD 'SCRAM-SHA-256$4096:${SECRET}c2FsdA==$${SECRET}S3RvcmVkS2V5:${SECRET}U2VydmVyS2V5'`,
      );
      await expect(client.query('ALTER ROLE agent_role PASSWORD $1', [`${SECRET}-param`])).rejects.toThrow();
      await client.query("SELECT set_config('app.password', $1, false)", [`${SECRET}-setting`]);
      await client.query(`DO $$ BEGIN EXECUTE 'ALTER ROLE agent_role PASSWORD ''${SECRET}-do'''; END $$`);
      await client.query(
        `CREATE USER MAPPING FOR app SERVER loopback OPTIONS (user 'app', password '${SECRET}-mapping')`,
      );
      await client.query(
        `ALTER USER MAPPING FOR app SERVER loopback OPTIONS (SET password '${SECRET}-mapping2')`,
      );
      await client.query(
        `CREATE SERVER other FOREIGN DATA WRAPPER dummy OPTIONS (host 'x', client_secret '${SECRET}-server')`,
      );
      await expect(
        client.query(
          `SELECT dblink_connect('c1', 'host=127.0.0.1 port=${port} dbname=app user=nobody password=${SECRET}-dblink')`,
        ),
      ).rejects.toThrow();
      await expect(
        client.query(`SELECT dblink_exec('postgresql://app:${SECRET}-uri@127.0.0.1:1/app', 'SELECT 1')`),
      ).rejects.toThrow();
      await expect(client.query(`CREATE ROLE typo PASSWORD ${SECRET}_unquoted`)).rejects.toMatchObject({
        code: '42501',
      });
    } finally {
      await client.end();
    }
    // The role really has the password the client sent.
    expect(
      await server.psql([
        '-d',
        'app',
        '-tA',
        '-c',
        "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'agent_role'",
      ]),
    ).toContain('t');

    const events = await commandEvents();
    const texts = events.map((e) => String(e['text']));
    expect(texts).toEqual(
      expect.arrayContaining([
        "CREATE ROLE agent_role LOGIN PASSWORD '[REDACTED]'",
        "ALTER ROLE agent_role ENCRYPTED PASSWORD '[REDACTED]'",
        "DO $$ BEGIN EXECUTE 'ALTER ROLE agent_role PASSWORD ''[REDACTED]'''; END $$",
        "ALTER USER MAPPING FOR app SERVER loopback OPTIONS (SET password '[REDACTED]')",
        `SELECT dblink_connect('c1', 'host=127.0.0.1 port=${port} dbname=app user=nobody password=[REDACTED]')`,
      ]),
    );
    const create = events.find((e) => String(e['text']).startsWith('CREATE ROLE agent_role'));
    expect(create).toMatchObject({ redacted: expect.arrayContaining(['builtin:credential-literal']) });
    const param = events.find((e) => String(e['text']) === 'ALTER ROLE agent_role PASSWORD $1');
    expect(param).toMatchObject({
      redacted: expect.arrayContaining(['builtin:credential-literal']),
      detail: { params: ['[REDACTED]'] },
    });

    await gw.store.flush();
    const leaks = filesUnder(join(gw.dir, 'transcripts')).filter((f) => readFileSync(f).includes(SECRET));
    expect(leaks).toEqual([]);
  });

  it('a statement held for approval shows approvers the redacted text', async () => {
    const client = await connect();
    try {
      const running = client.query(`ALTER ROLE agent_role PASSWORD '${SECRET}-held' /* held */`);
      const token = await gw.token('carol', ['dba']);
      let held: { id: string; command: string } | undefined;
      for (let i = 0; i < 400 && held === undefined; i++) {
        const res = await fetch(`${gw.adminUrl}/api/approvals`, {
          headers: { authorization: `Bearer ${token}` },
        });
        held = ((await res.json()) as { id: string; command: string }[]).find((p) =>
          p.command.includes('held'),
        );
        if (held === undefined) await new Promise((r) => setTimeout(r, 25));
      }
      expect(held?.command).toBe("ALTER ROLE agent_role PASSWORD '[REDACTED]' /* held */");
      await fetch(`${gw.adminUrl}/api/approvals/${held!.id}/deny`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      await expect(running).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.end();
    }
    await gw.store.flush();
    const leaks = filesUnder(join(gw.dir, 'transcripts')).filter((f) => readFileSync(f).includes(SECRET));
    expect(leaks).toEqual([]);
  });
});
