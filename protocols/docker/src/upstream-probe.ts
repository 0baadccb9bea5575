/**
 * The upstream probe of a Docker listener (`/readyz`, `agentgate check-config --probe`): `GET /_ping` on the dockerd
 * socket, which answers `OK` once the daemon serves its API.
 */
import http from 'node:http';
import type { DockerListenerConfig, UpstreamProbe, UpstreamProbeResult } from '@agentgate/core';

const PROBE_TIMEOUT_MS = 5_000;

export const probeDockerUpstream: UpstreamProbe<DockerListenerConfig> = (listener, signal) => {
  const started = Date.now();
  const socketPath = listener.upstream.socket;
  const result = (stage: UpstreamProbeResult['stage'], message: string): UpstreamProbeResult => ({
    ok: stage === 'ready',
    stage,
    message,
    latencyMs: Date.now() - started,
  });
  return new Promise((resolve) => {
    const req = http.request(
      { socketPath, path: '/_ping', method: 'GET', timeout: PROBE_TIMEOUT_MS, signal, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8').slice(0, 200);
          resolve(
            res.statusCode === 200
              ? result(
                  'ready',
                  `dockerd answers on ${socketPath} (API ${String(res.headers['api-version'] ?? '?')})`,
                )
              : result('connect', `dockerd on ${socketPath} answered ${res.statusCode ?? 0}: ${body}`),
          );
        });
        res.on('error', (err) => resolve(result('connect', `${socketPath}: ${err.message}`)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 5s')));
    // EACCES on the socket is the gateway's permission problem, not the daemon's: it reads as a refused login.
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve(result(err.code === 'EACCES' ? 'login' : 'connect', `${socketPath}: ${err.message}`)),
    );
    req.end();
  });
};
