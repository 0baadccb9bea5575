/**
 * `agentgate verify --fleet --config FILE`: every replica's shipped chains and checkpoints in the fleet database,
 * signatures checked with the replicas' keys recorded there (or `--jwks`), and — when the configuration names this
 * replica's store — the sessions whose newest events are still only in that store.
 */
import { existsSync } from 'node:fs';
import { loadFleetLocation } from '@agentgate/config';
import {
  addFleetKeys,
  FleetDatabase,
  FleetReader,
  fleetKeys,
  positionFileFor,
  readShipPosition,
  verifyFleet,
} from '@agentgate/fleet';
import {
  loadJwks,
  openStoreForReading,
  VerificationKeys,
  type KeyInfo,
  type VerifyProblem,
  type VerifyReport,
} from '@agentgate/transcript';
import { CliError } from './cli-util.js';

/** A session with events this replica committed that the fleet database does not hold yet. */
export interface OnlyLocal {
  readonly session: string;
  /** the newest seq in the local store, and in the fleet (-1: none shipped) */
  readonly localLastSeq: number;
  readonly fleetLastSeq: number;
}

export interface FleetVerifyReport extends VerifyReport {
  readonly database: string;
  readonly keys: KeyInfo[];
  /** replicas whose keys the fleet records */
  readonly nodes: string[];
  /** undefined when the configuration names no local store to compare with */
  readonly onlyLocal?: OnlyLocal[];
}

export async function verifyFleetCommand(opts: {
  config?: string;
  store?: string;
  jwks?: string;
}): Promise<FleetVerifyReport> {
  if (opts.config === undefined || opts.store !== undefined)
    throw new CliError('verify --fleet reads the fleet section of --config FILE (and no --store)', 2);
  const location = await loadFleetLocation(opts.config);
  if (location.fleet === undefined) throw new CliError(`${location.file} has no fleet section`, 2);
  const db = await FleetDatabase.open(location.fleet.postgres, { applicationName: 'agentgate verify' });
  try {
    const recorded = await fleetKeys(db);
    let keys: VerificationKeys;
    if (opts.jwks !== undefined) {
      keys = new VerificationKeys(() => `which is not in --jwks ${opts.jwks}`);
      if (keys.addJwks(await loadJwks(opts.jwks), 'jwks') === 0)
        throw new CliError(
          `--jwks ${opts.jwks} holds no EC P-256 signing key (the kind the gateway signs with)`,
        );
    } else {
      keys = new VerificationKeys(
        () =>
          "which no replica recorded in the fleet database: give --jwks FILE|URL with that replica's public keys",
      );
      addFleetKeys(keys, recorded);
    }
    const report = await verifyFleet(db, (jws) => keys.verifyCompact(jws));
    const local =
      location.store !== undefined && existsSync(location.store.path)
        ? await compareWithLocal(location.store.path, new FleetReader(db))
        : undefined;
    const onlyLocal = local?.onlyLocal;
    if (local !== undefined && local.lost.length > 0) {
      report.problems.push(...local.lost);
      report.ok = false;
    }
    return {
      ...report,
      database: db.description,
      keys: keys.list(),
      nodes: [...new Set(recorded.map((k) => k.node))],
      ...(onlyLocal === undefined ? {} : { onlyLocal }),
    };
  } finally {
    await db.close();
  }
}

/**
 * This replica's store against the fleet: sessions with events committed after the shipper's acknowledged position
 * that the fleet does not hold yet (a backlog), and sessions whose acknowledged events the fleet no longer holds
 * (`missing`: rows deleted, or the database restored from an older backup) — visible only from a replica's store.
 */
async function compareWithLocal(
  storePath: string,
  reader: FleetReader,
): Promise<{ onlyLocal: OnlyLocal[]; lost: VerifyProblem[] }> {
  const store = await openStoreForReading(storePath);
  try {
    const saved = await readShipPosition(positionFileFor(storePath));
    const acknowledgedUpTo = saved !== undefined && saved.storeId === store.feed.storeId ? saved.position : 0;
    const localLast = new Map<string, number>();
    const acknowledgedLast = new Map<string, number>();
    let position = 0;
    for (;;) {
      const batch = store.feed.read(position, { limit: 10_000 });
      if (batch.position === position) break;
      for (const event of batch.events) {
        const last = event.position <= acknowledgedUpTo ? acknowledgedLast : localLast;
        last.set(event.session, Math.max(event.seq, last.get(event.session) ?? -1));
      }
      position = batch.position;
    }
    const ids = [...new Set([...localLast.keys(), ...acknowledgedLast.keys()])];
    const onlyLocal: OnlyLocal[] = [];
    const lost: VerifyProblem[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const shipped = await reader.lastSeqs(ids.slice(i, i + 1000));
      for (const id of ids.slice(i, i + 1000)) {
        const fleet = shipped.get(id) ?? -1;
        const acknowledged = acknowledgedLast.get(id) ?? -1;
        const local = Math.max(acknowledged, localLast.get(id) ?? -1);
        if (fleet < acknowledged)
          lost.push({
            session: id,
            seq: acknowledged,
            kind: 'missing',
            detail: `the fleet database acknowledged this session up to seq ${acknowledged} from this replica but holds it up to ${fleet}`,
          });
        else if (fleet < local) onlyLocal.push({ session: id, localLastSeq: local, fleetLastSeq: fleet });
      }
    }
    return { onlyLocal, lost };
  } finally {
    await store.close();
  }
}

export function describeFleetReport(report: FleetVerifyReport): string {
  const lines = [
    `${report.ok ? 'OK' : 'BROKEN'}: fleet database ${report.database}: ${report.sessions} session(s), ${report.events} event(s), ${report.checkpoints} checkpoint(s) from ${report.nodes.length} replica(s)`,
  ];
  for (const p of report.problems)
    lines.push(`  ${p.session}${p.seq !== undefined ? `#${p.seq}` : ''}: ${p.kind}: ${p.detail}`);
  if (report.keys.length > 0)
    lines.push(
      `keys: ${report.keys.map((k) => `${k.kid} (${k.source}, ${k.verified} signature(s))`).join('; ')}`,
    );
  if (report.keys.some((k) => k.source === 'fleet' && k.verified > 0))
    lines.push(
      "note: signatures were checked against public keys the replicas recorded in the fleet database; --jwks with a replica's published keys shows they are its keys",
    );
  if (report.onlyLocal !== undefined) {
    if (report.onlyLocal.length === 0)
      lines.push('only local: none (everything this replica committed is shipped)');
    else {
      lines.push(`only local: ${report.onlyLocal.length} session(s) with events not shipped yet:`);
      for (const s of report.onlyLocal)
        lines.push(
          `  ${s.session}: events ${s.fleetLastSeq + 1}..${s.localLastSeq} are only in the local store`,
        );
    }
  }
  return lines.join('\n') + '\n';
}
