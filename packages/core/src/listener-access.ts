/**
 * Who may use one listener: its `allow`. Listeners themselves (sockets, upstreams) change only at a restart, but a
 * reload replaces who may use them, so engines ask this at each admission rather than reading the listener's
 * configuration they were started with.
 */
import { matchesPrincipal, type Identity, type PrincipalRef } from './identity.js';

export interface ListenerAccess {
  /** Whether the listener admits `identity` now. */
  allows(identity: Identity): boolean;
  /** Changes whenever the list is replaced: an admission remembered under another generation is checked again. */
  readonly generation: number;
}

/** A listener's access that a reload can replace (the gateway keeps one per running listener). */
export class ReplaceableListenerAccess implements ListenerAccess {
  #allow: readonly PrincipalRef[];
  #generation = 0;

  constructor(allow: readonly PrincipalRef[]) {
    this.#allow = allow;
  }

  get allow(): readonly PrincipalRef[] {
    return this.#allow;
  }

  get generation(): number {
    return this.#generation;
  }

  allows(identity: Identity): boolean {
    return matchesPrincipal(identity, this.#allow);
  }

  replace(allow: readonly PrincipalRef[]): void {
    this.#allow = allow;
    this.#generation++;
  }
}
