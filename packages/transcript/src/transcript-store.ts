/**
 * The LMDB transcript store (SPEC §7, issue 2 item 5).
 *
 * One LMDB environment with five databases, all append-only:
 * - `events`:      `<session>/<seq>` → stored event (the hashed JSON bytes + hash), see event-codec.ts
 * - `sessions`:    session id → start summary, written with `session.start`
 * - `ends`:        session id → end summary (counts), written with `session.end`
 * - `checkpoints`: `<session>/<seq>` → signed {session, seq, hash}
 * - `meta`:        the recovery probe's scratch key
 * - `iodata`:      `<session>/<seq>` → the raw bytes of that `io` event (binary), whose SHA-256 the event names
 *
 * Appends are synchronous: the event is hashed onto the session's chain in memory and queued for the next group
 * commit (group-commit.ts). A failed commit is followed by nothing, so what is on disk is always a clean prefix of
 * every chain. With overlappingSync (lmdb-js's default off Windows) a crash loses at most the commits not yet
 * flushed and never corrupts flushed ones.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { existsSync } from 'node:fs';
import {
  AgentgateError,
  silentLogger,
  type Logger,
  type SessionInfo,
  type SessionRecorder,
  type Signer,
  type TranscriptEvent,
  type TranscriptEventType,
  type TranscriptWriter,
} from '@agentgate/core';
import {
  checkpointPayload,
  decodeEvent,
  encodeEvent,
  eventKey,
  attachIoData,
  hasExternalIoData,
  sessionKeyRange,
  type CheckpointRecord,
} from './event-codec.js';
import { BatchWriter, dbIndex, dbNames } from './batch-writer.js';
import { GroupCommitQueue } from './group-commit.js';
import { IoSlabPool } from './io-slab-pool.js';
import { StoreSessionRecorder, setHead, type LiveSession, type RecorderHost } from './session-recorder.js';
import { verifyStore, type VerifyReport } from './verify.js';

export interface TranscriptStoreHooks {
  /** Called for every event queued (metrics: agentgate_transcript_events_total). */
  event?(type: string): void;
  /** Called when a batch commit fails (agentgate_transcript_write_errors_total). */
  writeError?(): void;
  writableChanged?(writable: boolean): void;
}

export interface TranscriptStoreOptions {
  /** LMDB environment directory; created if missing (unless readOnly). */
  path: string;
  failMode: 'closed' | 'open';
  checkpointIntervalMs: number;
  signer: Signer;
  readOnly?: boolean;
  /** Initial LMDB map size. lmdb-js grows the map on demand, so this is not a size limit. */
  mapSizeBytes?: number;
  log?: Logger;
  hooks?: TranscriptStoreHooks;
  /** After a failed commit, try a write this often (ms) and resume recording when it succeeds. Default 1000. */
  recoveryProbeMs?: number;
}

export interface SessionSummary {
  id: string;
  listener: string;
  protocol: string;
  identity: string;
  groups: string[];
  client: Record<string, unknown>;
  /** ms since the epoch */
  startedAt: number;
  endedAt: number | null;
  commands: number;
  denied: number;
  /** `session.end` reason, when given */
  endReason?: string;
}

export interface SessionFilter {
  protocol?: string;
  identity?: string;
}

export interface StoreHealth {
  writable: boolean;
  lastError?: string;
  /** Events dropped while not writable (failMode open) or after a failed commit. */
  dropped: number;
  writeErrors: number;
  /** Writes waiting for the next group commit (a growing number means the disk cannot keep up). */
  queued: number;
}

export interface TranscriptStore extends TranscriptWriter {
  readonly health: StoreHealth;
  /** Flush pending io, wait for pending checkpoint signatures and for every queued write to be on disk. */
  flush(): Promise<void>;
  /** Flush and close. The gateway ends its sessions first; sessions still open stay unended (see recoverInterrupted). */
  close(): Promise<void>;
  listSessions(filter?: SessionFilter): SessionSummary[];
  getSession(id: string): SessionSummary | undefined;
  /** A session's events in seq order, read lazily from a snapshot (committed events only). */
  events(sessionId: string): Iterable<TranscriptEvent>;
  /** A session's signed checkpoints in seq order. */
  checkpoints(sessionId: string): Iterable<CheckpointRecord>;
  verify(): Promise<VerifyReport>;
  /** End sessions a crash left open; returns how many. The gateway calls it at start. */
  recoverInterrupted(): Promise<number>;
}

/** What `sessions` holds per session: the summary's fields known at `session.start`. */
type StartRecord = Pick<
  SessionSummary,
  'id' | 'listener' | 'protocol' | 'identity' | 'groups' | 'client' | 'startedAt'
>;

interface EndRecord {
  endedAt: number;
  commands: number;
  denied: number;
  lastSeq: number;
  reason?: string;
}

/** A `decision` event counts as denied when the command was refused (however the gate words it). */
export function isDeniedDecision(body: Record<string, unknown>): boolean {
  return body['allowed'] === false || body['action'] === 'deny' || body['decision'] === 'deny';
}

export async function openTranscriptStore(opts: TranscriptStoreOptions): Promise<TranscriptStore> {
  if (opts.readOnly && !existsSync(opts.path)) {
    throw new AgentgateError('NOT_FOUND', `transcript store ${opts.path} does not exist`);
  }
  let env: RootDatabase<string, string>;
  try {
    env = open<string, string>({
      path: opts.path,
      encoding: 'string',
      maxDbs: 8,
      readOnly: opts.readOnly ?? false,
      compression: false,
      // lmdb-js's event-turn batching leaves an internal promise unhandled when a commit fails, which would crash
      // the process exactly when the disk fills; we batch ourselves (group-commit.ts), so it is not needed.
      eventTurnBatching: false,
      ...(opts.mapSizeBytes !== undefined ? { mapSize: opts.mapSizeBytes } : {}),
    });
  } catch (err) {
    throw new AgentgateError(
      'RECORDING_FAILED',
      `cannot open transcript store ${opts.path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return new LmdbTranscriptStore(env, opts);
}

class LmdbTranscriptStore implements TranscriptStore, RecorderHost {
  readonly failMode: 'closed' | 'open';
  private readonly eventsDb: Database<string, string>;
  private readonly sessionsDb: Database<string, string>;
  private readonly endsDb: Database<string, string>;
  private readonly checkpointsDb: Database<string, string>;
  /** undefined only when a store written before io bytes moved out of the events is opened read-only */
  private readonly ioDataDb: Database<Buffer, string> | undefined;
  private readonly recoveryProbeMs: number;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private failedAt = 0;
  private readonly log: Logger;
  private readonly hooks: TranscriptStoreHooks;
  private readonly signer: Signer;
  private readonly readOnly: boolean;
  private readonly live = new Map<string, LiveSession>();
  private readonly pendingSignatures = new Set<Promise<void>>();
  private readonly checkpointTimer: NodeJS.Timeout | undefined;
  private readonly writes: GroupCommitQueue;
  readonly ioSlabs = new IoSlabPool();
  private failed = false;
  private closed = false;
  private lastError: string | undefined;
  private dropped = 0;
  private writeErrors = 0;

  constructor(
    private readonly env: RootDatabase<string, string>,
    opts: TranscriptStoreOptions,
  ) {
    this.failMode = opts.failMode;
    this.log = opts.log ?? silentLogger;
    this.hooks = opts.hooks ?? {};
    this.signer = opts.signer;
    this.readOnly = opts.readOnly ?? false;
    const dbOptions = { encoding: 'string' as const, compression: false };
    this.eventsDb = env.openDB<string, string>('events', dbOptions);
    this.sessionsDb = env.openDB<string, string>('sessions', dbOptions);
    this.endsDb = env.openDB<string, string>('ends', dbOptions);
    this.checkpointsDb = env.openDB<string, string>('checkpoints', dbOptions);
    // lmdb-js returns no db for a name a read-only environment lacks (a store from before `iodata`).
    const ioDataDb = env.openDB<Buffer, string>('iodata', { encoding: 'binary', compression: false }) as
      Database<Buffer, string> | undefined;
    this.ioDataDb = ioDataDb;
    const dbs = dbNames.map((name) =>
      name === 'iodata' && ioDataDb ? ioDataDb : env.openDB<string, string>(name, dbOptions),
    );
    this.writes = new GroupCommitQueue(
      new BatchWriter(env, dbs),
      (err) => this.onWriteError(err),
      (batch) => {
        for (const value of batch.values) if (typeof value !== 'string') this.ioSlabs.release(value);
      },
    );
    this.recoveryProbeMs = opts.recoveryProbeMs ?? 1000;
    if (!this.readOnly && opts.checkpointIntervalMs > 0) {
      this.checkpointTimer = setInterval(() => this.checkpointLiveSessions(), opts.checkpointIntervalMs);
      this.checkpointTimer.unref();
    }
  }

  get writable(): boolean {
    return !this.readOnly && !this.closed && !this.failed;
  }

  get health(): StoreHealth {
    const health: StoreHealth = {
      writable: this.writable,
      dropped: this.dropped + this.writes.dropped,
      writeErrors: this.writeErrors,
      queued: this.writes.queued,
    };
    if (this.lastError !== undefined) health.lastError = this.lastError;
    return health;
  }

  // ---- write side -------------------------------------------------------------------------------------------

  openSession(info: SessionInfo, extra?: Record<string, unknown>): SessionRecorder {
    const session: LiveSession = {
      id: info.id,
      quotedId: JSON.stringify(info.id),
      nextSeq: 0,
      head: '',
      quotedHead: '""',
      commands: 0,
      denied: 0,
      checkpointedSeq: -1,
      ended: false,
    };
    const recorder = new StoreSessionRecorder(this, session);
    session.recorder = recorder;
    if (!this.writable) {
      this.refuseOrDrop();
      // failMode open: the session runs unrecorded.
      session.ended = true;
      return recorder;
    }
    if (this.live.has(info.id) || this.sessionsDb.get(info.id) !== undefined) {
      throw new AgentgateError('CONFLICT', `transcript session ${info.id} already exists`);
    }
    const start: StartRecord = {
      id: info.id,
      listener: info.listener,
      protocol: info.protocol,
      identity: info.identity.name,
      groups: [...info.identity.groups],
      client: { ...info.client },
      startedAt: info.startedAt,
    };
    const body: Record<string, unknown> = {
      ...extra,
      listener: info.listener,
      protocol: info.protocol,
      identity: info.identity.name,
      groups: start.groups,
      identitySource: info.identity.source,
      client: start.client,
      startedAt: info.startedAt,
    };
    if (info.identity.issuer !== undefined) body['issuer'] = info.identity.issuer;
    // Index first: a crash between the two leaves a session without events, which recovery ends as empty.
    this.put(dbIndex.sessions, info.id, JSON.stringify(start));
    this.appendToSession(session, 'session.start', body);
    this.live.set(info.id, session);
    return recorder;
  }

  appendToSession(
    session: LiveSession,
    type: TranscriptEventType,
    body: Record<string, unknown> | undefined,
    rawMembers = '',
    /** an io event's bytes, stored raw under the event's key in the same transaction */
    ioData?: Buffer,
  ): TranscriptEvent {
    if (!session.ended && !this.writable) this.refuseOrDrop(); // throws when failMode is closed
    const { event, stored } = encodeEvent(
      session.id,
      session.nextSeq,
      Date.now(),
      type,
      session.head,
      body,
      rawMembers,
      session.quotedId,
      session.quotedHead,
    );
    if (session.ended || !this.writable) {
      if (session.ended) this.dropped++;
      // Not stored and not chained: the caller gets the event it would have been.
      return event;
    }
    const key = eventKey(session.id, session.nextSeq);
    // Same turn, same queue: the blob and its event always share one transaction (group-commit.ts).
    if (ioData !== undefined) this.writes.put(dbIndex.iodata, key, ioData);
    this.writes.put(dbIndex.events, key, stored);
    session.nextSeq++;
    session.head = event.hash;
    session.quotedHead = '"' + event.hash + '"'; // SHA-256 hex: nothing to escape
    if (type === 'command') session.commands++;
    else if (type === 'decision' && body && isDeniedDecision(body)) session.denied++;
    this.hooks.event?.(type);
    return event;
  }

  appendIo(session: LiveSession, members: string, data: Buffer): void {
    const seq = session.nextSeq;
    try {
      this.appendToSession(session, 'io', undefined, members, data);
    } finally {
      // The seq moves only when the event was queued; otherwise nothing holds the bytes and a slab is free again.
      if (session.nextSeq === seq) this.ioSlabs.release(data);
    }
  }

  endSession(session: LiveSession, body: Record<string, unknown> | undefined): void {
    if (session.ended) return;
    try {
      const event = this.appendToSession(session, 'session.end', body);
      const end: EndRecord = {
        endedAt: event.ts,
        commands: session.commands,
        denied: session.denied,
        lastSeq: event.seq,
      };
      if (typeof body?.['reason'] === 'string') end.reason = body['reason'];
      if (this.writable) this.put(dbIndex.ends, session.id, JSON.stringify(end));
      this.checkpoint(session);
    } catch (err) {
      // end() runs in cleanup paths: never throw from it; the failure is already in health.
      this.log.warn('transcript: session end not recorded', {
        session: session.id,
        err: (err as Error).message,
      });
    } finally {
      session.ended = true;
      this.live.delete(session.id);
    }
  }

  ioDropped(session: LiveSession, err: unknown): void {
    this.dropped++;
    this.log.debug('transcript: io dropped', { session: session.id, err: (err as Error).message });
  }

  private refuseOrDrop(): void {
    if (this.failMode === 'closed') {
      const why = this.closed
        ? 'closed'
        : this.readOnly
          ? 'read-only'
          : `not writable: ${this.lastError ?? 'unknown error'}`;
      throw new AgentgateError(
        'RECORDING_FAILED',
        `agentgate: transcript store ${why}; refusing to run unrecorded commands`,
      );
    }
    this.dropped++;
  }

  private put(db: number, key: string, value: string): void {
    this.writes.put(db, key, value);
  }

  private onWriteError(err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    this.writeErrors++;
    this.lastError = message;
    this.hooks.writeError?.();
    if (!this.failed) {
      // Stop at once, before the next batch starts: later events would chain onto ones that never reached the disk.
      this.failed = true;
      this.failedAt = Date.now();
      this.hooks.writableChanged?.(false);
      this.startRecoveryProbe();
    }
    const commitError = (err as { commitError?: Promise<unknown> }).commitError;
    if (commitError && typeof commitError.then === 'function') {
      // lmdb-js rejects a batch with a generic error and puts the cause in a separate promise that must be handled.
      commitError.then(
        () => this.log.error('transcript: write failed', { err: message, failMode: this.failMode }),
        (cause: unknown) => {
          this.lastError = `${message}: ${(cause as Error)?.message ?? String(cause)}`;
          this.log.error('transcript: write failed', { err: this.lastError, failMode: this.failMode });
        },
      );
    } else {
      this.log.error('transcript: write failed', { err: message, failMode: this.failMode });
    }
  }

  private startRecoveryProbe(): void {
    if (this.probeTimer || this.recoveryProbeMs <= 0) return;
    this.probeTimer = setInterval(() => void this.probeRecovery(), this.recoveryProbeMs);
    this.probeTimer.unref();
  }

  /**
   * Try one small write; when it commits, resume. Each live session continues from its last *committed* event
   * (what failed was dropped, never half-written), so its chain stays unbroken, and a `notice` records the gap.
   */
  private async probeRecovery(): Promise<void> {
    if (this.probing || !this.failed || this.closed || this.writes.busy) return;
    this.probing = true;
    try {
      await this.writes.probe(dbIndex.meta, 'probe', String(Date.now()));
    } catch {
      this.probing = false;
      return; // still failing
    }
    this.probing = false;
    if (!this.failed || this.closed) return;
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    const resumable: LiveSession[] = [];
    for (const session of [...this.live.values()]) {
      const last = this.lastCommittedEvent(session.id);
      if (!last) {
        // Not even session.start reached the disk: this session cannot be recorded any more.
        session.ended = true;
        this.live.delete(session.id);
        continue;
      }
      session.nextSeq = last.seq + 1;
      setHead(session, last.hash);
      session.checkpointedSeq = Math.min(session.checkpointedSeq, last.seq);
      resumable.push(session);
    }
    this.failed = false;
    this.writes.resume();
    this.log.info('transcript: writes succeed again; recording resumed', {
      failedForMs: Date.now() - this.failedAt,
    });
    this.hooks.writableChanged?.(true);
    for (const session of resumable) {
      this.appendToSession(session, 'notice', {
        kind: 'recording-gap',
        since: this.failedAt,
        reason: this.lastError ?? 'write failed',
      });
    }
  }

  private lastCommittedEvent(sessionId: string): TranscriptEvent | undefined {
    const { start, end } = sessionKeyRange(sessionId);
    for (const { value } of this.eventsDb.getRange({ start: end, end: start, reverse: true, limit: 1 }))
      return decodeEvent(value);
    return undefined;
  }

  private checkpointLiveSessions(): void {
    for (const session of this.live.values()) {
      try {
        session.recorder?.flushIo();
        this.checkpoint(session);
      } catch (err) {
        this.log.warn('transcript: periodic checkpoint failed', {
          session: session.id,
          err: (err as Error).message,
        });
      }
    }
  }

  /** Sign {session, seq, hash} of the session's last event, unless already covered. */
  private checkpoint(session: LiveSession): void {
    const seq = session.nextSeq - 1;
    if (seq < 0 || seq <= session.checkpointedSeq || !this.writable) return;
    session.checkpointedSeq = seq;
    const hash = session.head;
    const ts = Date.now();
    const signing = this.signer
      .signCompact(checkpointPayload(session.id, seq, hash))
      .then((jws) => {
        if (!this.writable) return;
        const record: CheckpointRecord = { session: session.id, seq, hash, ts, jws };
        this.put(dbIndex.checkpoints, eventKey(session.id, seq), JSON.stringify(record));
      })
      .catch((err: unknown) => {
        this.log.error('transcript: checkpoint failed', {
          session: session.id,
          seq,
          err: (err as Error).message,
        });
      })
      .finally(() => this.pendingSignatures.delete(signing));
    this.pendingSignatures.add(signing);
  }

  async flush(): Promise<void> {
    for (const session of this.live.values()) session.recorder?.flushIo();
    while (this.pendingSignatures.size > 0) await Promise.all([...this.pendingSignatures]);
    if (this.readOnly || this.closed) return;
    await this.writes.drain();
    // After a failed commit lmdb-js may never resolve `flushed`; nothing more was written anyway.
    if (!this.failed) await this.env.flushed;
    if (this.failed && this.failMode === 'closed') {
      throw new AgentgateError(
        'RECORDING_FAILED',
        `agentgate: transcript store not writable: ${this.lastError ?? 'unknown error'}`,
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    try {
      await this.flush();
    } catch {
      // closing anyway; health already says why
    }
    this.closed = true;
    const closing = this.env.close();
    if (!this.failed) return closing;
    // After a failed commit lmdb-js's close waits for writes that never settle; the OS releases the environment.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closing, new Promise<void>((resolve) => (timer = setTimeout(resolve, 200)))]);
    clearTimeout(timer);
  }

  // ---- read side --------------------------------------------------------------------------------------------

  listSessions(filter: SessionFilter = {}): SessionSummary[] {
    const out: SessionSummary[] = [];
    for (const { key, value } of this.sessionsDb.getRange()) {
      const start = parseJson<StartRecord>(value);
      if (!start) continue;
      if (filter.protocol !== undefined && start.protocol !== filter.protocol) continue;
      if (filter.identity !== undefined && start.identity !== filter.identity) continue;
      out.push(this.summarize(key, start));
    }
    return out;
  }

  getSession(id: string): SessionSummary | undefined {
    const value = this.sessionsDb.get(id);
    const start = value === undefined ? undefined : parseJson<StartRecord>(value);
    return start ? this.summarize(id, start) : undefined;
  }

  private summarize(id: string, start: StartRecord): SessionSummary {
    const summary: SessionSummary = {
      id,
      listener: start.listener,
      protocol: start.protocol,
      identity: start.identity,
      groups: start.groups,
      client: start.client,
      startedAt: start.startedAt,
      endedAt: null,
      commands: 0,
      denied: 0,
    };
    const endValue = this.endsDb.get(id);
    const end = endValue === undefined ? undefined : parseJson<EndRecord>(endValue);
    if (end) {
      summary.endedAt = end.endedAt;
      summary.commands = end.commands;
      summary.denied = end.denied;
      if (end.reason !== undefined) summary.endReason = end.reason;
      return summary;
    }
    const live = this.live.get(id);
    if (live) {
      summary.commands = live.commands;
      summary.denied = live.denied;
      return summary;
    }
    // Open in another process (the CLI reading a running gateway's store) or interrupted: count from the events.
    const counts = this.countEvents(id);
    summary.commands = counts.commands;
    summary.denied = counts.denied;
    return summary;
  }

  private countEvents(id: string): { commands: number; denied: number } {
    let commands = 0;
    let denied = 0;
    for (const event of this.eventsWithoutIoData(id)) {
      if (event.type === 'command') commands++;
      else if (event.type === 'decision' && isDeniedDecision(event)) denied++;
    }
    return { commands, denied };
  }

  /**
   * io events get their bytes back as `data` (base64), read from `iodata` as each event is reached, so readers
   * (replay, asciicast, tests) see the same shape as before the bytes moved out of the event JSON. A missing blob
   * leaves `data` out (verify reports it).
   */
  *events(sessionId: string): Iterable<TranscriptEvent> {
    for (const { key, value } of this.eventsDb.getRange(sessionKeyRange(sessionId))) {
      const event = decodeEvent(value);
      if (hasExternalIoData(event)) {
        // getBinary copies; getBinaryFast's shared buffer reports a length its typed array does not have.
        const data = this.ioDataDb?.getBinary(key);
        if (data !== undefined) attachIoData(event, data);
      }
      yield event;
    }
  }

  /** For counting and recovery: no io bytes read. */
  private *eventsWithoutIoData(sessionId: string): Iterable<TranscriptEvent> {
    for (const { value } of this.eventsDb.getRange(sessionKeyRange(sessionId))) yield decodeEvent(value);
  }

  *checkpoints(sessionId: string): Iterable<CheckpointRecord> {
    for (const { value } of this.checkpointsDb.getRange(sessionKeyRange(sessionId))) {
      const record = parseJson<CheckpointRecord>(value);
      if (record) yield record;
    }
  }

  verify(): Promise<VerifyReport> {
    return verifyStore({
      events: this.eventsDb.getRange(),
      sessionIds: this.sessionsDb.getKeys(),
      ended: (id) => {
        const value = this.endsDb.get(id);
        return value === undefined ? undefined : parseJson<EndRecord>(value);
      },
      checkpoints: this.checkpointsDb.getRange(),
      ioData: (key) => this.ioDataDb?.getBinary(key),
      ioDataKeys: this.ioDataDb?.getKeys() ?? [],
      verifySignature: (jws) => this.signer.verifyCompact(jws),
    });
  }

  async recoverInterrupted(): Promise<number> {
    if (!this.writable) {
      this.refuseOrDrop();
      return 0;
    }
    let recovered = 0;
    for (const id of [...this.sessionsDb.getKeys()]) {
      if (this.live.has(id)) continue;
      const endValue = this.endsDb.get(id);
      if (endValue !== undefined) {
        this.signMissingFinalCheckpoint(id, parseJson<EndRecord>(endValue));
        continue;
      }
      const session: LiveSession = {
        id,
        quotedId: JSON.stringify(id),
        nextSeq: 0,
        head: '',
        quotedHead: '""',
        commands: 0,
        denied: 0,
        checkpointedSeq: -1,
        ended: false,
      };
      const pendingApprovals = new Map<string, true>();
      let last: TranscriptEvent | undefined;
      for (const event of this.eventsWithoutIoData(id)) {
        last = event;
        if (event.type === 'command') session.commands++;
        else if (event.type === 'decision' && isDeniedDecision(event)) session.denied++;
        else if (event.type === 'approval.requested') pendingApprovals.set(approvalIdOf(event), true);
        else if (event.type === 'approval.decided') pendingApprovals.delete(approvalIdOf(event));
      }
      if (!last) {
        const end: EndRecord = {
          endedAt: Date.now(),
          commands: 0,
          denied: 0,
          lastSeq: -1,
          reason: 'gateway restarted',
        };
        this.put(dbIndex.ends, id, JSON.stringify(end));
        recovered++;
        continue;
      }
      session.nextSeq = last.seq + 1;
      setHead(session, last.hash);
      if (last.type === 'session.end') {
        // The crash hit between the end event and its summary: only write the summary and the checkpoint.
        const end: EndRecord = {
          endedAt: last.ts,
          commands: session.commands,
          denied: session.denied,
          lastSeq: last.seq,
        };
        if (typeof last['reason'] === 'string') end.reason = last['reason'];
        this.put(dbIndex.ends, id, JSON.stringify(end));
        session.ended = true;
        this.checkpoint(session);
      } else {
        for (const approvalId of pendingApprovals.keys()) {
          this.appendToSession(session, 'approval.decided', {
            approvalId,
            outcome: 'expired',
            reason: 'gateway restarted',
          });
        }
        this.endSession(session, { reason: 'gateway restarted' });
      }
      recovered++;
    }
    await this.flush();
    if (recovered > 0) this.log.info('transcript: recovered interrupted sessions', { count: recovered });
    return recovered;
  }

  /** A crash between `session.end` and its signature leaves the end unsigned: sign it now. */
  private signMissingFinalCheckpoint(id: string, end: EndRecord | undefined): void {
    if (!end || end.lastSeq < 0 || this.checkpointsDb.get(eventKey(id, end.lastSeq)) !== undefined) return;
    const value = this.eventsDb.get(eventKey(id, end.lastSeq));
    if (value === undefined) return; // truncated: verify reports it; signing would hide it
    const last = decodeEvent(value);
    const session: LiveSession = {
      id,
      quotedId: JSON.stringify(id),
      nextSeq: last.seq + 1,
      head: last.hash,
      quotedHead: JSON.stringify(last.hash),
      commands: end.commands,
      denied: end.denied,
      checkpointedSeq: -1,
      ended: true,
    };
    this.checkpoint(session);
  }
}

function approvalIdOf(event: TranscriptEvent): string {
  const id = event['approvalId'] ?? event['id'];
  return typeof id === 'string' ? id : String(id);
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
