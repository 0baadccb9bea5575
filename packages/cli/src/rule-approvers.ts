import type { AgentgateConfig, PrincipalRef } from '@agentgate/core';

type ApproverSections = Pick<AgentgateConfig, 'rules' | 'approvals'>;

/**
 * Who approves a rule's held commands under this configuration: the rule's `approvers`, else `approvals.approvers`
 * (as the gate and the broker choose them when a command is held); undefined when no rule has that name.
 */
export function approversInForce(
  config: ApproverSections,
  rule: string,
): readonly PrincipalRef[] | undefined {
  const found = config.rules.find((r) => r.name === rule);
  if (found === undefined) return undefined;
  return found.approvers !== undefined && found.approvers.length > 0
    ? found.approvers
    : config.approvals.approvers;
}

/** Every approver reference in force: `approvals.approvers` and each rule's `approvers` (the console's approver role). */
export function everyApprover(config: ApproverSections): PrincipalRef[] {
  return [...new Set([...config.approvals.approvers, ...config.rules.flatMap((r) => r.approvers ?? [])])];
}
