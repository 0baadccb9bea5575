export { ApprovalBrokerImpl, createApprovalBroker } from './approval-broker.js';
export type {
  ApprovalBrokerOptions,
  ApprovalEvent,
  ApprovalMetricsSink,
  ApprovalSharing,
  HeldApproval,
  PendingApproval,
  SettledApproval,
  SharedApproval,
  SharedDecision,
  WhenSharingDown,
} from './types.js';
