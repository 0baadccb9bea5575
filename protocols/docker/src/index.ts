/**
 * The Docker Engine API listener: `createDockerEngine` serves dockerd's HTTP API on a TCP or unix
 * socket the composition root accepts, decides every call through the gate and forwards it to the dockerd socket.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type {
  ClientInfo,
  ConnectionControl,
  DockerListenerConfig,
  EngineDeps,
  EngineFactory,
  ProtocolEngine,
} from '@agentgate/core';
import { clientSocket } from './client-socket.js';
import { DockerConnection } from './session.js';
import { SessionGroups } from './session-groups.js';
import { endAndFlush } from './socket-reader.js';
import { createUpstreamLookup } from './upstream-lookup.js';

export const createDockerEngine: EngineFactory<DockerListenerConfig> = (
  listener: DockerListenerConfig,
  deps: EngineDeps,
): ProtocolEngine => {
  const lookup = createUpstreamLookup(listener.upstream.socket);
  // TLS from the first byte on TCP when the listener has `tls` and the root has not already terminated it.
  const secureContext = listener.tls
    ? tls.createSecureContext({ cert: readFileSync(listener.tls.cert), key: readFileSync(listener.tls.key) })
    : undefined;
  const log = deps.log.child({ listener: listener.name, protocol: 'docker' });
  const engineDeps: EngineDeps = { ...deps, log };
  const groups = new SessionGroups(listener.sessionLingerMs, (identity, client, signal) =>
    deps.sessions.open({ listener: listener.name, protocol: 'docker', identity, client, signal, log }),
  );
  return {
    async handle(
      client: Duplex,
      info: ClientInfo,
      signal: AbortSignal,
      connection?: ConnectionControl,
    ): Promise<void> {
      const { socket, info: clientInfo, secure, reads } = clientSocket(client, info, secureContext, log);
      try {
        await new DockerConnection(
          socket,
          {
            listener,
            deps: engineDeps,
            lookup,
            info: clientInfo,
            signal,
            groups,
            ...(connection ? { connection } : {}),
          },
          reads,
        ).run();
        // The root destroys the raw socket when we return: let the TLS layer's last records reach it first.
        if (secure) await endAndFlush(client);
      } catch (err) {
        log.warn('docker connection ended with an error', {
          err: err instanceof Error ? err.message : String(err),
        });
      }
    },
    async close(): Promise<void> {
      groups.close();
      lookup.close();
    },
  };
};

export { probeDockerUpstream } from './upstream-probe.js';
