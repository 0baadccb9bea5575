/**
 * From an authenticated client to a relaying session: the recorded session opened (session-lifecycle in core),
 * masking loaded, SQL analysis opened, the upstream connection logged in with the listener's credentials. A
 * refusal at any step ends the connection with the gateway's own error: the client never sees the upstream's
 * complaint about the gateway's credentials, the operator's log does.
 */
import { isAgentgateError, type ClientInfo, type EndCause, type GatedSession } from '@agentgate/core';
import type { ClientRelay } from './client-relay.js';
import type { EngineShared } from './engine-shared.js';
import { Relay } from './relay.js';
import { SessionMasking } from './session-masking.js';
import type { OpenedResources } from './session.js';
import type { Login } from './startup.js';
import { openUpstream, UpstreamRejected, type UpstreamConnection } from './upstream.js';

export interface ConnectOptions {
  readonly shared: EngineShared;
  readonly io: ClientRelay;
  readonly login: Login;
  readonly client: ClientInfo;
  /** The connection's signal (gateway shutdown). */
  readonly signal: AbortSignal;
  /** Filled in as each step opens something, so closing meanwhile releases it. */
  readonly opened: OpenedResources;
  /** The connection, asked after every await whether it has closed meanwhile. */
  readonly connection: { isClosed(): boolean };
  fatal(sqlstate: string, message: string, cause?: EndCause): void;
  close(cause: EndCause): void;
  /** The session's `ended` signal aborted. */
  onSessionEnded(session: GatedSession): void;
  /** The upstream connection closed. */
  onUpstreamClose(): void;
}

/**
 * SQLSTATE class 28 (invalid authorization) from the upstream at login: the listener's upstream credentials, not
 * the client's, were refused.
 */
function isUpstreamLoginFailure(err: UpstreamRejected): boolean {
  return err.sqlstate.startsWith('28');
}

/** The relay for the authenticated client, or undefined when the connection was ended (and said why). */
export async function connectSession(options: ConnectOptions): Promise<Relay | undefined> {
  const { shared, login, io, opened } = options;
  const { listener, deps } = shared;
  let session: GatedSession;
  try {
    session = deps.sessions.open({
      listener: listener.name,
      protocol: 'postgres',
      identity: login.identity,
      client: options.client,
      detail: {
        database: login.database,
        user: login.user,
        application_name: login.params.get('application_name') ?? null,
      },
      signal: options.signal,
      log: deps.log,
    });
  } catch (err) {
    deps.log.error('cannot open a transcript session', { err });
    options.fatal('53000', 'agentgate: the transcript store is unavailable; refusing the session');
    return undefined;
  }
  opened.session = session;
  session.ended.addEventListener('abort', () => options.onSessionEnded(session), { once: true });
  const masking = new SessionMasking(shared, login.identity, login.database, session.log);
  const analysis = await shared.analysis.openSession({
    upstream: listener.upstream,
    database: login.database,
    log: session.log,
  });
  opened.analysis = analysis;
  if (options.connection.isClosed()) return undefined;
  const upstream = await loginUpstream(options, session);
  if (upstream === undefined) return undefined;
  if (options.connection.isClosed()) {
    upstream.socket.destroy();
    return undefined;
  }
  const relay = new Relay({
    shared,
    io,
    session,
    analysis,
    masking,
    upstream,
    login,
    fatal: options.fatal,
    close: options.close,
    connection: options.connection,
  });
  io.attachUpstream(upstream.socket, upstream.reads, {
    data: (chunk) => {
      try {
        shared.bytes.upstreamToClient += relay.upstreamData(chunk);
      } catch (err) {
        session.log.error('upstream relay failed', { err });
        options.fatal('08006', 'agentgate: invalid data from the upstream database');
      }
    },
    error: (err) => session.log.warn('upstream socket error', { err: err.message }),
    close: options.onUpstreamClose,
  });
  const refusal = await masking.load();
  if (refusal) {
    options.fatal(refusal.sqlstate, refusal.message);
    return undefined;
  }
  return options.connection.isClosed() ? undefined : relay;
}

/** The upstream connection, logged in as the listener's upstream user; undefined when the connection was ended. */
async function loginUpstream(
  options: ConnectOptions,
  session: GatedSession,
): Promise<UpstreamConnection | undefined> {
  const { shared, login } = options;
  const { listener, deps } = shared;
  const startup: Record<string, string> = { database: login.database };
  for (const [name, value] of login.params) if (name !== 'user' && name !== 'database') startup[name] = value;
  const abort = new AbortController();
  const onAbort = (): void => abort.abort();
  options.signal.addEventListener('abort', onAbort, { once: true });
  try {
    // Every answer of this connection is relayed: read into slabs (plain TCP only, see openUpstream).
    return await openUpstream(listener.upstream, startup, abort.signal, { slabReads: true });
  } catch (err) {
    if (err instanceof UpstreamRejected && isUpstreamLoginFailure(err)) {
      deps.metrics.upstreamError(listener.name, 'postgres', 'login');
      session.log.error('upstream login failed: check the listener upstream credentials', {
        listener: listener.name,
        upstream: `${listener.upstream.host}:${listener.upstream.port}`,
        upstreamUser: listener.upstream.user,
        sqlstate: err.sqlstate,
        upstreamMessage: err.message,
      });
      options.fatal(
        '08006',
        `agentgate: upstream login failed for listener ${listener.name}; the operator must fix the upstream credentials`,
        { kind: 'failed', message: `upstream login failed: ${err.message}` },
      );
      return undefined;
    }
    deps.metrics.upstreamError(listener.name, 'postgres', 'connect');
    if (err instanceof UpstreamRejected) {
      // The upstream refused the client's own request (a database that does not exist): relayed as it is.
      options.io.writeClient(err.errorMessage);
      options.close({ kind: 'failed', message: `upstream refused: ${err.message}` });
      return undefined;
    }
    session.log.warn('upstream connection failed', {
      err: isAgentgateError(err) ? err.message : String(err),
    });
    options.fatal('08006', 'agentgate: cannot connect to the upstream database');
    return undefined;
  } finally {
    options.signal.removeEventListener('abort', onAbort);
  }
}
