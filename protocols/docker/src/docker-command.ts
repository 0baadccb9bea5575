/**
 * Turns one classified request into the core `DockerCommand` the gate decides on.
 */
import type { DockerCommand, DockerListenerConfig } from '@agentgate/core';
import {
  FactsBuilder,
  type UpstreamLookup,
  containerCreateFacts,
  execCreateFacts,
  hostConfigFacts,
  volumeCreateFacts,
} from './body-facts.js';
import { GoJsonObject, GoJsonSyntaxError, type GoJsonValue, parseGoJson } from './go-json.js';
import { imageWithTag, normalizeImageRef } from './image-ref.js';
import type { CanonicalRequest, Route } from './routes.js';

export interface CommandInput {
  readonly request: CanonicalRequest;
  readonly route: Route | undefined;
  /** The buffered request body (bodies of routes that are inspected), if any. */
  readonly body: Buffer | undefined;
  readonly listener: DockerListenerConfig;
  readonly lookup: UpstreamLookup;
}

function parseBody(body: Buffer | undefined): GoJsonValue | undefined {
  if (body === undefined || body.length === 0) return undefined;
  return parseGoJson(body.toString('utf8'));
}

function imagesFromQuery(f: FactsBuilder, req: CanonicalRequest, route: Route): void {
  const q = req.query;
  const add = (ref: string | null | undefined): void => {
    if (ref) f.images.add(normalizeImageRef(ref));
  };
  switch (route.action) {
    case 'image.pull':
      add(imageWithTag(q.get('fromImage') ?? '', q.get('tag')));
      break;
    case 'image.import':
    case 'container.commit':
      if (q.get('repo')) add(imageWithTag(q.get('repo')!, q.get('tag')));
      break;
    case 'image.push':
      add(imageWithTag(route.name ?? '', q.get('tag')));
      break;
    case 'image.tag':
      add(route.name);
      if (q.get('repo')) add(imageWithTag(q.get('repo')!, q.get('tag')));
      break;
    case 'image.build':
      for (const t of q.getAll('t')) add(t);
      break;
    case 'image.save':
      add(route.name);
      for (const n of q.getAll('names')) add(n);
      break;
    case 'image.remove':
    case 'image.inspect':
    case 'image.history':
    case 'distribution':
      add(route.name);
      break;
  }
}

export async function buildDockerCommand(input: CommandInput): Promise<DockerCommand> {
  const { request: req, route, listener } = input;
  const f = new FactsBuilder();
  const action = route?.action ?? 'unknown';
  if (!route) f.unanalysable = `unknown API route ${req.method} ${req.path}`;
  else {
    imagesFromQuery(f, req, route);
    try {
      const body = route.body ? parseBody(input.body) : undefined;
      switch (route.body) {
        case 'container-create':
          if (body === undefined) f.unanalysable = 'container create without a body';
          else await containerCreateFacts(f, body, input.lookup);
          break;
        case 'container-start':
          // API < 1.24 still accepts a HostConfig here (moby postContainersStart): judge it like a create.
          if (body !== undefined && body !== null) await hostConfigFacts(f, body, input.lookup);
          break;
        case 'container-update':
          if (body !== undefined) await hostConfigFacts(f, body, input.lookup);
          break;
        case 'exec-create':
          if (body === undefined) f.unanalysable = 'exec create without a body';
          else await execCreateFacts(f, body, route.name ?? '', input.lookup);
          break;
        case 'volume-create':
          if (body !== undefined) volumeCreateFacts(f, body);
          break;
        case 'service-spec':
          f.unanalysable = 'swarm service specs are not analysed by agentgate';
          break;
        case undefined:
          break;
      }
      const buildNetwork = route.action === 'image.build' ? req.query.get('networkmode') : null;
      if (buildNetwork) {
        // The classic builder runs each RUN step in a container with this network mode (`--network host`):
        // judged as a created container's NetworkMode is.
        await hostConfigFacts(f, new GoJsonObject([['NetworkMode', buildNetwork]]), input.lookup);
      }
      if (route.action === 'image.build' && req.query.get('version') === '2') {
        f.unanalysable =
          'BuildKit builds are not supported through agentgate; use the classic builder (DOCKER_BUILDKIT=0)';
      }
      if (route.action === 'session' || route.action === 'grpc') {
        f.unanalysable =
          'BuildKit sessions are not supported through agentgate; use the classic builder (DOCKER_BUILDKIT=0)';
      }
    } catch (err) {
      if (err instanceof GoJsonSyntaxError) f.unanalysable = `request body is not valid JSON: ${err.message}`;
      else f.unanalysable = `cannot inspect the request: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  let unknownMatchesAll: boolean | undefined;
  if (f.exec?.some((c) => c.program === null)) {
    if (
      listener.unknownPrograms === 'deny' &&
      route?.body === 'exec-create' &&
      f.unanalysable === undefined
    ) {
      f.unanalysable = 'the exec command runs a program that cannot be known before it runs';
    }
    unknownMatchesAll = true;
  }
  const query = Object.fromEntries([...req.query.keys()].map((k) => [k, req.query.getAll(k).join(',')]));
  const summary: string[] = [];
  if (f.images.size > 0) summary.push([...f.images].join(','));
  if (f.exec) summary.push(`exec: ${f.exec.map((c) => c.text).join(' ; ')}`);
  if (f.privileged) summary.push('privileged');
  if (f.hostMounts.size > 0) summary.push(`mounts ${[...f.hostMounts].join(',')}`);
  const detail: Record<string, unknown> = {
    method: req.method,
    path: req.path,
    ...(req.version !== undefined ? { apiVersion: req.version } : {}),
    ...(route?.name !== undefined ? { name: route.name } : {}),
    ...(Object.keys(query).length > 0 ? { query } : {}),
    ...(f.privilegedBecause.length > 0 ? { privilegedBecause: f.privilegedBecause } : {}),
    ...f.detail,
  };
  return {
    protocol: 'docker',
    text: `${action} ${req.method} ${req.path}${summary.length > 0 ? ` (${summary.join('; ')})` : ''}`,
    action,
    privileged: f.privileged,
    hostMounts: [...f.hostMounts],
    hostNamespaces: f.hostNamespaces,
    capabilities: [...f.capabilities],
    images: [...f.images],
    ...(f.exec ? { exec: f.exec } : {}),
    ...(f.unanalysable !== undefined ? { unanalysable: f.unanalysable } : {}),
    ...(unknownMatchesAll !== undefined ? { unknownMatchesAll } : {}),
    detail,
  };
}
