import type { ListenerConfig } from '@agentgate/core';

type ListenerDefault = Pick<ListenerConfig, 'name' | 'default'>;

/**
 * The listener defaults a reloaded policy is compiled with while the `listeners` section waits for a restart: the
 * stricter of the running and the reloaded one. A file that switches a listener to `default: deny` usually drops the
 * deny rules allow-list mode no longer needs; those rules under the running `default: allow` would let through what
 * neither file permits. A switch back to `allow` waits for the restart, as other listener changes do.
 */
export function stricterListenerDefaults(
  running: readonly ListenerDefault[],
  reloaded: readonly ListenerDefault[],
): ListenerDefault[] {
  return running.map((listener) => {
    const next = reloaded.find((l) => l.name === listener.name);
    return next?.default === 'deny' ? { name: listener.name, default: 'deny' } : listener;
  });
}
