import { dirname, isAbsolute, join, resolve } from 'node:path';
import type {
  DockerListenerConfig,
  ListenerConfig,
  PostgresListenerConfig,
  SshListenerConfig,
  TlsConfig,
  UnauthenticatedLimits,
} from '@agentgate/core';
import { child, type Checker, type Mapping } from './checker.js';
import { checkSshPublicKey } from './identity-section.js';

/** `test` listeners exist only in tests (constructed in code by the harness), never in a config file. */
export const PROTOCOLS = ['postgres', 'ssh', 'docker'] as const;
const MiB = 1024 * 1024;
const BASE_KEYS = ['name', 'protocol', 'listen', 'allow', 'default'];
const LISTENER_KEYS: Record<(typeof PROTOCOLS)[number], readonly string[]> = {
  postgres: [
    ...BASE_KEYS,
    'tls',
    'allowCleartext',
    'upstream',
    'maxMessageBytes',
    'recordRows',
    'dynamicSql',
    'loginTimeout',
    'maxUnauthenticated',
    'maxUnauthenticatedPerSource',
  ],
  ssh: [
    ...BASE_KEYS,
    'hostKey',
    'upstream',
    'shell',
    'unknownPrograms',
    'envAllow',
    'maxAuthTries',
    'authPenaltyMax',
  ],
  docker: [
    ...BASE_KEYS,
    'tls',
    'upstream',
    'identity',
    'socketMode',
    'maxBodyBytes',
    'unknownPrograms',
    'headersTimeout',
    'keepAliveTimeout',
    'sessionLinger',
    'maxUnauthenticated',
    'maxUnauthenticatedPerSource',
  ],
};

/**
 * `host:port` (IPv6 as `[::1]:port`; port 0 picks a free port), or `unix:/path` where `allowUnix`.
 * A relative unix path resolves against the config file's directory.
 */
export function checkListenAddress(
  checker: Checker,
  value: unknown,
  path: string,
  allowUnix: boolean,
): string | undefined {
  const text = checker.string(value, path);
  if (text === undefined) return undefined;
  const expected = allowUnix ? 'an address "host:port" or "unix:/path"' : 'an address "host:port"';
  if (text.startsWith('unix:')) {
    const socketPath = text.slice('unix:'.length);
    if (!allowUnix || socketPath.length === 0) {
      checker.expected(
        path,
        allowUnix ? expected : `${expected} (unix sockets are only for docker listeners)`,
        text,
      );
      return undefined;
    }
    return `unix:${isAbsolute(socketPath) ? socketPath : resolve(checker.baseDir, socketPath)}`;
  }
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (match === null || Number(match[2]) > 65535) {
    checker.expected(path, `${expected} with a port from 0 to 65535`, text);
    return undefined;
  }
  return text;
}

function readTls(checker: Checker, value: unknown, path: string): TlsConfig | undefined {
  const m = checker.mapping(value, path, ['cert', 'key']);
  if (m === undefined) return undefined;
  const cert = checker.filePath(m.cert, child(path, 'cert'), true);
  const key = checker.filePath(m.key, child(path, 'key'), true);
  return cert === undefined || key === undefined ? undefined : { cert, key };
}

const unknownProgramsModes = ['match-all', 'deny'] as const;

function readPostgres(
  checker: Checker,
  m: Mapping,
  path: string,
): Omit<PostgresListenerConfig, 'name' | 'listen' | 'allow'> | undefined {
  const up = checker.mapping(m.upstream, child(path, 'upstream'), [
    'host',
    'port',
    'user',
    'password',
    'database',
    'tls',
  ]);
  const upPath = child(path, 'upstream');
  const host = up && checker.string(up.host, child(upPath, 'host'));
  const port = up && checker.integer(up.port, child(upPath, 'port'), { min: 1, max: 65535, fallback: 5432 });
  const user = up && checker.string(up.user, child(upPath, 'user'));
  const password =
    up && checker.optionalString(up.password, child(upPath, 'password'), { nonEmpty: false, secret: true });
  const database = up && checker.optionalString(up.database, child(upPath, 'database'));
  const upstreamTls = up?.tls === undefined ? undefined : checker.boolean(up.tls, child(upPath, 'tls'));
  const tls = m.tls === undefined ? undefined : readTls(checker, m.tls, child(path, 'tls'));
  const allowCleartext = checker.boolean(m.allowCleartext, child(path, 'allowCleartext'), false);
  const maxMessageBytes = checker.size(m.maxMessageBytes, child(path, 'maxMessageBytes'), 64 * MiB);
  const recordRows = checker.integer(m.recordRows, child(path, 'recordRows'), { min: 0, fallback: 100 });
  const dynamicSql = checker.oneOf(
    m.dynamicSql,
    child(path, 'dynamicSql'),
    ['match-all', 'deny'],
    'match-all',
  );
  if (host === undefined || port === undefined || user === undefined || allowCleartext === undefined)
    return undefined;
  let loginTimeoutMs = checker.duration(m.loginTimeout, child(path, 'loginTimeout'), 60_000);
  if (loginTimeoutMs !== undefined && loginTimeoutMs <= 0) {
    checker.expected(child(path, 'loginTimeout'), 'a positive duration such as 60s', m.loginTimeout);
    loginTimeoutMs = undefined;
  }
  const unauthenticated = readUnauthenticatedLimits(checker, m, path);
  if (maxMessageBytes === undefined || recordRows === undefined || dynamicSql === undefined) return undefined;
  if (loginTimeoutMs === undefined || unauthenticated === undefined) return undefined;
  return {
    protocol: 'postgres',
    ...(tls === undefined ? {} : { tls }),
    allowCleartext,
    upstream: {
      host,
      port,
      user,
      ...(password === undefined ? {} : { password }),
      ...(database === undefined ? {} : { database }),
      ...(upstreamTls === undefined ? {} : { tls: upstreamTls }),
    },
    maxMessageBytes,
    recordRows,
    dynamicSql,
    loginTimeoutMs,
    unauthenticated,
  };
}

function readSsh(
  checker: Checker,
  m: Mapping,
  path: string,
  name: string,
  storePath: string,
): Omit<SshListenerConfig, 'name' | 'listen' | 'allow'> | undefined {
  const upPath = child(path, 'upstream');
  const up = checker.mapping(m.upstream, upPath, [
    'host',
    'port',
    'user',
    'privateKey',
    'password',
    'hostKey',
  ]);
  const host = up && checker.string(up.host, child(upPath, 'host'));
  const port = up && checker.integer(up.port, child(upPath, 'port'), { min: 1, max: 65535, fallback: 22 });
  const user = up && checker.string(up.user, child(upPath, 'user'));
  const privateKey =
    up?.privateKey === undefined
      ? undefined
      : checker.filePath(up.privateKey, child(upPath, 'privateKey'), true);
  const password = up && checker.optionalString(up.password, child(upPath, 'password'), { secret: true });
  if (up !== undefined && up.privateKey === undefined && up.password === undefined) {
    checker.report(
      upPath,
      'expected privateKey or password (how the gateway logs in upstream), found neither',
    );
  }
  const upstreamHostKey = up && checkSshPublicKey(checker, up.hostKey, child(upPath, 'hostKey'));
  // Default host key location: beside the transcript store, so it lives in the state directory.
  const hostKey =
    m.hostKey === undefined
      ? join(dirname(storePath), `ssh_host_ed25519_key.${name}`)
      : checker.filePath(m.hostKey, child(path, 'hostKey'));
  const shell = checker.oneOf(m.shell, child(path, 'shell'), ['allow', 'deny'], 'allow');
  const unknownPrograms = checker.oneOf(
    m.unknownPrograms,
    child(path, 'unknownPrograms'),
    unknownProgramsModes,
    'match-all',
  );
  const envAllow = checker.strings(m.envAllow, child(path, 'envAllow'), ['LANG', 'LC_*', 'TERM']);
  const maxAuthTries = checker.integer(m.maxAuthTries, child(path, 'maxAuthTries'), {
    min: 1,
    max: 100,
    fallback: 6,
  });
  const authPenaltyMaxMs = checker.duration(m.authPenaltyMax, child(path, 'authPenaltyMax'), 10_000);
  if (
    host === undefined ||
    port === undefined ||
    user === undefined ||
    upstreamHostKey === undefined ||
    hostKey === undefined
  )
    return undefined;
  if (shell === undefined || unknownPrograms === undefined || envAllow === undefined) return undefined;
  if (maxAuthTries === undefined || authPenaltyMaxMs === undefined) return undefined;
  return {
    protocol: 'ssh',
    hostKey,
    upstream: {
      host,
      port,
      user,
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(password === undefined ? {} : { password }),
      hostKey: upstreamHostKey,
    },
    shell,
    unknownPrograms,
    envAllow,
    maxAuthTries,
    authPenaltyMaxMs,
  };
}

function readSocketMode(checker: Checker, value: unknown, path: string): number | undefined {
  if (value === undefined) return 0o660;
  // Octal digits as written ("0660", 0660 or "660"), or a YAML octal integer (0o660).
  if (typeof value === 'string' && /^0?o?[0-7]{3,4}$/.test(value))
    return parseInt(value.replace(/^0?o?/, ''), 8);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0o7777) return value;
  checker.expected(path, 'a file mode such as 0660 or "0660"', value);
  return undefined;
}

/** Node's timers wait at most 2^31-1 ms; a day is far more than any of these limits needs. */
const MAX_TIMER_MS = 24 * 3_600_000;

/** A duration a timer waits for: 0 (no limit) up to a day. */
function timerDuration(
  checker: Checker,
  value: unknown,
  path: string,
  fallbackMs: number,
): number | undefined {
  const ms = checker.duration(value, path, fallbackMs);
  if (ms === undefined || ms <= MAX_TIMER_MS) return ms;
  checker.expected(path, 'a duration of at most 24h', value);
  return undefined;
}

/**
 * `maxUnauthenticated` and `maxUnauthenticatedPerSource`, for the listeners whose engine says when a connection
 * authenticated (`ConnectionControl`): connections over either cap are closed as they are accepted.
 */
function readUnauthenticatedLimits(
  checker: Checker,
  m: Mapping,
  path: string,
): UnauthenticatedLimits | undefined {
  const maxConnections = checker.integer(m.maxUnauthenticated, child(path, 'maxUnauthenticated'), {
    min: 1,
    fallback: 128,
  });
  const maxPerSource = checker.integer(
    m.maxUnauthenticatedPerSource,
    child(path, 'maxUnauthenticatedPerSource'),
    { min: 1, fallback: 32 },
  );
  if (maxConnections === undefined || maxPerSource === undefined) return undefined;
  return { maxConnections, maxPerSource };
}

function readDocker(
  checker: Checker,
  m: Mapping,
  path: string,
  listen: string | undefined,
): Omit<DockerListenerConfig, 'name' | 'listen' | 'allow'> | undefined {
  const upPath = child(path, 'upstream');
  const up = checker.mapping(m.upstream, upPath, ['socket']);
  const socket = up && checker.filePath(up.socket, child(upPath, 'socket'));
  const tls = m.tls === undefined ? undefined : readTls(checker, m.tls, child(path, 'tls'));
  const identity = checker.optionalString(m.identity, child(path, 'identity'));
  if (identity !== undefined && listen !== undefined && !listen.startsWith('unix:')) {
    checker.report(
      child(path, 'identity'),
      `expected identity only on a unix-socket listener (its file mode is the access control), found listen ${listen}`,
    );
  }
  const socketMode = readSocketMode(checker, m.socketMode, child(path, 'socketMode'));
  const maxBodyBytes = checker.size(m.maxBodyBytes, child(path, 'maxBodyBytes'), 16 * MiB);
  const unknownPrograms = checker.oneOf(
    m.unknownPrograms,
    child(path, 'unknownPrograms'),
    unknownProgramsModes,
    'match-all',
  );
  const headersTimeoutMs = timerDuration(checker, m.headersTimeout, child(path, 'headersTimeout'), 60_000);
  const keepAliveTimeoutMs = timerDuration(
    checker,
    m.keepAliveTimeout,
    child(path, 'keepAliveTimeout'),
    30_000,
  );
  const sessionLingerMs = timerDuration(checker, m.sessionLinger, child(path, 'sessionLinger'), 2_000);
  const unauthenticated = readUnauthenticatedLimits(checker, m, path);
  if (
    socket === undefined ||
    socketMode === undefined ||
    maxBodyBytes === undefined ||
    unknownPrograms === undefined ||
    headersTimeoutMs === undefined ||
    keepAliveTimeoutMs === undefined ||
    sessionLingerMs === undefined ||
    unauthenticated === undefined
  )
    return undefined;
  return {
    protocol: 'docker',
    ...(tls === undefined ? {} : { tls }),
    upstream: { socket },
    ...(identity === undefined ? {} : { identity }),
    socketMode,
    maxBodyBytes,
    unknownPrograms,
    headersTimeoutMs,
    keepAliveTimeoutMs,
    sessionLingerMs,
    unauthenticated,
  };
}

/** Read one listener; `storePath` places default state files. */
export function readListener(
  checker: Checker,
  value: unknown,
  path: string,
  storePath: string,
): ListenerConfig | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    checker.expected(path, 'a listener mapping (name, protocol, listen, allow, upstream, ...)', value);
    return undefined;
  }
  const raw = value as Mapping;
  const protocol = checker.oneOf(raw.protocol, child(path, 'protocol'), PROTOCOLS);
  const m = checker.mapping(
    value,
    path,
    protocol === undefined ? [...new Set(Object.values(LISTENER_KEYS).flat())] : LISTENER_KEYS[protocol],
  );
  if (m === undefined) return undefined;
  const name = checker.string(m.name, child(path, 'name'));
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    checker.expected(child(path, 'name'), 'a name of letters, digits, "_", "." and "-"', name);
  const listen = checkListenAddress(checker, m.listen, child(path, 'listen'), protocol === 'docker');
  const allow = checker.principals(m.allow, child(path, 'allow'));
  // `default: deny` is allow-list mode: only what allow (or approve) rules permit runs.
  const defaultAction = checker.oneOf(m.default, child(path, 'default'), ['allow', 'deny'] as const, 'allow');
  if (protocol === undefined) return undefined;
  let specific: ReturnType<typeof readPostgres> | ReturnType<typeof readSsh> | ReturnType<typeof readDocker>;
  switch (protocol) {
    case 'postgres':
      specific = readPostgres(checker, m, path);
      break;
    case 'ssh':
      specific = readSsh(checker, m, path, name ?? 'ssh', storePath);
      break;
    case 'docker':
      specific = readDocker(checker, m, path, listen);
      break;
  }
  if (
    name === undefined ||
    listen === undefined ||
    allow === undefined ||
    defaultAction === undefined ||
    specific === undefined
  )
    return undefined;
  const config: ListenerConfig = { name, listen, allow, default: defaultAction, ...specific };
  return config;
}
