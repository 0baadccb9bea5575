import { describe, expect, it } from '@jest/globals';
import { AgentgateError, matchesPrincipal, type Identity, type IdentityService } from '@agentgate/core';
import { mayDecide } from './roles.js';

const identity: IdentityService = {
  verifyToken: () => Promise.reject(new AgentgateError('AUTH_FAILED', 'not used')),
  findSshKey: () => undefined,
  isAllowed: (who, refs) => matchesPrincipal(who, refs),
};
const alice: Identity = { name: 'alice', groups: ['dba'], source: 'token' };
const bob: Identity = { name: 'bob', groups: ['security'], source: 'token' };
const held = { identity: 'carol', approvers: ['group:dba', 'group:security'] };

describe('mayDecide', () => {
  it("allows the request's approvers while its rule's approvers in force still name them", () => {
    expect(mayDecide(bob, held, identity)).toEqual({ allowed: true });
    expect(mayDecide(bob, held, identity, ['group:security'])).toEqual({ allowed: true });
  });

  it('refuses an approver a reload removed from the rule, as the broker does', () => {
    expect(mayDecide(bob, held, identity, ['group:dba'])).toEqual({
      allowed: false,
      why: 'a reload changed the approvers of its rule, and you are not one of them',
    });
    expect(mayDecide(alice, held, identity, ['group:dba'])).toEqual({ allowed: true });
  });
});
