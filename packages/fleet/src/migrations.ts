/**
 * The fleet database's schema, as numbered migrations applied in order by `agentgate fleet migrate`; each runs in
 * its own transaction and is recorded in `agentgate.schema_migrations`. A gateway checks the recorded version at
 * start and refuses a database whose schema is missing, behind, or newer than the migrations it knows.
 *
 * Roles: the migration creates two NOLOGIN roles that the operator grants to login roles (docs/configuration.md,
 * "fleet"): `agentgate_fleet_writer` (the gateways: INSERT and SELECT on the transcript tables, nothing else — a
 * shipped row cannot be changed or removed through it) and `agentgate_fleet_reader` (auditors: SELECT only).
 * Later features add tables as new migrations with grants of their own: approvals (version 2) give the writer
 * INSERT, SELECT and UPDATE of the decision columns of `agentgate.approvals` only; SSH key registrations (version 3)
 * give it INSERT and SELECT, and UPDATE of the revocation columns only.
 */
import type { PoolClient } from 'pg';

export const writerRole = 'agentgate_fleet_writer';
export const readerRole = 'agentgate_fleet_reader';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Tables that hold the shipped record: INSERT and SELECT for the writer, SELECT for the reader. */
const transcriptTables = [
  'agentgate.sessions',
  'agentgate.session_ends',
  'agentgate.events',
  'agentgate.checkpoints',
  'agentgate.signing_keys',
];

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'shipped transcripts',
    sql: `
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${writerRole}') THEN
    CREATE ROLE ${writerRole} NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${readerRole}') THEN
    CREATE ROLE ${readerRole} NOLOGIN;
  END IF;
END $$;

-- Each replica's public signing keys, so a verifier checks every replica's checkpoints.
CREATE TABLE agentgate.signing_keys (
  node        text        NOT NULL,
  kid         text        NOT NULL,
  jwk         jsonb       NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, kid)
);

-- One row per session, from its session.start event.
CREATE TABLE agentgate.sessions (
  session_id text        PRIMARY KEY,
  node       text        NOT NULL,
  listener   text        NOT NULL,
  protocol   text        NOT NULL,
  identity   text        NOT NULL,
  groups     jsonb       NOT NULL,
  client     jsonb       NOT NULL,
  started_at timestamptz NOT NULL
);
CREATE INDEX sessions_started_at ON agentgate.sessions (started_at);
CREATE INDEX sessions_identity ON agentgate.sessions (identity, started_at);
CREATE INDEX sessions_listener ON agentgate.sessions (listener, started_at);
CREATE INDEX sessions_protocol ON agentgate.sessions (protocol, started_at);
CREATE INDEX sessions_node ON agentgate.sessions (node, started_at);

-- One row per ended session, from its session.end event.
CREATE TABLE agentgate.session_ends (
  session_id text        PRIMARY KEY,
  ended_at   timestamptz NOT NULL,
  last_seq   integer     NOT NULL,
  reason     text
);

-- Every event exactly as the replica stored it: \`stored\` is the hashed JSON followed by its hash, \`io_data\` an io
-- event's bytes (their SHA-256 is in the hashed JSON). The other columns are read off the event for queries.
CREATE TABLE agentgate.events (
  session_id text        NOT NULL,
  seq        integer     NOT NULL,
  node       text        NOT NULL,
  ts         timestamptz NOT NULL,
  type       text        NOT NULL,
  denied     boolean     NOT NULL,
  stored     text        NOT NULL,
  io_data    bytea,
  shipped_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, seq)
);
CREATE INDEX events_denied ON agentgate.events (session_id) WHERE denied;

-- Signed checkpoints as the replica stored them ({session, seq, hash, jws}).
CREATE TABLE agentgate.checkpoints (
  session_id text    NOT NULL,
  seq        integer NOT NULL,
  node       text    NOT NULL,
  record     text    NOT NULL,
  PRIMARY KEY (session_id, seq)
);

GRANT USAGE ON SCHEMA agentgate TO ${writerRole}, ${readerRole};
GRANT SELECT ON agentgate.schema_migrations TO ${writerRole}, ${readerRole};
GRANT SELECT, INSERT ON ${transcriptTables.join(', ')} TO ${writerRole};
GRANT SELECT ON ${transcriptTables.join(', ')} TO ${readerRole};
`,
  },
  {
    version: 2,
    name: 'approvals across replicas',
    sql: `
-- One row per command held for approval on any replica. The holder inserts it pending; one conditional UPDATE
-- settles it (an approver on any replica, or the holder's expiry or withdrawal); a settled row never changes again.
CREATE TABLE agentgate.approvals (
  approval_id  text        PRIMARY KEY,
  node         text        NOT NULL,
  session_id   text        NOT NULL,
  listener     text        NOT NULL,
  protocol     text        NOT NULL,
  identity     text        NOT NULL,
  command      text        NOT NULL,
  rule         text        NOT NULL,
  approvers    jsonb       NOT NULL,
  requested_at timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  state        text        NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
  decided_by   text,
  decided_on   text,
  reason       text,
  decided_at   timestamptz
);
CREATE INDEX approvals_pending ON agentgate.approvals (requested_at) WHERE state = 'pending';

CREATE FUNCTION agentgate.approvals_settle_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state <> 'pending' THEN
    RAISE EXCEPTION 'approval % is already settled (%)', OLD.approval_id, OLD.state USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER approvals_settle_once BEFORE UPDATE ON agentgate.approvals
  FOR EACH ROW EXECUTE FUNCTION agentgate.approvals_settle_once();

-- The holder learns of a decision at once; the payload is the approval id.
CREATE FUNCTION agentgate.approvals_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('agentgate_approvals', NEW.approval_id);
  RETURN NULL;
END $$;
CREATE TRIGGER approvals_notify AFTER UPDATE OF state ON agentgate.approvals
  FOR EACH ROW WHEN (OLD.state = 'pending' AND NEW.state <> 'pending')
  EXECUTE FUNCTION agentgate.approvals_notify();

GRANT SELECT, INSERT ON agentgate.approvals TO ${writerRole};
GRANT UPDATE (state, decided_by, decided_on, reason, decided_at) ON agentgate.approvals TO ${writerRole};
GRANT SELECT ON agentgate.approvals TO ${readerRole};
`,
  },
  {
    version: 3,
    name: 'ssh key registrations',
    sql: `
-- Every SSH key registration (ssh-login, POST /api/ssh-keys) of every replica, one row per registration or renewal:
-- a key's latest row is in force until it expires or is revoked. Rows are never deleted by the gateways; a
-- revocation fills the revoked_* columns of the key's rows once (a trigger keeps it from being undone).
CREATE TABLE agentgate.ssh_key_registrations (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  fingerprint     text        NOT NULL,
  public_key      text        NOT NULL,
  identity        text        NOT NULL,
  groups          jsonb       NOT NULL,
  registered_with jsonb,
  registered_at   timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  node            text        NOT NULL,
  revoked_at      timestamptz,
  revoked_by      text,
  revoked_node    text,
  revoked_reason  text,
  CHECK (expires_at > registered_at),
  CHECK ((revoked_at IS NULL) = (revoked_by IS NULL) AND (revoked_at IS NULL) = (revoked_node IS NULL))
);
CREATE INDEX ssh_key_registrations_fingerprint ON agentgate.ssh_key_registrations (fingerprint, id);
CREATE INDEX ssh_key_registrations_expires ON agentgate.ssh_key_registrations (expires_at);

CREATE FUNCTION agentgate.ssh_key_revocation_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.revoked_at IS NOT NULL THEN
    RAISE EXCEPTION 'ssh key registration % is revoked; a revocation cannot be changed', OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ssh_key_revocation_is_final BEFORE UPDATE ON agentgate.ssh_key_registrations
  FOR EACH ROW EXECUTE FUNCTION agentgate.ssh_key_revocation_is_final();

GRANT SELECT, INSERT ON agentgate.ssh_key_registrations TO ${writerRole};
GRANT UPDATE (revoked_at, revoked_by, revoked_node, revoked_reason) ON agentgate.ssh_key_registrations TO ${writerRole};
GRANT SELECT ON agentgate.ssh_key_registrations TO ${readerRole};
`,
  },
];

/** The schema version this build of agentgate knows (the last migration's). */
export const knownSchemaVersion = migrations.at(-1)!.version;

/** Creates the schema and the version table when missing; safe to run again. */
export const bootstrapSql = `
CREATE SCHEMA IF NOT EXISTS agentgate;
CREATE TABLE IF NOT EXISTS agentgate.schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
`;

/** One key for pg_advisory_xact_lock: two `fleet migrate` at once apply each migration once. */
const migrationLock = 0x61676e74; // "agnt"

/** The highest applied version; 0 when none is, undefined when there is no version table at all. */
export async function appliedVersion(client: Pick<PoolClient, 'query'>): Promise<number | undefined> {
  const table = await client.query<{ exists: boolean }>(
    `SELECT to_regclass('agentgate.schema_migrations') IS NOT NULL AS exists`,
  );
  if (table.rows[0]?.exists !== true) return undefined;
  const result = await client.query<{ version: number | null }>(
    'SELECT max(version) AS version FROM agentgate.schema_migrations',
  );
  return result.rows[0]?.version ?? 0;
}

export interface MigrationOutcome {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly Migration[];
}

/**
 * Apply every migration newer than the database's version, each in its own transaction under an advisory lock.
 * Throws (applying nothing) when the database is newer than this build knows.
 */
export async function migrate(client: PoolClient): Promise<MigrationOutcome> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [migrationLock]);
    await client.query(bootstrapSql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  const from = (await appliedVersion(client)) ?? 0;
  if (from > knownSchemaVersion) throw new NewerSchemaError(from);
  const applied: Migration[] = [];
  for (const migration of migrations) {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [migrationLock]);
      // Another migrate may have applied it while this one waited for the lock.
      const done = await client.query('SELECT 1 FROM agentgate.schema_migrations WHERE version = $1', [
        migration.version,
      ]);
      if (done.rowCount === 0) {
        await client.query(migration.sql);
        await client.query('INSERT INTO agentgate.schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        applied.push(migration);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  return { from, to: knownSchemaVersion, applied };
}

export class NewerSchemaError extends Error {
  constructor(readonly version: number) {
    super(
      `the fleet database's schema is version ${version}, newer than this agentgate knows (${knownSchemaVersion}): ` +
        'upgrade agentgate on this machine before it joins the fleet',
    );
  }
}
