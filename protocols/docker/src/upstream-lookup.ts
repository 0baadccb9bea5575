/**
 * Side requests to dockerd that a decision needs: the container an exec enters or a namespace mode joins, the
 * options of a named volume, and the command defaults of the image a container is created from. Failures are thrown so the caller denies (fail closed) rather than guess.
 */
import http from 'node:http';
import { AgentgateError } from '@agentgate/core';
import {
  type ContainerFacts,
  type UpstreamLookup,
  localVolumeHostPaths,
  factsOfInspectedContainer,
} from './body-facts.js';
import { type ImageDefaults, imageDefaultsOf } from './container-commands.js';
import { parseGoJson, field, asString, mapEntries } from './go-json.js';

const LOOKUP_TIMEOUT_MS = 10_000;

function getJson(
  agent: http.Agent,
  socketPath: string,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, socketPath, path, method: 'GET', timeout: LOOKUP_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('upstream lookup timed out')));
    req.on('error', (err) =>
      reject(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream unavailable', { cause: err })),
    );
    req.end();
  });
}

export function createUpstreamLookup(socketPath: string): UpstreamLookup & { close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return {
    async container(nameOrId: string): Promise<ContainerFacts | undefined> {
      const res = await getJson(agent, socketPath, `/containers/${encodeURIComponent(nameOrId)}/json`);
      if (res.status === 404) return undefined;
      if (res.status !== 200)
        throw new AgentgateError(
          'UPSTREAM_UNAVAILABLE',
          `agentgate: inspecting container failed (${res.status})`,
        );
      return factsOfInspectedContainer(parseGoJson(res.body));
    },
    async volumeHostPaths(name: string): Promise<readonly string[]> {
      const res = await getJson(agent, socketPath, `/volumes/${encodeURIComponent(name)}`);
      if (res.status === 404) return [];
      if (res.status !== 200)
        throw new AgentgateError(
          'UPSTREAM_UNAVAILABLE',
          `agentgate: inspecting volume failed (${res.status})`,
        );
      const vol = parseGoJson(res.body);
      return localVolumeHostPaths(asString(field(vol, 'Driver')), mapEntries(field(vol, 'Options')));
    },
    async imageDefaults(ref: string): Promise<ImageDefaults | undefined> {
      // The reference as the body names it, so dockerd resolves it as it will for the create. Slashes stay (image
      // names have them); dot segments would make the path name another route, and are no valid reference anyway.
      const segments = ref.split('/');
      if (segments.some((s) => s === '' || s === '.' || s === '..')) return undefined;
      const res = await getJson(
        agent,
        socketPath,
        `/images/${segments.map(encodeURIComponent).join('/')}/json`,
      );
      if (res.status === 404) return undefined;
      if (res.status !== 200)
        throw new AgentgateError(
          'UPSTREAM_UNAVAILABLE',
          `agentgate: inspecting image failed (${res.status})`,
        );
      return imageDefaultsOf(field(parseGoJson(res.body), 'Config'));
    },
    close(): void {
      agent.destroy();
    },
  };
}
