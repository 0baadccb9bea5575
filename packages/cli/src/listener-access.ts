/**
 * Who may use each running listener, and what a reload changes of it. Listeners themselves (sockets, upstreams,
 * limits) change only at a restart, but an operator who takes a group off a listener means it now: the reloaded
 * `allow` applies to the next connection, and the open sessions it no longer admits end, as a removed token's do.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  ReplaceableListenerAccess,
  type ListenerBase,
  type ListenerConfig,
  type SessionInfo,
  type SessionLifecycles,
  type Termination,
} from '@agentgate/core';
import type { AllowChanges } from './reload-outcome.js';

/**
 * The running listeners with `allow` as the reloaded file has it, for each listener the file still has under the
 * same name and protocol (one it renamed or dropped waits for the restart, as every other listener change does).
 */
export function withReloadedAllow(
  running: readonly ListenerConfig[],
  next: readonly ListenerConfig[],
): ListenerConfig[] {
  return running.map((listener) => {
    const reloaded = next.find((l) => l.name === listener.name && l.protocol === listener.protocol);
    return reloaded === undefined || isDeepStrictEqual(reloaded.allow, listener.allow)
      ? listener
      : { ...listener, allow: reloaded.allow };
  });
}

export class ListenerAccessTable {
  readonly #byName = new Map<string, ReplaceableListenerAccess>();

  /** The access engines of this listener ask; one per listener name. */
  add(listener: Pick<ListenerBase, 'name' | 'allow'>): ReplaceableListenerAccess {
    const access = new ReplaceableListenerAccess(listener.allow);
    this.#byName.set(listener.name, access);
    return access;
  }

  /** Take each running listener's `allow` from `listeners`; the names whose list changed. */
  replace(listeners: readonly Pick<ListenerBase, 'name' | 'allow'>[]): string[] {
    const changed: string[] = [];
    for (const listener of listeners) {
      const access = this.#byName.get(listener.name);
      if (access === undefined || isDeepStrictEqual(access.allow, listener.allow)) continue;
      access.replace(listener.allow);
      changed.push(listener.name);
    }
    return changed;
  }

  /**
   * A reload's part: replace the lists `listeners` changes, then end (as `by`) the open sessions they no longer
   * admit.
   */
  apply(
    listeners: readonly Pick<ListenerBase, 'name' | 'allow'>[],
    sessions: Pick<SessionLifecycles, 'terminateEach'>,
    by: string,
  ): AllowChanges {
    const changed = this.replace(listeners);
    const sessionsEnded =
      changed.length === 0 ? 0 : sessions.terminateEach((info) => this.endingFor(info, by));
    return { listeners: changed, sessionsEnded };
  }

  /**
   * `sessions` as the engines of one listener open them: a session whose identity a reload took off the list after
   * it authenticated (while its upstream connected) ends as the sessions open at the reload did. Deferred a
   * microtask: the engine listens for the session's end only once `open` has returned.
   */
  sessionsFor(sessions: SessionLifecycles, by: string): SessionLifecycles {
    return {
      open: (options) => {
        const session = sessions.open(options);
        const ending = this.endingFor(session.info, by);
        if (ending !== undefined) queueMicrotask(() => session.terminate(ending));
        return session;
      },
      terminate: (sessionId, termination) => sessions.terminate(sessionId, termination),
      terminateEach: (pick) => sessions.terminateEach(pick),
      get openCount() {
        return sessions.openCount;
      },
    };
  }

  /** How a reload by `by` ends an open session its listener no longer admits; undefined while it is admitted. */
  endingFor(info: SessionInfo, by: string): Termination | undefined {
    const access = this.#byName.get(info.listener);
    if (access === undefined || access.allows(info.identity)) return undefined;
    return {
      by,
      via: 'reload',
      reason: `${info.identity.name} is no longer allowed on listener ${info.listener}`,
    };
  }
}
