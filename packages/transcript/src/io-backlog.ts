/**
 * Stream bytes waiting for their commit, per session and in all, and the engines' signal to pause a stream while
 * there are too many (SessionRecorder.ioBackpressure). Without it a relay faster than the disk would queue io
 * events without bound; with it the relay slows to what the store commits (docs/transcript.md, "Writing,
 * durability and crashes"). Bytes count from the moment their `io` event is queued until its transaction settles:
 * committed, or dropped after a failed commit, so a failed store never leaves a stream paused.
 */

/** Stream bytes one session may have waiting for commits before its streams are paused. */
export const sessionIoBacklogBytes = 4 * 1024 * 1024;
/** Stream bytes all sessions together may have waiting for commits before every recording stream is paused. */
export const storeIoBacklogBytes = 16 * 1024 * 1024;

interface SessionBacklog {
  bytes: number;
  /** resolves the promise handed out while over a bound */
  resume: (() => void) | undefined;
  caughtUp: Promise<void> | undefined;
}

export class IoBacklog {
  private readonly sessions = new Map<string, SessionBacklog>();
  private waiting = 0;
  /** bytes of all sessions waiting for their commit */
  bytes = 0;

  constructor(
    private readonly sessionBound = sessionIoBacklogBytes,
    private readonly storeBound = storeIoBacklogBytes,
  ) {}

  /** An io event of `bytes` was queued for the session. */
  queued(session: string, bytes: number): void {
    let backlog = this.sessions.get(session);
    if (backlog === undefined) {
      backlog = { bytes: 0, resume: undefined, caughtUp: undefined };
      this.sessions.set(session, backlog);
    }
    backlog.bytes += bytes;
    this.bytes += bytes;
  }

  /** An io event's transaction settled (committed or dropped). Call `wake` after a batch's events. */
  settled(session: string, bytes: number): void {
    this.bytes -= bytes;
    const backlog = this.sessions.get(session);
    if (backlog === undefined) return;
    backlog.bytes -= bytes;
    if (backlog.bytes <= 0 && backlog.resume === undefined) this.sessions.delete(session);
  }

  /** Some session waits to be resumed. */
  get paused(): boolean {
    return this.waiting > 0;
  }

  /** undefined while the session is within both bounds; else resolves once it is again (or `release`). */
  wait(session: string): Promise<void> | undefined {
    const backlog = this.sessions.get(session);
    if (backlog === undefined || this.fits(backlog)) return undefined;
    if (backlog.caughtUp === undefined) {
      backlog.caughtUp = new Promise<void>((resolve) => (backlog.resume = resolve));
      this.waiting++;
    }
    return backlog.caughtUp;
  }

  /** Resume the sessions back within both bounds. */
  wake(): void {
    if (this.waiting === 0) return;
    for (const [session, backlog] of this.sessions) {
      if (backlog.resume !== undefined && this.fits(backlog)) this.resume(session, backlog);
    }
  }

  /** The session ended: nothing of it waits any more (its bytes still count until they settle). */
  release(session: string): void {
    const backlog = this.sessions.get(session);
    if (backlog !== undefined) this.resume(session, backlog);
  }

  /** The store closes: resume everything. */
  releaseAll(): void {
    for (const [session, backlog] of this.sessions) this.resume(session, backlog);
  }

  private fits(backlog: SessionBacklog): boolean {
    return backlog.bytes < this.sessionBound && this.bytes < this.storeBound;
  }

  private resume(session: string, backlog: SessionBacklog): void {
    const resume = backlog.resume;
    if (resume === undefined) return;
    backlog.resume = undefined;
    backlog.caughtUp = undefined;
    this.waiting--;
    if (backlog.bytes <= 0) this.sessions.delete(session);
    resume();
  }
}
