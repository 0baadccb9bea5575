/**
 * How long an authenticated credential stays good, and whether it was revoked before then. One lease stands for one
 * credential and is shared by every connection made with it: renewing it (an SSH key registration renewed by
 * `agentgate ssh-login`) extends them all, revoking it ends them all.
 */
export type LeaseEnd =
  | { readonly kind: 'expired'; /** ms since the epoch */ readonly at: number }
  | {
      readonly kind: 'revoked';
      /** Why, when it is known (e.g. the token was removed from the configuration). */ readonly reason?: string;
    };

/** setTimeout waits at most 2^31-1 ms (~24.8 days): a longer lease is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CredentialLease {
  #expiresAtMs: number | undefined;
  #revoked = false;
  #revokedBecause: string | undefined;
  /** Re-checks of the live watchers, run on every renewal and on revocation. */
  readonly #watchers = new Set<() => void>();

  /** `expiresAtMs` (ms since the epoch) absent: the credential does not expire, it can only be revoked. */
  constructor(expiresAtMs?: number) {
    this.#expiresAtMs = expiresAtMs;
  }

  /** When the credential stops being valid (ms since the epoch), as last renewed; undefined: never. */
  get expiresAtMs(): number | undefined {
    return this.#expiresAtMs;
  }

  get revoked(): boolean {
    return this.#revoked;
  }

  /** Move the end (later or earlier); watchers re-arm at once. A revoked lease stays revoked. */
  renew(expiresAtMs: number): void {
    if (this.#revoked) return;
    this.#expiresAtMs = expiresAtMs;
    this.#notify();
  }

  /** End the credential now; every watcher is told once, with `reason` when given. */
  revoke(reason?: string): void {
    if (this.#revoked) return;
    this.#revoked = true;
    this.#revokedBecause = reason;
    this.#notify();
  }

  /** Why the credential is no longer good at `nowMs`, or undefined while it is. */
  lapse(nowMs: number): LeaseEnd | undefined {
    if (this.#revoked)
      return this.#revokedBecause === undefined
        ? { kind: 'revoked' }
        : { kind: 'revoked', reason: this.#revokedBecause };
    const expiresAtMs = this.#expiresAtMs;
    if (expiresAtMs !== undefined && nowMs >= expiresAtMs) return { kind: 'expired', at: expiresAtMs };
    return undefined;
  }

  /**
   * Call `onEnd` once, when the lease expires (as renewed meanwhile) or is revoked; never synchronously from
   * `watch` itself. Returns what stops watching. Its timer does not keep the process alive.
   */
  watch(onEnd: (end: LeaseEnd) => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const stop = (): void => {
      done = true;
      clearTimeout(timer);
      this.#watchers.delete(check);
    };
    const arm = (): void => {
      clearTimeout(timer);
      const expiresAtMs = this.#expiresAtMs;
      if (expiresAtMs === undefined) return;
      timer = setTimeout(check, Math.min(Math.max(0, expiresAtMs - Date.now()), MAX_TIMER_MS));
      timer.unref();
    };
    const check = (): void => {
      if (done) return;
      const end = this.lapse(Date.now());
      if (end === undefined) return arm();
      stop();
      onEnd(end);
    };
    this.#watchers.add(check);
    if (this.#revoked) {
      timer = setTimeout(check, 0);
      timer.unref();
    } else arm();
    return stop;
  }

  /** A lease in JSON (an identity logged or shown): its end, never its watchers. */
  toJSON(): { expiresAt: string | null; revoked: boolean } {
    return {
      expiresAt: this.#expiresAtMs === undefined ? null : new Date(this.#expiresAtMs).toISOString(),
      revoked: this.#revoked,
    };
  }

  #notify(): void {
    for (const check of [...this.#watchers]) check();
  }
}
