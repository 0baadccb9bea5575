/**
 * The write side of the transcript store as the session lifecycle and the gate see it (docs/transcript.md). The
 * LMDB implementation lives in `@agentgate/transcript`; only the composition root knows it.
 */
import type { AdminSessionInfo, SessionInfo } from './session.js';
import type {
  AppendableEventType,
  EventBody,
  SessionEndBody,
  SessionStartDetail,
  StoredEventBody,
} from './transcript-events.js';

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

/** An event of kind `K` as read back, its body typed. */
export type EventOf<K extends keyof StoredEventBody> = TranscriptEvent & {
  readonly type: K;
} & StoredEventBody[K];

export function isEventOf<K extends keyof StoredEventBody>(
  event: TranscriptEvent,
  type: K,
): event is EventOf<K> {
  return event.type === type;
}

export type IoDirection = 'in' | 'out' | 'err';

export interface SessionRecorder {
  readonly sessionId: string;
  /**
   * Append one event to the session's chain. Synchronous: the event is chained and queued for the next batch
   * commit. Throws AgentgateError RECORDING_FAILED when the store cannot write and failMode is closed.
   */
  append<K extends AppendableEventType>(type: K, body: EventBody[K]): TranscriptEvent;
  /**
   * `append` for a caller that needs only the event's seq: the store builds no event object for it. Absent on a
   * recorder that hands each appended event on (the console's live view); appendedSeq() picks whichever applies.
   */
  appendSeq?<K extends AppendableEventType>(type: K, body: EventBody[K]): number;
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
  /**
   * undefined while the session's stream bytes waiting for their commit are within the store's bound; otherwise a
   * promise that resolves once commits have caught up (or the session ended, or its bytes were dropped by a failed
   * commit; it never rejects). An engine pauses the stream it reads until then, so memory stays bounded when the
   * disk is slower than the network (docs/transcript.md, "Writing, durability and crashes").
   */
  ioBackpressure?(): Promise<void> | undefined;
  /** Flush pending io, append `session.end` and a signed checkpoint. Idempotent. */
  end(body: SessionEndBody): void;
}

/** Append an event and answer its seq, through `appendSeq` when the recorder has it. */
export function appendedSeq<K extends AppendableEventType>(
  recorder: SessionRecorder,
  type: K,
  body: EventBody[K],
): number {
  return recorder.appendSeq !== undefined ? recorder.appendSeq(type, body) : recorder.append(type, body).seq;
}

export interface TranscriptWriter {
  /** False while the store cannot write (full disk, read-only, closed). */
  readonly writable: boolean;
  readonly failMode: 'closed' | 'open';
  /**
   * Appends `session.start` with the listener, protocol, identity and client address, and `detail`. Throws
   * AgentgateError RECORDING_FAILED when the store cannot write and failMode is closed.
   */
  openSession(info: SessionInfo | AdminSessionInfo, detail?: SessionStartDetail): SessionRecorder;
}
