export { ApprovalBrokerImpl, createApprovalBroker } from './approval-broker.js';
export { sendApprovalWebhook, type WebhookDecision } from './webhook.js';
export type { ApprovalBrokerOptions, ApprovalEvent, ApprovalMetricsSink, PendingApproval } from './types.js';
