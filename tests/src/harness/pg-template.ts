/**
 * One initialized PostgreSQL data directory (initdb, then the test roles and database `app`) per machine and
 * setup, copied for every test cluster: initdb and the role setup take over a second of CPU each time, a copy a few
 * milliseconds. It is built under a name of its own and renamed into place, so test workers starting at the same
 * moment never see half a template; it stays in the temp dir, keyed by a hash of what it was built with.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What every test cluster starts with (docs in harness/postgres.ts). */
export interface TemplateSetup {
  readonly initdb: string;
  readonly pgCtl: string;
  readonly initdbArgs: readonly string[];
  /** SQL run as the superuser in database `postgres`, then in `app` */
  readonly sql: readonly [string, string];
  /** psql against a socket directory, as the superuser */
  psql(socketDir: string, database: string, input: string): Promise<unknown>;
  readonly uid: number;
  readonly gid: number;
}

let made: Promise<string> | undefined;

/** The template's data directory, built on first use (in this process or, before, in another). */
export function clusterTemplate(setup: TemplateSetup): Promise<string> {
  made ??= build(setup);
  return made;
}

/** A new data directory at `data`, a copy of the template (owner and modes kept: we run as root). */
export async function copyTemplate(setup: TemplateSetup, data: string): Promise<void> {
  await run('cp', ['-a', await clusterTemplate(setup), data]);
}

async function build(setup: TemplateSetup): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify([setup.initdb, setup.initdbArgs, setup.sql]))
    .digest('hex')
    .slice(0, 16);
  const template = path.join(tmpdir(), `agentgate-pg-template-${key}`);
  if (existsSync(template)) return template;
  const dir = mkdtempSync(path.join(tmpdir(), 'agentgate-pg-template-build-'));
  try {
    chownSync(dir, setup.uid, setup.gid);
    const data = path.join(dir, 'data');
    const asPostgres = (cmd: string, args: readonly string[]) =>
      run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: dir });
    await asPostgres(setup.initdb, ['-D', data, ...setup.initdbArgs]);
    // No TCP listener while it is set up: only a socket in its own directory.
    const options = `-c listen_addresses='' -c unix_socket_directories='${dir}' -c fsync=off`;
    await asPostgres(setup.pgCtl, ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']);
    try {
      await setup.psql(dir, 'postgres', setup.sql[0]);
      await setup.psql(dir, 'app', setup.sql[1]);
    } finally {
      await asPostgres(setup.pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop']);
    }
    try {
      renameSync(data, template);
    } catch (err) {
      // Another worker renamed its own first: the same content.
      if (!existsSync(template)) throw err;
    }
    return template;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
