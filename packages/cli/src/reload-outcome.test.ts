import { describe, expect, it } from '@jest/globals';
import type { MaskingRuleConfig, RuleConfig } from '@agentgate/core';
import { scopedToAbsentListeners } from './reload-outcome.js';

const rule = (name: string, listeners?: string[]): RuleConfig => ({
  name,
  match: { commands: ['DROP'] },
  action: 'deny',
  ...(listeners === undefined ? {} : { listeners }),
});
const masking = (name: string, listeners: string[]): MaskingRuleConfig => ({
  name,
  columns: ['people.email'],
  detectors: [],
  replacement: '****',
  strategy: 'replace',
  listeners,
});

describe('scopedToAbsentListeners', () => {
  it('names the rules and masking rules a renamed listener leaves scoped to a listener that is not running', () => {
    const running = [{ name: 'db' }, { name: 'shell' }];
    const next = {
      rules: [
        rule('everywhere'),
        rule('on-db', ['db']),
        rule('renamed', ['prod-db']),
        rule('both', ['shell', 'prod-db']),
      ],
      masking: [masking('pii', ['prod-db']), masking('pii-db', ['db'])],
    };
    expect(scopedToAbsentListeners(running, next)).toEqual([
      { rule: 'renamed', listeners: ['prod-db'] },
      { rule: 'both', listeners: ['prod-db'] },
      { masking: 'pii', listeners: ['prod-db'] },
    ]);
    expect(scopedToAbsentListeners([...running, { name: 'prod-db' }], next)).toEqual([]);
  });
});
