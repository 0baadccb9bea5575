/**
 * Whether a session about to be pruned is safe elsewhere: in a backup of the store (`agentgate backup`) or a JSONL
 * export (`agentgate export ID --format jsonl`). Nothing is taken on trust: the backup must hold the session ended
 * at the same seq with the same final hash, and its copy of the session must verify (chain, io bytes,
 * checkpoints); an export must hold every event from seq 0 to the same final hash, each line re-hashed.
 */
import { createReadStream } from 'node:fs';
import { open as openFile, readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { open, type RootDatabase } from 'lmdb';
import { AgentgateError } from '@agentgate/core';
import { decodeEvent, eventKey, jsonlLineHashMatches, sessionKeyRange } from './event-codec.js';
import { missingPagesBytes } from './data-file-length.js';
import { openDatabases, type StoreDatabases } from './store-databases.js';
import { parseJson, type EndRecord } from './stored-records.js';
import { verifyStore } from './verify.js';

/** A session as the live store ended it. */
export interface SessionEnd {
  readonly session: string;
  readonly lastSeq: number;
  readonly hash: string;
}

export interface Coverage {
  /** Where the session is found intact (a backup directory or an export file), or undefined. */
  find(end: SessionEnd): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * Open the evidence at `paths`: each a backup directory (holding `data.mdb`), a JSONL export file, or a directory
 * holding backups (one level down) and/or `*.jsonl` exports. `storePath` is the live store, which cannot be its own
 * evidence.
 */
export async function openCoverage(
  paths: readonly string[],
  storePath: string,
  verifySignature: (jws: string) => Promise<Buffer>,
): Promise<Coverage> {
  const backups: Backup[] = [];
  const exports = new ExportIndex();
  const live = await realpath(storePath).catch(() => resolve(storePath));
  try {
    for (const path of paths) {
      const found = await collect(path, live, backups, exports);
      if (found === 0)
        throw new AgentgateError('NOT_FOUND', `${path} holds no backup (data.mdb) and no export (*.jsonl)`);
    }
  } catch (err) {
    await Promise.all(backups.map((b) => b.close()));
    throw err;
  }
  return {
    async find(end) {
      for (const backup of backups) if (await backup.holds(end, verifySignature)) return backup.path;
      return exports.find(end);
    },
    async close() {
      await Promise.all(backups.map((b) => b.close()));
    },
  };
}

async function collect(path: string, live: string, backups: Backup[], exports: ExportIndex): Promise<number> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new AgentgateError('NOT_FOUND', `${path}: ${(err as Error).message}`);
  }
  if (info.isFile()) {
    if (!path.endsWith('.jsonl')) throw new AgentgateError('BAD_REQUEST', `${path} is not a *.jsonl export`);
    await exports.add(path);
    return 1;
  }
  if (await isBackup(path, live)) {
    const backup = await Backup.open(path);
    if (backup === undefined)
      throw new AgentgateError(
        'BAD_REQUEST',
        `backup ${path} is incomplete (its data.mdb is shorter than its pages): still being written?`,
      );
    backups.push(backup);
    return 1;
  }
  let found = 0;
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const child = join(path, entry.name);
    if (entry.isDirectory() && (await isBackup(child, live))) {
      // A backup still being written (a cron job's, beside the finished ones) is no evidence yet: passed over.
      const backup = await Backup.open(child);
      if (backup === undefined) continue;
      backups.push(backup);
      found++;
    } else if (entry.isFile() && entry.name.endsWith('.jsonl')) {
      await exports.add(child);
      found++;
    }
  }
  return found;
}

async function isBackup(dir: string, live: string): Promise<boolean> {
  try {
    if (!(await stat(join(dir, 'data.mdb'))).isFile()) return false;
  } catch {
    return false;
  }
  if ((await realpath(dir)) === live)
    throw new AgentgateError('BAD_REQUEST', `${dir} is the store itself, not a backup of it`);
  return true;
}

class Backup {
  private constructor(
    readonly path: string,
    private readonly env: RootDatabase<string, string>,
    private readonly dbs: StoreDatabases,
  ) {}

  /** Undefined for a backup still being written or cut short: this runs inside `serve` for `store.retention`. */
  static async open(path: string): Promise<Backup | undefined> {
    let env: RootDatabase<string, string>;
    try {
      env = open<string, string>({ path, encoding: 'string', readOnly: true, maxDbs: 8, compression: false });
    } catch (err) {
      throw new AgentgateError('BAD_REQUEST', `cannot open backup ${path}: ${(err as Error).message}`);
    }
    if ((await missingPagesBytes(env, join(path, 'data.mdb'))) > 0) {
      await env.close();
      return undefined;
    }
    return new Backup(path, env, openDatabases(env));
  }

  async holds(end: SessionEnd, verifySignature: (jws: string) => Promise<Buffer>): Promise<boolean> {
    const { session, lastSeq, hash } = end;
    const endValue = this.dbs.ends.get(session);
    const ended = endValue === undefined ? undefined : parseJson<EndRecord>(endValue);
    if (!ended || ended.lastSeq !== lastSeq || this.dbs.sessions.get(session) === undefined) return false;
    if (lastSeq >= 0) {
      const last = this.dbs.events.get(eventKey(session, lastSeq));
      if (last === undefined || parseJson<{ hash?: unknown }>(last)?.hash !== hash) return false;
    }
    const range = sessionKeyRange(session);
    const report = await verifyStore({
      events: this.dbs.events.getRange(range),
      sessionIds: [session],
      ended: () => ended,
      checkpoints: this.dbs.checkpoints.getRange(range),
      ioData: (key) => this.dbs.ioData?.getBinary(key),
      ioDataKeys: this.dbs.ioData?.getKeys(range) ?? [],
      verifySignature,
    });
    return report.ok;
  }

  close(): Promise<void> {
    return this.env.close();
  }
}

/** Export files by the session their first line names; a file is checked in full only when it is asked about. */
class ExportIndex {
  private readonly bySession = new Map<string, string[]>();
  private readonly checked = new Map<string, SessionEnd | undefined>();

  async add(file: string): Promise<void> {
    const first = await firstLine(file);
    const session = first === undefined ? undefined : parseJson<{ session?: unknown }>(first)?.session;
    if (typeof session !== 'string') return;
    const files = this.bySession.get(session) ?? [];
    files.push(file);
    this.bySession.set(session, files);
  }

  async find(end: SessionEnd): Promise<string | undefined> {
    for (const file of this.bySession.get(end.session) ?? []) {
      if (!this.checked.has(file)) this.checked.set(file, await checkExport(file));
      const found = this.checked.get(file);
      if (found && found.session === end.session && found.lastSeq === end.lastSeq && found.hash === end.hash)
        return file;
    }
    return undefined;
  }
}

async function firstLine(file: string): Promise<string | undefined> {
  const handle = await openFile(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    const newline = text.indexOf('\n');
    return newline < 0 ? undefined : text.slice(0, newline);
  } finally {
    await handle.close();
  }
}

/** A whole session from seq 0, every line hashing to its hash and chaining to the one before; else undefined. */
async function checkExport(file: string): Promise<SessionEnd | undefined> {
  let session: string | undefined;
  let expectedSeq = 0;
  let prev = '';
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line === '') continue;
      if (!jsonlLineHashMatches(line)) return undefined;
      const event = decodeEvent(line);
      session ??= event.session;
      if (event.session !== session || event.seq !== expectedSeq || event.prev !== prev) return undefined;
      prev = event.hash;
      expectedSeq++;
    }
  } catch {
    return undefined;
  } finally {
    lines.close();
  }
  return session === undefined ? undefined : { session, lastSeq: expectedSeq - 1, hash: prev };
}
