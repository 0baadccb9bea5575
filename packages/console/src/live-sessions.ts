/**
 * The sessions running now, seen from the recording side: `wrap` puts itself between the engines and the store,
 * so each opened session is known with its info until it ends, and its events reach the console's live view as
 * they are appended (io bytes as they are recorded, before coalescing). Ending a session is delegated to
 * `terminator`: the composition root has the session's engine end it natively, and the session lifecycle records
 * who ended it.
 */
import { TextDecoder } from 'node:util';
import {
  noRedaction,
  type Identity,
  type IoDirection,
  type Redactor,
  type SessionInfo,
  type SessionRecorder,
  type StreamRedactor,
  type TranscriptEvent,
  type TranscriptWriter,
} from '@agentgate/core';

export type LiveEvent =
  | { readonly kind: 'event'; readonly event: TranscriptEvent }
  | { readonly kind: 'io'; readonly direction: IoDirection; readonly text: string; readonly channel?: string }
  | { readonly kind: 'ended'; readonly reason: string };

export interface LiveSession {
  readonly info: SessionInfo;
}

/** Ends a running session on `by`'s word; false when it is no longer running. */
export type Terminator = (info: SessionInfo, by: Identity) => boolean;

/** How many recent events of each running session a viewer who opens the live page is shown first. */
const BACKLOG = 300;

interface Tracked extends LiveSession {
  readonly backlog: LiveEvent[];
  readonly decoders: Map<string, TextDecoder>;
  /** Per stream: the same redaction the store applies, so a viewer never sees what the record does not keep. */
  readonly redactors: Map<string, StreamRedactor>;
}

export class LiveSessions {
  private readonly sessions = new Map<string, Tracked>();
  private readonly subscribers = new Map<string, Set<(event: LiveEvent) => void>>();
  private terminator: Terminator | undefined;

  /** `redactor`: the gateway's recording-side redaction (`redact`), applied to stream bytes before anyone sees them. */
  constructor(private readonly redactor: Redactor = noRedaction) {}

  setTerminator(terminator: Terminator): void {
    this.terminator = terminator;
  }

  wrap(writer: TranscriptWriter): TranscriptWriter {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const live = this;
    return {
      get writable() {
        return writer.writable;
      },
      get failMode() {
        return writer.failMode;
      },
      openSession(info, detail) {
        const recorder = writer.openSession(info, detail);
        // Administrative records are not sessions anyone watches or ends.
        return info.protocol === 'admin' ? recorder : live.track(info, recorder);
      },
    };
  }

  list(): readonly LiveSession[] {
    return [...this.sessions.values()];
  }

  has(id: string): boolean {
    return this.sessions.has(id);
  }

  get(id: string): LiveSession | undefined {
    return this.sessions.get(id);
  }

  /** The session's most recent events (io as text), oldest first. */
  recent(id: string): readonly LiveEvent[] {
    return [...(this.sessions.get(id)?.backlog ?? [])];
  }

  /** Follow one session; returns what unsubscribes. An unknown or ended session gets nothing. */
  subscribe(id: string, subscriber: (event: LiveEvent) => void): () => void {
    let set = this.subscribers.get(id);
    if (set === undefined) this.subscribers.set(id, (set = new Set()));
    set.add(subscriber);
    return () => {
      set.delete(subscriber);
      if (set.size === 0 && this.subscribers.get(id) === set) this.subscribers.delete(id);
    };
  }

  /**
   * End a running session on an admin's word, through the terminator: the session's chain records who (an `error`
   * event `session.terminated`), its engine ends it as its protocol does, and its `session.end` names the admin.
   */
  terminate(id: string, by: Identity): { ended: boolean; reason?: string } {
    const session = this.sessions.get(id);
    if (session === undefined) return { ended: false, reason: 'the session is not running' };
    if (this.terminator === undefined) return { ended: false, reason: 'ending sessions is not available' };
    if (!this.terminator(session.info, by)) return { ended: false, reason: 'the session is not running' };
    return { ended: true };
  }

  private emit(id: string, event: LiveEvent): void {
    const tracked = this.sessions.get(id);
    if (tracked !== undefined && event.kind !== 'ended') {
      tracked.backlog.push(event);
      if (tracked.backlog.length > BACKLOG) tracked.backlog.shift();
    }
    const set = this.subscribers.get(id);
    if (set === undefined) return;
    for (const subscriber of set) {
      try {
        subscriber(event);
      } catch {
        // a viewer's failure (a closed stream) must never disturb the session being recorded
      }
    }
  }

  private track(info: SessionInfo, inner: SessionRecorder): SessionRecorder {
    const entry: Tracked = {
      info,
      backlog: [],
      decoders: new Map(),
      redactors: new Map(),
    };
    this.sessions.set(info.id, entry);
    const emit = (event: LiveEvent): void => this.emit(info.id, event);
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const live = this;
    const decode = (key: string, data: Buffer): string => {
      // One streaming decoder per stream, so a UTF-8 sequence split across chunks is not mangled.
      let decoder = entry.decoders.get(key);
      if (decoder === undefined) entry.decoders.set(key, (decoder = new TextDecoder('utf-8')));
      return decoder.decode(data, { stream: true });
    };
    const redacted = (key: string, data: Buffer): readonly Buffer[] => {
      if (!this.redactor.active) return [data];
      let stream = entry.redactors.get(key);
      if (stream === undefined) entry.redactors.set(key, (stream = this.redactor.stream()));
      const released = stream.push(data);
      if (stream.settled) entry.redactors.delete(key);
      return released.pieces;
    };
    const recorder: SessionRecorder = {
      sessionId: inner.sessionId,
      ...(inner.recordingLost === undefined ? {} : { recordingLost: inner.recordingLost }),
      // What the gate and the relays wait for is the store's, untouched by watching.
      ...(inner.committed === undefined ? {} : { committed: () => inner.committed!() }),
      ...(inner.ioBackpressure === undefined ? {} : { ioBackpressure: () => inner.ioBackpressure!() }),
      append(type, body) {
        const event = inner.append(type, body);
        emit({ kind: 'event', event });
        return event;
      },
      io(direction, data, channel) {
        inner.io(direction, data, channel);
        if (direction === 'in') return; // what is typed comes back as output; unechoed input stays unshown
        const key = `${channel ?? ''}/${direction}`;
        // Redacted always (a secret may start before anyone watches), decoded only for a viewer.
        const pieces = redacted(key, data);
        if (!live.subscribers.has(info.id)) return;
        const text = pieces.map((piece) => decode(key, piece)).join('');
        if (text.length > 0)
          emit(
            channel === undefined
              ? { kind: 'io', direction, text }
              : { kind: 'io', direction, text, channel },
          );
      },
      end: (body) => {
        if (!this.sessions.has(info.id)) return inner.end(body);
        inner.end(body);
        emit({ kind: 'ended', reason: body.reason });
        this.sessions.delete(info.id);
        this.subscribers.delete(info.id);
      },
    };
    return recorder;
  }
}
