/**
 * A throwaway PostgreSQL cluster for the demo: initdb into a temp dir and run it as the `postgres` user
 * (the server refuses to run as root), listening on 127.0.0.1 only, with its unix socket in the temp dir.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ThrowawayPostgres {
  readonly host: string;
  readonly port: number;
  readonly socketDir: string;
  /** Run SQL as the superuser over the unix socket. */
  sql(text: string, database?: string): Promise<string>;
  stop(): Promise<void>;
}

export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(base, v, 'bin', 'initdb'))) return join(base, v, 'bin');
  }
  throw new Error(
    'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)',
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  return { uid, gid };
}

export async function startThrowawayPostgres(opts: { port?: number } = {}): Promise<ThrowawayPostgres> {
  const bin = postgresBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-pg-'));
  // Run the server binaries as `postgres` through spawn's uid/gid rather than runuser: a wrapper process would
  // swallow the shutdown signal and, killed itself, leave the server running with its directory removed.
  const ids = process.getuid?.() === 0 ? await postgresIds() : undefined;
  const asPostgres = ids ? { uid: ids.uid, gid: ids.gid, cwd: dir, env: { ...process.env, HOME: dir } } : {};
  if (ids) await chown(dir, ids.uid, ids.gid);
  await chmod(dir, 0o700);
  const data = join(dir, 'data');
  await run(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
    asPostgres,
  );
  // Local socket: trust (the demo's superuser setup). TCP on loopback: passwords (SCRAM), like a real server.
  await writeFile(
    join(data, 'pg_hba.conf'),
    'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n',
  );
  const port = opts.port ?? (await freePort());
  const pgArgs = [
    '-D',
    data,
    '-k',
    dir,
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
  ];
  const child: ChildProcess = spawn(join(bin, 'postgres'), pgArgs, {
    ...asPostgres,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await run(join(bin, 'pg_isready'), ['-h', dir, '-p', String(port), '-U', 'postgres']);
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`PostgreSQL did not start: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const sql = async (text: string, database = 'postgres'): Promise<string> => {
    const { stdout } = await run('psql', [
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      dir,
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      database,
      '-At',
      '-c',
      text,
    ]);
    return stdout;
  };
  return {
    host: '127.0.0.1',
    port,
    socketDir: dir,
    sql,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT'); // fast shutdown
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      child.stderr?.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
