/**
 * Holding a relay through the recorder's backpressure (SessionRecorder.ioBackpressure) in tests, and waiting for a
 * transfer to stall.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Where a test transcript reads what its recorders answer to ioBackpressure. */
export interface IoBackpressureHook {
  ioBackpressure: (() => Promise<void> | undefined) | undefined;
}

/** Holds every recorder of `hook` until `letGo`; counts how often a relay asked while held. */
export function holdRecording(hook: IoBackpressureHook): { letGo(): void; asked(): number } {
  let letGo!: () => void;
  const held = new Promise<void>((resolve) => (letGo = resolve));
  let open = false;
  let asked = 0;
  hook.ioBackpressure = () => {
    if (open) return undefined;
    asked++;
    return held;
  };
  return {
    letGo: () => {
      open = true;
      letGo();
    },
    asked: () => asked,
  };
}

/** Waits until `progress()` has not moved for `quietMs` (and has moved at all); returns where it stopped. */
export async function stalled(progress: () => number, quietMs = 600): Promise<number> {
  const deadline = Date.now() + 20_000;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const now = progress();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (now > 0 && Date.now() - since >= quietMs) return now;
    await sleep(50);
  }
  throw new Error(`still moving after 20 s (at ${last} bytes)`);
}
