export {
  createConsole,
  type ConsoleAction,
  type ConsoleHandler,
  type ConsoleOptions,
  type ConsoleStore,
} from './console-server.js';
export { LiveSessions, type LiveEvent, type LiveSession, type Terminator } from './live-sessions.js';
export { LINK_PURPOSE, MAX_LINK_TTL_SECONDS } from './one-time-links.js';
export {
  FleetSessionQuery,
  FleetUnavailable,
  type FleetSession,
  type FleetSessions,
} from './fleet-session-query.js';
export type { FleetNodeStatus, FleetStatus } from './pages/overview.js';
export {
  IndexedSessionQuery,
  storeRecords,
  type ConsoleSession,
  type SessionRecords,
  type ActivityBucket,
  type PageRequest,
  type SessionFilter,
  type SessionPage,
  type SessionQuery,
} from './session-query.js';
export type { ApprovalsSource, DecideFn } from './approvals-feed.js';
