/**
 * `agentgate fleet migrate`: create or upgrade the fleet database's schema, and grant the fleet's roles to the
 * login roles the gateways and auditors use (docs/configuration.md, `fleet`; docs/cli.md).
 */
import type { Command } from 'commander';
import { loadFleetLocation } from '@agentgate/config';
import { FleetDatabase, knownSchemaVersion, readerRole, writerRole } from '@agentgate/fleet';
import { CliError, printJson } from '../cli-util.js';

interface MigrateOptions {
  config: string;
  databaseUrl?: string;
  grantWriter: string[];
  grantReader: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** A role name as PostgreSQL writes an identifier, quoted. */
function quoteIdent(name: string): string {
  if (name === '' || name.includes('\0')) throw new CliError(`not a role name: ${JSON.stringify(name)}`, 2);
  return `"${name.replace(/"/g, '""')}"`;
}

export function registerFleetCommands(program: Command): void {
  const fleet = program.command('fleet').description('the fleet database several replicas share');
  fleet
    .command('migrate')
    .description(
      `create or upgrade the fleet database's schema (to version ${knownSchemaVersion}) and its roles`,
    )
    .requiredOption('--config <file>', 'configuration file: its fleet section names the database')
    .option(
      '--database-url <url>',
      'connect as this (owner) role instead of fleet.postgres: migrations create tables and roles, which the gateway role may not',
    )
    .option(
      '--grant-writer <role>',
      `grant ${writerRole} (what gateways need) to this login role`,
      collect,
      [],
    )
    .option(
      '--grant-reader <role>',
      `grant ${readerRole} (read-only, for auditors) to this login role`,
      collect,
      [],
    )
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: MigrateOptions) => {
      const location = await loadFleetLocation(opts.config);
      if (location.fleet === undefined) throw new CliError(`${location.file} has no fleet section`, 2);
      const target = opts.databaseUrl === undefined ? location.fleet.postgres : { url: opts.databaseUrl };
      const db = await FleetDatabase.open(target, { applicationName: 'agentgate fleet migrate' });
      try {
        const outcome = await db.migrate();
        for (const role of opts.grantWriter) await db.query(`GRANT ${writerRole} TO ${quoteIdent(role)}`);
        for (const role of opts.grantReader) await db.query(`GRANT ${readerRole} TO ${quoteIdent(role)}`);
        const summary = {
          database: db.description,
          from: outcome.from,
          to: outcome.to,
          applied: outcome.applied.map((m) => ({ version: m.version, name: m.name })),
          grantedWriter: opts.grantWriter,
          grantedReader: opts.grantReader,
        };
        if (opts.json) return printJson(summary);
        const lines = [
          outcome.applied.length === 0
            ? `fleet database ${db.description}: schema is up to date (version ${outcome.to})`
            : `fleet database ${db.description}: schema version ${outcome.from} -> ${outcome.to}`,
          ...outcome.applied.map((m) => `  applied ${m.version}: ${m.name}`),
          ...opts.grantWriter.map((r) => `  granted ${writerRole} to ${r}`),
          ...opts.grantReader.map((r) => `  granted ${readerRole} to ${r}`),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      } finally {
        await db.close();
      }
    });
}
