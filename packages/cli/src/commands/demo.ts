/**
 * `agentgate demo`: the README's main job. A throwaway PostgreSQL with some data, agentgate in front of it with a
 * demo config, a token from a local test IdP, a short scripted agent session through psql (an allowed query, a
 * denied DROP, denied bypass attempts, a masked column), the transcript replayed, and the psql line to try it
 * yourself. Then, unless --exit: a one-time sign-in link to the web console and one statement held for approval
 * (60 s) for the person to approve or deny there. Serves until Ctrl-C.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { loadConfig } from '@agentgate/config';
import { createJsonLogger } from '@agentgate/core';
import { LINK_PURPOSE } from '@agentgate/console';
import { generateSigningKeyPair, mintToken } from '@agentgate/identity';
import { colourFor } from '../output.js';
import { replaySession } from '../replay.js';
import { freePort, startThrowawayPostgres } from '../demo/throwaway-postgres.js';

const run = promisify(execFile);

async function portOr(preferred: number): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => void freePort().then(resolve));
    srv.listen(preferred, '127.0.0.1', () => srv.close(() => resolve(preferred)));
  });
}

const seedSql = `
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, ssn text, api_key text);
CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users, amount numeric(10,2));
INSERT INTO users VALUES
  (1, 'Ada Lovelace', 'ada@example.com', '123-45-6789', 'ak_live_0d1f5e'),
  (2, 'Alan Turing', 'alan@example.com', '987-65-4320', 'ak_live_77aa01'),
  (3, 'Grace Hopper', 'grace@example.com', '555-12-3456', 'ak_live_c0b0l1');
INSERT INTO orders SELECT g, 1 + g % 3, g * 9.99 FROM generate_series(1, 20) g;
`;

const agentScript = `
\\echo '-- 1. an allowed query (email and ssn are masked by the masking rule)'
SELECT id, name, email, ssn FROM users ORDER BY id;
\\echo '-- 2. a denied DROP'
DROP TABLE orders;
\\echo '-- 3. bypass attempts: casing and comments, a DROP hidden in dynamic SQL, a writable CTE without WHERE'
/* harmless */ dRoP/**/TABLE "orders";
DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE orders'; END $$;
WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone;
\\echo '-- 4. the session is still usable'
SELECT count(*) AS orders, sum(amount) AS total FROM orders;
`;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'start a throwaway PostgreSQL with agentgate in front of it and run a scripted agent session',
    )
    .option('--port <port>', 'gateway PostgreSQL port', '15432')
    .option('--admin-port <port>', 'admin API port', '9090')
    .option('--exit', 'exit after the scripted session instead of serving until Ctrl-C')
    .action(async (opts: { port: string; adminPort: string; exit?: boolean }) => {
      const say = (s: string): boolean => process.stdout.write(s + '\n');
      say('agentgate demo: starting a throwaway PostgreSQL …');
      const pg = await startThrowawayPostgres();
      const work = await mkdtemp(join(tmpdir(), 'agentgate-demo-'));
      try {
        const upstreamPassword = randomBytes(12).toString('hex');
        await pg.sql(`CREATE ROLE app LOGIN PASSWORD '${upstreamPassword}'`);
        await pg.sql('CREATE DATABASE app OWNER app');
        await pg.sql(`SET ROLE app; ${seedSql}`, 'app');

        const idp = await generateSigningKeyPair('ES256');
        await writeFile(join(work, 'idp-private.json'), JSON.stringify(idp.privateJwk), { mode: 0o600 });
        await writeFile(join(work, 'idp-jwks.json'), JSON.stringify(idp.jwks));
        const port = await portOr(Number(opts.port));
        const adminPort = await portOr(Number(opts.adminPort));
        const configFile = join(work, 'agentgate.yaml');
        await writeFile(
          configFile,
          `# written by agentgate demo
store: { path: ./data/transcripts }
signingKey: ./data/signing-key.json
admin: { listen: "127.0.0.1:${adminPort}" }
identity:
  oidc:
    - { issuer: agentgate-local, audience: agentgate, jwks: ./idp-jwks.json, groupsClaim: groups }
approvals: { timeout: 60s, approvers: [group:dba] }
console:
  publicUrl: "http://127.0.0.1:${adminPort}"
  auditors: [group:dba]
  admins: [group:dba]
listeners:
  - name: demo-db
    protocol: postgres
    listen: "127.0.0.1:${port}"
    allow: [group:agents]
    upstream: { host: 127.0.0.1, port: ${pg.port}, user: app, password: "\${env:AGENTGATE_DEMO_PG_PASSWORD}", database: app }
rules:
  - { name: no-ddl-drops, protocol: postgres, match: { commands: [DROP, TRUNCATE, ALTER SYSTEM] }, action: deny }
  - { name: no-unfiltered-writes, protocol: postgres, match: { unfilteredWrites: true }, action: deny }
  - { name: deletes-need-review, protocol: postgres, match: { commands: [DELETE, UPDATE], tables: [users] }, action: approve }
  - { name: no-server-files, protocol: postgres, match: { functions: [pg_read_file, pg_ls_dir, lo_import, lo_export] }, action: deny }
masking:
  - name: pii
    columns: ["users.email", "users.ssn", "*.api_key"]
    detectors: [email, credit_card, us_ssn, aws_access_key, private_key, jwt]
    replacement: "****"
`,
        );
        process.env['AGENTGATE_DEMO_PG_PASSWORD'] = upstreamPassword;
        const config = await loadConfig(configFile);
        const { startGateway } = await import('../gateway.js');
        const gateway = await startGateway(config, { log: createJsonLogger({ level: 'warn' }) });
        const token = await mintToken({
          privateJwk: idp.privateJwk,
          sub: 'devin',
          groups: ['agents'],
          ttlSeconds: 8 * 3600,
          issuer: 'agentgate-local',
          audience: 'agentgate',
        });
        const conninfo = `host=127.0.0.1 port=${port} dbname=app user=devin`;
        say(
          `agentgate demo: gateway on 127.0.0.1:${port}, admin on ${gateway.adminUrl}; running the agent script:\n`,
        );
        const scriptFile = join(work, 'agent.sql');
        await writeFile(scriptFile, agentScript);
        // One stream for results and errors, so each denial shows right under its statement.
        const psql = await run('sh', ['-c', 'exec psql -X -e -f "$0" "$1" 2>&1', scriptFile, conninfo], {
          env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' },
        }).catch((err: { stdout?: string }) => err);
        process.stdout.write(psql.stdout ?? '');

        await gateway.store.flush();
        const sessions = gateway.store.listSessions({ protocol: 'postgres' });
        const last = sessions[sessions.length - 1];
        if (last) {
          say('\nagentgate demo: the recorded transcript (agentgate replay):\n');
          await replaySession(last, gateway.store.events(last.id), {
            speed: 0,
            out: process.stdout,
            colour: colourFor(process.stdout),
          });
        }
        say(`\nTry it yourself:\n  PGPASSWORD='${token}' psql "${conninfo}"`);
        say(`  node bin/agentgate sessions list --config ${configFile}`);
        say(`  node bin/agentgate verify --config ${configFile}`);
        if (!opts.exit) {
          const link = await mintToken({
            privateJwk: idp.privateJwk,
            sub: 'alice',
            groups: ['dba'],
            ttlSeconds: 30 * 60,
            issuer: 'agentgate-local',
            audience: 'agentgate',
            extraClaims: { purpose: LINK_PURPOSE },
          });
          say(
            '\nThe web console: open this one-time link (it signs alice, an approver and auditor, in once):',
          );
          say(`  ${gateway.adminUrl}/auth/link?token=${link}`);
          say(
            `  (more links: node bin/agentgate console link --config ${configFile} --key ${join(work, 'idp-private.json')} --sub NAME --groups dba)`,
          );
          say(
            '\nThe agent now deletes a user, which needs approval: approve or deny it on the Approvals page within 60 s.',
          );
          const held = run(
            'psql',
            ['-X', '-v', 'VERBOSITY=verbose', conninfo, '-c', 'DELETE FROM users WHERE id = 3'],
            { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' } },
          ).then(
            (r) => say(`\nagentgate demo: the held DELETE went through: ${r.stdout.trim()}`),
            (err: { stderr?: string }) =>
              say(`\nagentgate demo: the held DELETE was refused: ${(err.stderr ?? '').trim()}`),
          );
          say('\nServing until Ctrl-C.');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', () => resolve());
            process.once('SIGTERM', () => resolve());
          });
          await gateway.stop();
          await held;
        } else await gateway.stop();
      } finally {
        await pg.stop();
        await rm(work, { recursive: true, force: true });
      }
    });
}
