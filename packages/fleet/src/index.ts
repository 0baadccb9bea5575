export { FleetDatabase, type FleetDatabaseOptions } from './fleet-database.js';
export {
  FleetNotifications,
  nodeClaimClass,
  type FleetNotificationsOptions,
  type NotificationSubscriber,
} from './fleet-notifications.js';
export { describeFleetDatabase } from './connection.js';
export {
  knownSchemaVersion,
  migrations,
  readerRole,
  writerRole,
  NewerSchemaError,
  type Migration,
  type MigrationOutcome,
} from './migrations.js';
export { Shipper, type ShipperOptions, type ShipSource, type ShipStatus } from './shipper.js';
export { positionFileFor, readShipPosition, type ShipPosition } from './ship-position.js';
export { FleetReader, type FleetSessionSummary } from './fleet-reader.js';
export {
  verifyFleet,
  fleetKeys,
  addFleetKeys,
  type FleetKey,
  type FleetVerifyLimits,
} from './fleet-verify.js';
// The batch encodings themselves, for the shipping benchmark's comparison of insert paths.
export { shipRows, insertBatchSql, insertBatchValues, type ShipRows } from './ship-rows.js';
export { copyEventsData, copyEventsSql } from './copy-events.js';
export {
  FleetConsoleQueries,
  type FleetActivityBucket,
  type FleetConsoleFilter,
  type FleetConsolePage,
  type FleetCursor,
  type FleetNode,
} from './fleet-console-queries.js';
export { FleetApprovals, approvalsChannel, type FleetApprovalsOptions } from './approvals-sharing.js';
export {
  FleetSshKeys,
  sshKeysChannel,
  type FleetSshKeysOptions,
  type FleetSshKeyRegistration,
  type FleetSshKeyRevocation,
} from './ssh-keys.js';
