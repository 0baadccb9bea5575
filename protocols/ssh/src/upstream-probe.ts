/**
 * The upstream probe of an SSH listener (`/readyz`, `agentgate check-config --probe`): connect to the real sshd the
 * way a session does (pinned host key, the listener's key or password), then disconnect.
 */
import {
  silentLogger,
  type SshListenerConfig,
  type UpstreamProbe,
  type UpstreamProbeResult,
} from '@agentgate/core';
import { UpstreamPool } from './upstream-pool.js';

export const probeSshUpstream: UpstreamProbe<SshListenerConfig> = async (listener, signal) => {
  const started = Date.now();
  const result = (stage: UpstreamProbeResult['stage'], message: string): UpstreamProbeResult => ({
    ok: stage === 'ready',
    stage,
    message,
    latencyMs: Date.now() - started,
  });
  const up = listener.upstream;
  let hostKeyMismatch: string | undefined;
  let lowLevel: Error | undefined;
  let pool: UpstreamPool;
  try {
    pool = new UpstreamPool(
      listener,
      {
        onHostKeyMismatch: (presented) => (hostKeyMismatch = presented),
        onError: (err) => (lowLevel = err),
      },
      silentLogger,
    );
  } catch (err) {
    // The private key file cannot be read, the pinned host key cannot be parsed.
    return result('login', err instanceof Error ? err.message : String(err));
  }
  const onAbort = (): void => pool.dispose();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await pool.warmUp();
    return result('ready', `logged in as ${up.user} on ${up.host}:${up.port}`);
  } catch (err) {
    if (hostKeyMismatch !== undefined)
      return result('login', `the upstream host key is not the pinned one (it presented ${hostKeyMismatch})`);
    const level = (lowLevel as { level?: unknown } | undefined)?.level;
    // ssh2 marks authentication failures `client-authentication`; socket errors `client-socket`, timeouts `client-timeout`.
    const stage = level === 'client-authentication' ? 'login' : 'connect';
    const why = lowLevel?.message ?? (err instanceof Error ? err.message : String(err));
    return result(
      stage,
      stage === 'login' ? `login as ${up.user} refused: ${why}` : `${up.host}:${up.port}: ${why}`,
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
    pool.dispose();
  }
};
