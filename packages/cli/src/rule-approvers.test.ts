import { describe, expect, it } from '@jest/globals';
import type { RuleConfig } from '@agentgate/core';
import { approversInForce, everyApprover } from './rule-approvers.js';

const rule = (name: string, approvers?: string[]): RuleConfig => ({
  name,
  match: { commands: ['DELETE'] },
  action: 'approve',
  ...(approvers === undefined ? {} : { approvers }),
});
const config = {
  rules: [rule('own', ['group:security']), rule('default'), rule('empty', [])],
  approvals: { timeoutMs: 120_000, approvers: ['group:dba'] },
};

describe('approversInForce', () => {
  it("is the rule's approvers, else approvals.approvers, as when a command is held; undefined for a gone rule", () => {
    expect(approversInForce(config, 'own')).toEqual(['group:security']);
    expect(approversInForce(config, 'default')).toEqual(['group:dba']);
    expect(approversInForce(config, 'empty')).toEqual(['group:dba']);
    expect(approversInForce(config, 'removed')).toBeUndefined();
  });

  it('every approver reference in force, once each', () => {
    expect(everyApprover({ ...config, rules: [...config.rules, rule('again', ['group:dba'])] })).toEqual([
      'group:dba',
      'group:security',
    ]);
  });
});
