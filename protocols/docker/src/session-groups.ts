/**
 * Docker sessions as a person thinks of them: the docker CLI opens several connections for one command (`docker
 * run`: create, attach, start and wait, each on its own connection), so connections of the same identity from the
 * same client address share one recorded session while any of them is open, and for `sessionLinger` after the
 * last one closed (docs/transcript.md, "Sessions and events").
 */
import { CLIENT_LEFT, SHUTDOWN, type ClientInfo, type GatedSession, type Identity } from '@agentgate/core';

export interface SessionLease {
  readonly session: GatedSession;
  /** The connection no longer uses the session (it closed, or its requests act as another identity now). */
  release(): void;
}

interface Group {
  readonly key: string;
  readonly session: GatedSession;
  /** The session's signal: aborts when a connection using it is told to end (shutdown), or the engine closes. */
  readonly stop: AbortController;
  users: number;
  linger: NodeJS.Timeout | undefined;
  /** Each user connection's reaction to the session ending, one listener on `ended` for all (no listener leak). */
  readonly watchers: Set<() => void>;
}

/** Opens a session for the first connection of a group. */
export type OpenSession = (identity: Identity, client: ClientInfo, signal: AbortSignal) => GatedSession;

export class SessionGroups {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly lingerMs: number,
    private readonly open: OpenSession,
  ) {}

  /**
   * The session of this identity and client address, joined or opened (throws what `open` throws). `onEnded` runs
   * when the session must end while this connection uses it.
   */
  acquire(identity: Identity, client: ClientInfo, signal: AbortSignal, onEnded?: () => void): SessionLease {
    const key = `${client.address}\n${identity.source}\n${identity.name}`;
    let group = this.groups.get(key);
    if (group !== undefined && group.session.ended.aborted) {
      this.groups.delete(key);
      group = undefined;
    }
    if (group === undefined) {
      const stop = new AbortController();
      const session = this.open(identity, client, stop.signal);
      const opened: Group = { key, session, stop, users: 0, linger: undefined, watchers: new Set() };
      this.groups.set(key, opened);
      // A session that must end (credential lapsed, an administrator) takes no new connections; its users end it.
      session.ended.addEventListener(
        'abort',
        () => {
          for (const watcher of [...opened.watchers]) watcher();
          this.endedAlone(opened);
        },
        { once: true },
      );
      group = opened;
    } else if (group.session.info.identity !== identity) {
      // Same principal, another credential (a refreshed token): the session goes on under it.
      group.session.continueAs(identity);
    }
    const joined = group;
    clearTimeout(joined.linger);
    joined.linger = undefined;
    joined.users++;
    if (onEnded) joined.watchers.add(onEnded);
    const stopped = (): void => joined.stop.abort(signal.reason);
    if (signal.aborted) stopped();
    else signal.addEventListener('abort', stopped, { once: true });
    let released = false;
    return {
      session: joined.session,
      release: () => {
        if (released) return;
        released = true;
        signal.removeEventListener('abort', stopped);
        if (onEnded) joined.watchers.delete(onEnded);
        this.released(joined);
      },
    };
  }

  /** The gateway shuts down: every session ends as such, at once when no connection uses it. */
  close(): void {
    for (const group of [...this.groups.values()]) group.stop.abort(SHUTDOWN);
  }

  private released(group: Group): void {
    group.users--;
    if (group.users > 0) return;
    if (group.session.ended.aborted || this.lingerMs === 0 || this.groups.get(group.key) !== group) {
      this.end(group);
      return;
    }
    group.linger = setTimeout(() => this.end(group), this.lingerMs);
    group.linger.unref();
  }

  private end(group: Group): void {
    this.forget(group);
    group.session.end(CLIENT_LEFT);
  }

  /** The session ended on its own: with no connection using it, nobody else would close it. */
  private endedAlone(group: Group): void {
    this.forget(group);
    if (group.users > 0) return;
    clearTimeout(group.linger);
    group.session.end();
  }

  private forget(group: Group): void {
    if (this.groups.get(group.key) === group) this.groups.delete(group.key);
  }
}
