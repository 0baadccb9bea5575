/**
 * The write path: opening sessions, appending events onto their hash chains and ending them.
 *
 * Appends are synchronous: the event is hashed onto the session's chain in memory and queued for the next group
 * commit (group-commit.ts). A failed commit is followed by nothing (commit-pipeline.ts), so what is on disk is
 * always a clean prefix of every chain. With overlappingSync (lmdb-js's default off Windows) a crash loses at most
 * the commits not yet flushed and never corrupts flushed ones.
 */
import {
  AgentgateError,
  noRedaction,
  recordsDenial,
  type Logger,
  type Redactor,
  type RecordingFailure,
  type AdminSessionInfo,
  type SessionInfo,
  type SessionStartDetail,
  type SessionRecorder,
  type Signer,
  type TranscriptEvent,
  type TranscriptEventType,
} from '@agentgate/core';
import { dbIndex, type BatchWriter, type WriteBatch } from './batch-writer.js';
import { Checkpointer, type CheckpointSink } from './checkpointer.js';
import { CommitPipeline, type CommitHooks } from './commit-pipeline.js';
import {
  encodeStoredEvent,
  eventKey,
  eventObject,
  sessionOfEventKey,
  type StoredEventParts,
} from './event-codec.js';
import { IoBacklog } from './io-backlog.js';
import { IoSlabPool } from './io-slab-pool.js';
import {
  StoreSessionRecorder,
  newLiveSession,
  redactBody,
  setHead,
  type LiveSession,
  type RecorderHost,
} from './session-recorder.js';
import { ReservedPuts, storeFullError } from './reserved-puts.js';
import type { SpaceReserve } from './space-reserve.js';
import type { StoreDatabases } from './store-databases.js';
import { startRecords, type EndRecord } from './stored-records.js';

export interface TranscriptStoreHooks extends CommitHooks {
  /** Called for every event queued (metrics: agentgate_transcript_events_total). */
  event?(type: string): void;
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

export interface StoreWriterOptions {
  failMode: 'closed' | 'open';
  readOnly: boolean;
  signer: Signer;
  log: Logger;
  hooks: TranscriptStoreHooks;
  /** After a failed commit, try a write this often (ms) and resume recording when it succeeds; 0: never. */
  recoveryProbeMs: number;
  /** least time between two commits nothing waits for (ms, group-commit.ts) */
  commitWindowMs?: number;
  /** Applied to what sessions record: every event body and every stream byte. None when absent. */
  redactor?: Redactor;
  /**
   * Commits group-commit batches (a BatchWriter over the store's databases); a batch it holds for a re-commit
   * goes to `releaseIo` when it lets it go.
   */
  committer: Pick<BatchWriter, 'commit' | 'holds'>;
  /** The session's last committed event: where its chain continues after a failed commit. */
  lastCommittedEvent(sessionId: string): TranscriptEvent | undefined;
  /** failMode closed: commands are admitted only while their commit fits in this reserved space */
  reserve?: SpaceReserve;
  /** the store's directory (tells a full disk from an I/O error after a failed commit) */
  storeDir?: string;
  /** where stream bytes waiting for commits are counted and bounded (tests pass small bounds) */
  ioBacklog?: IoBacklog;
}

export class StoreWriter implements RecorderHost, CheckpointSink {
  readonly failMode: 'closed' | 'open';
  readonly ioSlabs = new IoSlabPool();
  /** Stream bytes waiting for their commit (io-backlog.ts). */
  readonly ioBacklog: IoBacklog;
  readonly redactor: Redactor;
  readonly checkpoints: Checkpointer;
  private readonly live = new Map<string, LiveSession>();
  private readonly commits: CommitPipeline;
  private readonly log: Logger;
  private readonly hooks: TranscriptStoreHooks;
  private readonly readOnly: boolean;
  private readonly reserve: SpaceReserve | undefined;
  private readonly reserved: ReservedPuts | undefined;
  private closed = false;
  private dropped = 0;
  /** what hooks.writableChanged last reported */
  private reportedWritable: boolean;

  constructor(
    private readonly dbs: StoreDatabases,
    private readonly opts: StoreWriterOptions,
  ) {
    this.failMode = opts.failMode;
    this.redactor = opts.redactor ?? noRedaction;
    this.log = opts.log;
    this.hooks = opts.hooks;
    this.readOnly = opts.readOnly;
    this.reserve = opts.reserve;
    this.ioBacklog = opts.ioBacklog ?? new IoBacklog();
    this.checkpoints = new Checkpointer(opts.signer, this, opts.log);
    this.commits = new CommitPipeline({
      committer: opts.committer,
      log: opts.log,
      hooks: { writeError: () => opts.hooks.writeError?.(), writableChanged: () => this.reportWritable() },
      failMode: opts.failMode,
      recoveryProbeMs: opts.recoveryProbeMs,
      ...(opts.commitWindowMs !== undefined ? { commitWindowMs: opts.commitWindowMs } : {}),
      // A batch kept for a re-commit gives its slabs back when the committer lets it go (releaseIo).
      onSettled: (batch) => this.settled(batch, opts.committer.holds(batch)),
      onResumed: (since, reason) => this.resumeSessions(since, reason),
      ...(opts.reserve ? { reserve: opts.reserve } : {}),
      ...(opts.storeDir !== undefined ? { storeDir: opts.storeDir } : {}),
    });
    this.reserved = opts.reserve ? new ReservedPuts(opts.reserve, this.commits) : undefined;
    this.reportedWritable = this.writable;
  }

  /** The batch's io slabs may be reused: its commit settled and nothing will write it again. */
  releaseIo({ dbs, values }: WriteBatch): void {
    for (let i = 0; i < dbs.length; i++) {
      // Only io bytes can be slabs (a prune's deletions in iodata are null).
      const value = values[i];
      if (dbs[i] === dbIndex.iodata && value) this.ioSlabs.release(value as Buffer);
    }
  }

  /**
   * The batch's transaction settled (committed or dropped): its io bytes no longer wait for a commit, and its slabs
   * may be reused unless the committer keeps the batch for a re-commit.
   */
  private settled(batch: WriteBatch, kept: boolean): void {
    const { dbs, keys, values } = batch;
    let io = false;
    for (let i = 0; i < dbs.length; i++) {
      const value = values[i];
      if (dbs[i] !== dbIndex.iodata || !value) continue;
      io = true;
      this.ioBacklog.settled(sessionOfEventKey(keys[i]!), value.length);
    }
    if (!io) return;
    if (!kept) this.releaseIo(batch);
    // Paused streams resume on the next turn: lmdb-js hands the commit that started as this one settled
    // (group-commit.ts) to its writer thread from a setImmediate queued before this one, and a woken relay would
    // relay everything its source buffered meanwhile ahead of it.
    if (this.ioBacklog.paused) setImmediate(this.wakeBacklog);
  }

  private readonly wakeBacklog = (): void => this.ioBacklog.wake();

  /** False while new commands and sessions are refused: failed, full, read-only or closed. */
  get writable(): boolean {
    return this.recording && !this.reserve?.full;
  }

  /** Whether events can be queued at all (a full store still records what follows commands it admitted). */
  get recording(): boolean {
    return !this.readOnly && !this.closed && !this.commits.failed;
  }

  /** Tell hooks.writableChanged when `writable` changed (a failed commit, the reserve filling up, either ending). */
  reportWritable(): void {
    const writable = this.writable;
    if (writable === this.reportedWritable) return;
    this.reportedWritable = writable;
    this.opts.hooks.writableChanged?.(writable);
  }

  get health(): StoreHealth {
    const health: StoreHealth = {
      writable: this.writable,
      dropped: this.dropped + this.commits.dropped,
      writeErrors: this.commits.writeErrors,
      queued: this.commits.queued,
    };
    if (this.commits.lastError !== undefined) health.lastError = this.commits.lastError;
    else if (this.reserve?.full) health.lastError = 'the transcript store is full';
    return health;
  }

  /** Sessions this process is recording. */
  liveSessions(): Iterable<LiveSession> {
    return this.live.values();
  }

  liveSession(id: string): LiveSession | undefined {
    return this.live.get(id);
  }

  openSession(info: SessionInfo | AdminSessionInfo, detail?: SessionStartDetail): SessionRecorder {
    const session = newLiveSession(info.id);
    const recorder = new StoreSessionRecorder(this, session);
    session.recorder = recorder;
    if (!this.recording) {
      this.refuseOrDrop();
      // failMode open: the session runs unrecorded.
      session.ended = true;
      return recorder;
    }
    if (this.reserve?.full) throw storeFullError();
    if (this.live.has(info.id) || this.dbs.sessions.get(info.id) !== undefined) {
      throw new AgentgateError('CONFLICT', `transcript session ${info.id} already exists`);
    }
    // The protocol's start facts are client-chosen text (a PostgreSQL application_name, an SSH username): redacted
    // like every other recorded string.
    const { start, body } = startRecords(
      info,
      detail === undefined ? undefined : (redactBody(this.redactor, { ...detail }) as SessionStartDetail),
    );
    // session.start is admitted like a command, with room for the index; both share one transaction.
    this.appendToSession(session, 'session.start', body, '', undefined, 1);
    this.queue(dbIndex.sessions, info.id, JSON.stringify(start));
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
    /** small records (summaries, checkpoints) admitted with the event, then queued with queue() */
    records = 0,
  ): TranscriptEvent {
    const seq = session.nextSeq;
    const prev = session.head;
    const ts = Date.now();
    const { fields, hash } = this.queueEvent(session, ts, type, body, rawMembers, ioData, records);
    return eventObject(session.id, seq, ts, type, prev, hash, fields);
  }

  /** appendToSession for a caller that takes only the seq: no event object is built. */
  appendSeq(
    session: LiveSession,
    type: TranscriptEventType,
    body: Record<string, unknown> | undefined,
  ): number {
    const seq = session.nextSeq;
    this.queueEvent(session, Date.now(), type, body, '', undefined, 0);
    return seq;
  }

  /** Encode the session's next event, chain it and queue it (or, when nothing is recorded, only encode it). */
  private queueEvent(
    session: LiveSession,
    ts: number,
    type: TranscriptEventType,
    body: Record<string, unknown> | undefined,
    rawMembers: string,
    ioData: Buffer | undefined,
    records: number,
  ): StoredEventParts {
    if (!session.ended && !this.recording) this.refuseOrDrop(); // throws when failMode is closed
    const parts = encodeStoredEvent(
      session.quotedId,
      session.nextSeq,
      ts,
      type,
      session.quotedHead,
      body,
      rawMembers,
    );
    if (session.ended || !this.recording) {
      if (session.ended) this.dropped++;
      // Not stored and not chained: the caller gets the event it would have been.
      return parts;
    }
    const key = eventKey(session.id, session.nextSeq);
    const charge = this.reserved?.admitEvent(session, type, key.length, parts.bytes, ioData, records) ?? 0;
    // Same turn, same queue: the blob and its event always share one transaction (group-commit.ts).
    if (ioData !== undefined) this.commits.put(dbIndex.iodata, key, ioData);
    this.commits.put(dbIndex.events, key, parts.bytes, charge);
    session.nextSeq++;
    session.head = parts.hash;
    session.quotedHead = '"' + parts.hash + '"'; // SHA-256 hex: nothing to escape
    if (type === 'command') session.commands++;
    if (body !== undefined && recordsDenial(type, body)) session.denied++;
    this.hooks.event?.(type);
    return parts;
  }

  appendIo(session: LiveSession, members: string, data: Buffer): void {
    const seq = session.nextSeq;
    try {
      this.queueEvent(session, Date.now(), 'io', undefined, members, data, 0);
    } finally {
      // The seq moves only when the event was queued; otherwise nothing holds the bytes and a slab is free again.
      if (session.nextSeq === seq) this.ioSlabs.release(data);
      else this.ioBacklog.queued(session.id, data.length);
    }
  }

  endSession(session: LiveSession, body: Record<string, unknown> | undefined): void {
    if (session.ended) return;
    try {
      // The end summary and the final checkpoint are admitted with the event: an end is recorded whole or not at all.
      const event = this.appendToSession(session, 'session.end', body, '', undefined, 2);
      const end: EndRecord = {
        endedAt: event.ts,
        commands: session.commands,
        denied: session.denied,
        lastSeq: event.seq,
      };
      if (typeof body?.['reason'] === 'string') end.reason = body['reason'];
      // The summary waits for the final checkpoint's signature and shares its transaction (checkpointer.ts).
      this.checkpoints.checkpoint(session, true, {
        db: dbIndex.ends,
        key: session.id,
        value: JSON.stringify(end),
      });
    } catch (err) {
      // end() runs in cleanup paths: never throw from it; the failure is already in health.
      this.log.warn('transcript: session end not recorded', {
        session: session.id,
        err: (err as Error).message,
      });
    } finally {
      session.ended = true;
      this.live.delete(session.id);
      this.ioBacklog.release(session.id);
    }
  }

  /** See SessionRecorder.ioBackpressure. */
  ioBackpressure(session: LiveSession): Promise<void> | undefined {
    return session.ended ? undefined : this.ioBacklog.wait(session.id);
  }

  ioDropped(session: LiveSession, err: unknown): void {
    this.dropped++;
    this.log.debug('transcript: io dropped', { session: session.id, err: (err as Error).message });
  }

  /** failMode closed: throw RECORDING_FAILED; open: count the drop. */
  refuseOrDrop(): void {
    if (this.failMode === 'closed') {
      const why = this.closed
        ? 'closed'
        : this.readOnly
          ? 'read-only'
          : `not writable: ${this.commits.lastError ?? 'unknown error'}`;
      const recordingFailure: RecordingFailure = this.commits.failed ? this.commits.failure : 'io-error';
      throw new AgentgateError(
        'RECORDING_FAILED',
        `agentgate: transcript store ${why}; refusing to run unrecorded commands`,
        { detail: { recordingFailure } },
      );
    }
    this.dropped++;
  }

  /**
   * Queue a summary or checkpoint record for the next group commit. `admitted`: its room was charged with its
   * session's end, so it is queued even when the store is full. Returns false when it was not queued.
   */
  put(db: number, key: string, value: string, admitted = false): boolean {
    const charge = this.reserved ? this.reserved.admitRecord(admitted) : 0;
    if (charge === undefined) return false;
    this.commits.put(db, key, value, charge);
    return true;
  }

  /**
   * undefined when everything the session appended since its last command is sure to commit (failMode open, or
   * the space reserve vouches for it); otherwise settles when it has committed, and rejects with RECORDING_FAILED
   * when it did not. The gate waits for it before a command runs.
   */
  committed(session: LiveSession): Promise<void> | undefined {
    return this.reserved?.committed(session);
  }

  /** Queue a record whose room was charged with its event (appendToSession's `records`). */
  queue(db: number, key: string, value: string): void {
    this.commits.put(db, key, value);
  }

  /**
   * Queue records and the deletion of keys as one unit, in one transaction (a part of a prune, prune.ts); the space
   * reserve is charged for all of it at once. Returns false, queuing nothing, when the store is full.
   */
  queueUnit(
    puts: readonly { db: number; key: string; value: string }[],
    removals: readonly { db: number; key: string }[],
  ): boolean {
    let charge = 0;
    if (this.reserve && this.reserved) {
      let bytes = this.reserve.recordBytes(removals.length);
      for (const { key, value } of puts) bytes += this.reserve.cost(key.length, value);
      // Each session removed is named in the commit's feed record (commit-feed.ts).
      for (const { db, key } of removals)
        if (db === dbIndex.sessions) bytes += this.reserve.feedBytes(key.length);
      const admitted = this.reserved.admitWrites(bytes);
      if (admitted === undefined) return false;
      charge = admitted;
    }
    // Synchronously, into the batch now open: nothing can seal it in between.
    for (const { db, key, value } of puts) {
      this.commits.put(db, key, value, charge);
      charge = 0;
    }
    for (const { db, key } of removals) this.commits.put(db, key, null, charge);
    return true;
  }

  /** Resolves once everything queued so far is committed; rejects when a commit failed meanwhile. */
  async drained(): Promise<void> {
    await this.commits.drain();
    if (this.commits.failed)
      throw new AgentgateError(
        'RECORDING_FAILED',
        `transcript store not writable: ${this.commits.lastError ?? 'unknown error'}`,
      );
  }

  /** Flush pending io, wait for pending checkpoint signatures and for every queued write to be on disk. */
  async flush(): Promise<void> {
    for (const session of this.live.values()) session.recorder?.flushIo();
    await this.checkpoints.settled();
    if (this.readOnly || this.closed) return;
    await this.commits.drain();
    // After a failed commit lmdb-js may never resolve `flushed`; nothing more was written anyway.
    if (!this.commits.failed) await this.dbs.env.flushed;
    if (this.commits.failed && this.failMode === 'closed') {
      throw new AgentgateError(
        'RECORDING_FAILED',
        `agentgate: transcript store not writable: ${this.commits.lastError ?? 'unknown error'}`,
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.checkpoints.stopPeriodic();
    this.commits.stop();
    try {
      await this.flush();
    } catch {
      // closing anyway; health already says why
    }
    this.closed = true;
    this.ioBacklog.releaseAll();
    await this.reserve?.close();
    const closing = this.dbs.env.close();
    if (!this.commits.failed) return closing;
    // After a failed commit lmdb-js's close waits for writes that never settle; the OS releases the environment.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closing, new Promise<void>((resolve) => (timer = setTimeout(resolve, 200)))]);
    clearTimeout(timer);
  }

  /**
   * Each live session continues from its last *committed* event (what failed was dropped, never half-written), so
   * its chain stays unbroken, and a `notice` records the gap.
   */
  private resumeSessions(since: number, reason: string): void {
    for (const session of [...this.live.values()]) {
      const last = this.opts.lastCommittedEvent(session.id);
      if (!last) {
        // Not even session.start reached the disk: this session cannot be recorded any more.
        session.ended = true;
        this.live.delete(session.id);
        continue;
      }
      session.nextSeq = last.seq + 1;
      setHead(session, last.hash);
      session.checkpointedSeq = Math.min(session.checkpointedSeq, last.seq);
      this.appendToSession(session, 'notice', { event: 'recording-gap', since, reason });
    }
  }
}
