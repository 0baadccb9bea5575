/**
 * The write side of the transcript store as protocols and the gate see it (SPEC §7). The LMDB implementation
 * lives in `@agentgate/transcript`; only the composition root knows it.
 */
import type { SessionInfo } from './session.js';

export type TranscriptEventType =
  | 'session.start'
  | 'command'
  | 'decision'
  | 'approval.requested'
  | 'approval.decided'
  | 'result'
  | 'io'
  | 'notice'
  | 'error'
  | 'checkpoint'
  | 'session.end';

/** A stored event. `prev` is the hash of the previous event of the session ('' for the first). */
export interface TranscriptEvent {
  readonly session: string;
  readonly seq: number;
  /** ms since the epoch */
  readonly ts: number;
  readonly type: TranscriptEventType;
  readonly prev: string;
  readonly hash: string;
  readonly [field: string]: unknown;
}

export type IoDirection = 'in' | 'out' | 'err';

export interface SessionRecorder {
  readonly sessionId: string;
  /**
   * Append one event to the session's chain. Synchronous: the event is chained and queued for the next batch
   * commit. Throws AgentgateError RECORDING_FAILED when the store cannot write and failMode is closed.
   */
  append(
    type: Exclude<TranscriptEventType, 'session.start' | 'session.end' | 'io' | 'checkpoint'>,
    body: Record<string, unknown>,
  ): TranscriptEvent;
  /** Stream bytes (terminal, attach, copy data); coalesced by size and time into `io` events. */
  io(direction: IoDirection, data: Buffer, channel?: string): void;
  /**
   * Aborts when stream bytes of this session could not be recorded because the store fails closed (a full disk):
   * the engine must end what is streaming, since `append` refuses new commands but nothing else stops bytes that
   * are already flowing. Absent: this recorder never refuses bytes.
   */
  readonly recordingLost?: AbortSignal;
  /**
   * undefined when the events appended since the session's last `command` are sure to reach the store (it holds
   * the space their commit needs); otherwise settles once they have been committed, and rejects with
   * RECORDING_FAILED when they were not. The gate waits for it before letting a command through.
   */
  committed?(): Promise<void> | undefined;
  /** Flush pending io, append `session.end` and a signed checkpoint. Idempotent. */
  end(body?: Record<string, unknown>): void;
}

export interface TranscriptWriter {
  /** False while the store cannot write (full disk, read-only, closed). */
  readonly writable: boolean;
  readonly failMode: 'closed' | 'open';
  /** Appends `session.start` with the listener, protocol, identity and client address. */
  openSession(info: SessionInfo, extra?: Record<string, unknown>): SessionRecorder;
}
