import { describe, expect, it } from '@jest/globals';
import { hasControlCharacters } from '@agentgate/core';
import { readGroups } from './oidc-signin.js';

describe("the console's reading of an IdP's claims", () => {
  it('refuses groups with control characters, as the listeners refuse them in tokens', () => {
    expect(readGroups({ groups: ['dba', 'ops'] }, 'groups')).toEqual(['dba', 'ops']);
    expect(() => readGroups({ groups: ['dba\nadmins'] }, 'groups')).toThrow(/control characters/);
    expect(() => readGroups({ groups: 'dba\u001b[2J' }, 'groups')).toThrow(/control characters/);
  });

  it('tells a name with a line break, ESC, DEL or a C1 control from a printable one', () => {
    for (const bad of ['alice\nidentity: root', 'alice\r', '\u001b[31malice', 'al\u007fice', 'al\u009bice'])
      expect(hasControlCharacters(bad)).toBe(true);
    for (const good of ['alice', 'Алиса', 'alice@example.com', 'a b'])
      expect(hasControlCharacters(good)).toBe(false);
  });
});
