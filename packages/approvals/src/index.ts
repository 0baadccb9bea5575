export { ApprovalBrokerImpl, createApprovalBroker } from './approval-broker.js';
export type { ApprovalBrokerOptions, ApprovalEvent, ApprovalMetricsSink, PendingApproval } from './types.js';
