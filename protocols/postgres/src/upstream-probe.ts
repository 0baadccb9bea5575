/**
 * The upstream probe of a PostgreSQL listener (`/readyz`, `agentgate check-config --probe`): open a connection and
 * log in exactly as a session does, with the listener's upstream credentials, then say goodbye (Terminate).
 */
import type { PostgresListenerConfig, UpstreamProbe, UpstreamProbeResult } from '@agentgate/core';
import { encodeTerminate } from './codec/encode.js';
import { openUpstream, UpstreamRejected } from './upstream.js';

export const probePostgresUpstream: UpstreamProbe<PostgresListenerConfig> = async (listener, signal) => {
  const started = Date.now();
  const result = (stage: UpstreamProbeResult['stage'], message: string): UpstreamProbeResult => ({
    ok: stage === 'ready',
    stage,
    message,
    latencyMs: Date.now() - started,
  });
  const target = listener.upstream;
  // Without a configured database clients pick theirs; `postgres` exists on every server.
  const database = target.database ?? 'postgres';
  try {
    const upstream = await openUpstream(target, { database }, signal);
    upstream.socket.end(encodeTerminate());
    return result('ready', `logged in as ${target.user} to ${database} on ${target.host}:${target.port}`);
  } catch (err) {
    if (err instanceof UpstreamRejected) {
      // 28xxx: invalid authorization (a wrong password, an unknown user, pg_hba); 3D000: no such database.
      return result(
        err.sqlstate.startsWith('28') || err.sqlstate === '3D000' ? 'login' : 'connect',
        `${err.message} (SQLSTATE ${err.sqlstate})`,
      );
    }
    const message = err instanceof Error ? err.message : String(err);
    return result('connect', message.replace(/^agentgate: /, ''));
  }
};
