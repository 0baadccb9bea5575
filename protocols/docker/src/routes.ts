/**
 * Routing as dockerd does it (moby `api/server/router/*`, gorilla/mux): an optional `/v{version:[0-9.]+}` prefix,
 * the path percent-decoded once (Go's `URL.Path`) and matched with the same `{name:.*}` patterns, so a name may
 * contain slashes exactly where dockerd lets it. Paths dockerd would redirect or read differently (`//`, `.`/`..`
 * segments, encoded `/` `.` `\` or NUL) are refused instead.
 */
import { AgentgateError, type DockerAction } from '@agentgate/core';

/** What the gateway does with the request body before deciding. */
export type BodyInspection =
  | 'container-create'
  | 'container-start'
  | 'container-update'
  | 'exec-create'
  | 'volume-create'
  | 'service-spec';

/** How the response is treated. */
export type ResponseKind =
  /** buffered, JSON `Env` values masked */
  | 'mask-container'
  | 'mask-image'
  /** may switch to a raw bidirectional stream (attach, exec start, session) */
  | 'hijack'
  /** long-lived or large stream: recorded as io, never timed out */
  | 'stream'
  | 'plain';

export interface Route {
  readonly action: DockerAction;
  /** Path parameter (`{name}` / `{id}`) when the route has one. */
  readonly name?: string;
  readonly body?: BodyInspection;
  readonly response: ResponseKind;
}

export interface CanonicalRequest {
  readonly method: string;
  /** API version from the `/vX.Y` prefix, if any. */
  readonly version?: string;
  /** Decoded path without the version prefix. */
  readonly path: string;
  /** Query parameters, decoded as Go's url.ParseQuery; `get` returns the first value like `Form.Get`. */
  readonly query: URLSearchParams;
}

function badPath(message: string): AgentgateError {
  return new AgentgateError('BAD_REQUEST', `agentgate: ${message}`);
}

/** Percent-decode once; refuses encodings of characters that change path structure. */
function decodePathOnce(raw: string): string {
  if (!raw.includes('%')) {
    if (/[\\]/.test(raw)) throw badPath('control character or backslash in path');
    return raw;
  }
  if (/%(?:2f|2e|5c|00)/i.test(raw)) throw badPath('encoded "/", ".", "\\" or NUL in path');
  if (/%(?![0-9a-fA-F]{2})/.test(raw)) throw badPath('invalid percent-encoding in path');
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === '%') {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(raw.charCodeAt(i));
  }
  const text = Buffer.from(bytes).toString('utf8');
  if (/[\x00-\x1f\x7f\\]/.test(text)) throw badPath('control character or backslash in path');
  return text;
}

/** Go's url.ParseQuery: `&` separates, `;` is an error (Go ≥ 1.17), `+` is a space. */
function parseQuery(raw: string): URLSearchParams {
  const out = new URLSearchParams();
  if (raw === '') return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) throw badPath('semicolon in query');
    const eq = part.indexOf('=');
    const k = eq === -1 ? part : part.slice(0, eq);
    const v = eq === -1 ? '' : part.slice(eq + 1);
    const dec = (s: string): string => {
      if (/%(?![0-9a-fA-F]{2})/.test(s)) throw badPath('invalid percent-encoding in query');
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch {
        throw badPath('invalid percent-encoding in query');
      }
    };
    out.append(dec(k), dec(v));
  }
  return out;
}

export function canonicalizeTarget(method: string, target: string): CanonicalRequest {
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const rawQuery = q === -1 ? '' : target.slice(q + 1);
  const decoded = decodePathOnce(rawPath);
  if (!decoded.startsWith('/')) throw badPath('path must start with "/"');
  if (decoded.includes('//')) throw badPath('empty path segment');
  if (decoded.split('/').some((seg) => seg === '.' || seg === '..')) throw badPath('dot segment in path');
  let path = decoded;
  let version: string | undefined;
  const vm = /^\/v([0-9.]+)(\/.*)$/.exec(decoded);
  if (vm) {
    version = vm[1]!;
    path = vm[2]!;
  }
  return { method, path, query: parseQuery(rawQuery), ...(version !== undefined ? { version } : {}) };
}

interface RouteDef {
  readonly methods: readonly string[];
  readonly pattern: RegExp;
  readonly action: DockerAction;
  readonly body?: BodyInspection;
  readonly response?: ResponseKind;
}

const NAME = '(.+)';
const r = (
  methods: string,
  path: string,
  action: DockerAction,
  extra: Omit<RouteDef, 'methods' | 'pattern' | 'action'> = {},
): RouteDef => ({
  methods: methods.split('|'),
  // `{name:.*}` in moby is greedy and may hold slashes, exactly like `(.+)` here anchored at both ends.
  pattern: new RegExp(`^${path.replace(/\{name\}/g, NAME)}$`),
  action,
  ...extra,
});

// Order matters only where patterns overlap; the first match wins, as in gorilla/mux registration order.
const ROUTES: readonly RouteDef[] = [
  r('GET|HEAD', '/_ping', 'system.ping'),
  r('GET', '/info', 'system.info'),
  r('GET', '/version', 'system.version'),
  r('GET', '/events', 'system.events', { response: 'stream' }),
  r('GET', '/system/df', 'system.df'),
  r('POST', '/auth', 'system.auth'),
  // containers
  r('GET', '/containers/json', 'container.list'),
  r('POST', '/containers/create', 'container.create', { body: 'container-create' }),
  r('POST', '/containers/prune', 'container.prune'),
  r('HEAD|GET|PUT', '/containers/{name}/archive', 'container.archive', { response: 'stream' }),
  r('GET', '/containers/{name}/export', 'container.export', { response: 'stream' }),
  r('GET', '/containers/{name}/changes', 'container.changes'),
  r('GET', '/containers/{name}/json', 'container.inspect', { response: 'mask-container' }),
  r('GET', '/containers/{name}/top', 'container.top'),
  r('GET', '/containers/{name}/logs', 'container.logs', { response: 'stream' }),
  r('GET', '/containers/{name}/stats', 'container.stats', { response: 'stream' }),
  r('GET', '/containers/{name}/attach/ws', 'container.attach', { response: 'hijack' }),
  r('POST', '/containers/{name}/attach', 'container.attach', { response: 'hijack' }),
  r('POST', '/containers/{name}/kill', 'container.kill'),
  r('POST', '/containers/{name}/pause', 'container.pause'),
  r('POST', '/containers/{name}/unpause', 'container.unpause'),
  r('POST', '/containers/{name}/restart', 'container.restart'),
  r('POST', '/containers/{name}/start', 'container.start', { body: 'container-start' }),
  r('POST', '/containers/{name}/stop', 'container.stop'),
  r('POST', '/containers/{name}/wait', 'container.wait'),
  r('POST', '/containers/{name}/resize', 'container.resize'),
  r('POST', '/containers/{name}/copy', 'container.archive', { response: 'stream' }),
  r('POST', '/containers/{name}/exec', 'container.exec', { body: 'exec-create' }),
  r('POST', '/containers/{name}/rename', 'container.rename'),
  r('POST', '/containers/{name}/update', 'container.update', { body: 'container-update' }),
  r('DELETE', '/containers/{name}', 'container.remove'),
  r('POST', '/commit', 'container.commit'),
  // exec
  r('GET', '/exec/{name}/json', 'exec.inspect'),
  r('POST', '/exec/{name}/start', 'exec.start', { response: 'hijack' }),
  r('POST', '/exec/{name}/resize', 'exec.resize'),
  // images
  r('GET', '/images/json', 'image.list'),
  r('GET', '/images/search', 'image.search'),
  r('GET', '/images/get', 'image.save', { response: 'stream' }),
  r('GET', '/images/{name}/get', 'image.save', { response: 'stream' }),
  r('GET', '/images/{name}/history', 'image.history'),
  r('GET', '/images/{name}/json', 'image.inspect', { response: 'mask-image' }),
  r('POST', '/images/load', 'image.load', { response: 'stream' }),
  r('POST', '/images/create', 'image.pull', { response: 'stream' }),
  r('POST', '/images/prune', 'image.prune'),
  r('POST', '/images/{name}/push', 'image.push', { response: 'stream' }),
  r('POST', '/images/{name}/tag', 'image.tag'),
  r('DELETE', '/images/{name}', 'image.remove'),
  r('POST', '/build', 'image.build', { response: 'stream' }),
  r('POST', '/build/prune', 'image.prune'),
  r('POST', '/build/cancel', 'image.build'),
  // volumes
  r('GET', '/volumes', 'volume.list'),
  r('POST', '/volumes/create', 'volume.create', { body: 'volume-create' }),
  r('POST', '/volumes/prune', 'volume.prune'),
  r('GET', '/volumes/{name}', 'volume.inspect'),
  r('PUT', '/volumes/{name}', 'volume.update'),
  r('DELETE', '/volumes/{name}', 'volume.remove'),
  // networks
  r('GET', '/networks', 'network.list'),
  r('GET', '/networks/', 'network.list'),
  r('POST', '/networks/create', 'network.create'),
  r('POST', '/networks/prune', 'network.prune'),
  r('POST', '/networks/{name}/connect', 'network.connect'),
  r('POST', '/networks/{name}/disconnect', 'network.disconnect'),
  r('GET', '/networks/{name}', 'network.inspect'),
  r('DELETE', '/networks/{name}', 'network.remove'),
  // plugins
  r('GET', '/plugins', 'plugin.list'),
  r('GET', '/plugins/privileges', 'plugin.privileges'),
  r('GET', '/plugins/{name}/json', 'plugin.inspect'),
  r('POST', '/plugins/pull', 'plugin.pull', { response: 'stream' }),
  r('POST', '/plugins/create', 'plugin.create'),
  r('POST', '/plugins/{name}/enable', 'plugin.enable'),
  r('POST', '/plugins/{name}/disable', 'plugin.disable'),
  r('POST', '/plugins/{name}/push', 'plugin.push', { response: 'stream' }),
  r('POST', '/plugins/{name}/upgrade', 'plugin.upgrade', { response: 'stream' }),
  r('POST', '/plugins/{name}/set', 'plugin.set'),
  r('DELETE', '/plugins/{name}', 'plugin.remove'),
  // swarm
  r('GET', '/swarm', 'swarm.inspect'),
  r('GET', '/swarm/unlockkey', 'swarm.unlockkey'),
  r('POST', '/swarm/init', 'swarm.init'),
  r('POST', '/swarm/join', 'swarm.join'),
  r('POST', '/swarm/leave', 'swarm.leave'),
  r('POST', '/swarm/update', 'swarm.update'),
  r('POST', '/swarm/unlock', 'swarm.unlock'),
  r('GET', '/services', 'service.list'),
  r('POST', '/services/create', 'service.create', { body: 'service-spec' }),
  r('GET', '/services/{name}/logs', 'service.logs', { response: 'stream' }),
  r('POST', '/services/{name}/update', 'service.update', { body: 'service-spec' }),
  r('GET', '/services/{name}', 'service.inspect'),
  r('DELETE', '/services/{name}', 'service.remove'),
  r('GET', '/nodes', 'node.list'),
  r('POST', '/nodes/{name}/update', 'node.update'),
  r('GET', '/nodes/{name}', 'node.inspect'),
  r('DELETE', '/nodes/{name}', 'node.remove'),
  r('GET', '/tasks', 'task.list'),
  r('GET', '/tasks/{name}/logs', 'task.logs', { response: 'stream' }),
  r('GET', '/tasks/{name}', 'task.inspect'),
  r('GET', '/secrets', 'secret.list'),
  r('POST', '/secrets/create', 'secret.create'),
  r('POST', '/secrets/{name}/update', 'secret.update'),
  r('GET', '/secrets/{name}', 'secret.inspect'),
  r('DELETE', '/secrets/{name}', 'secret.remove'),
  r('GET', '/configs', 'config.list'),
  r('POST', '/configs/create', 'config.create'),
  r('POST', '/configs/{name}/update', 'config.update'),
  r('GET', '/configs/{name}', 'config.inspect'),
  r('DELETE', '/configs/{name}', 'config.remove'),
  // opaque channels (BuildKit): classified so a rule can name them, but their contents are not analysed
  r('POST', '/session', 'session', { response: 'hijack' }),
  r('POST', '/grpc', 'grpc', { response: 'hijack' }),
  r('GET', '/distribution/{name}/json', 'distribution'),
];

/** The route dockerd would dispatch to, or undefined for an unknown route (denied by default). */
export function classifyRoute(req: CanonicalRequest): Route | undefined {
  for (const def of ROUTES) {
    if (!def.methods.includes(req.method)) continue;
    const m = def.pattern.exec(req.path);
    if (!m) continue;
    let action = def.action;
    // POST /images/create imports from a tarball or URL when fromSrc is set, else pulls (moby postImagesCreate).
    if (action === 'image.pull' && !req.query.get('fromImage')) action = 'image.import';
    return {
      action,
      response: def.response ?? 'plain',
      ...(m[1] !== undefined ? { name: m[1] } : {}),
      ...(def.body ? { body: def.body } : {}),
    };
  }
  return undefined;
}
