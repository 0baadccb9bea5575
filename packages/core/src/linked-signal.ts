/**
 * An AbortSignal that follows two others for a while. `AbortSignal.any` would do, but it lists every signal it
 * made on its sources for as long as they live (Node 20 never prunes that list): one made per command on a
 * session-long or connection-long signal grew without bound and made that signal's eventual abort walk them all.
 */
export interface LinkedSignal {
  /** Aborts, with the same reason, when either source does while linked. */
  readonly signal: AbortSignal;
  /** Detach from both sources; the signal keeps whatever state it has. */
  unlink(): void;
}

const NOTHING_TO_UNLINK = (): void => {};

export function linkSignals(first: AbortSignal, second: AbortSignal): LinkedSignal {
  const controller = new AbortController();
  if (first.aborted || second.aborted) {
    controller.abort(first.aborted ? first.reason : second.reason);
    return { signal: controller.signal, unlink: NOTHING_TO_UNLINK };
  }
  const fromFirst = (): void => controller.abort(first.reason);
  const fromSecond = (): void => controller.abort(second.reason);
  // No `once`: a signal aborts at most once, and unlink removes both listeners anyway.
  first.addEventListener('abort', fromFirst);
  second.addEventListener('abort', fromSecond);
  return {
    signal: controller.signal,
    unlink() {
      first.removeEventListener('abort', fromFirst);
      second.removeEventListener('abort', fromSecond);
    },
  };
}
