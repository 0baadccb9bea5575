import { describe, expect, it } from '@jest/globals';
import { CredentialLease, type Identity } from '@agentgate/core';
import { BrowserSessions, csrfTokenMatches } from './browser-sessions.js';

const person = (lease?: CredentialLease): Identity => ({
  name: 'bob',
  groups: ['auditors'],
  source: 'oidc',
  ...(lease === undefined ? {} : { lease }),
});

describe('BrowserSessions', () => {
  it('finds a session by its cookie value until it expires, and not by a malformed or unknown one', () => {
    let now = 1_000;
    const sessions = new BrowserSessions(() => now);
    const s = sessions.create(person(), 2_000, 'link');
    expect(sessions.get(s.id)).toBe(s);
    expect(sessions.get(undefined)).toBeUndefined();
    expect(sessions.get(`${s.id}x`)).toBeUndefined();
    expect(sessions.get('A'.repeat(43))).toBeUndefined();
    now = 2_000;
    expect(sessions.get(s.id)).toBeUndefined();
  });

  it('ends a session whose credential was revoked (its issuer removed by a reload) before its expiry', () => {
    const lease = new CredentialLease(Date.now() + 3_600_000);
    const sessions = new BrowserSessions();
    const s = sessions.create(person(lease), Date.now() + 3_600_000, 'link');
    expect(sessions.get(s.id)).toBe(s);
    lease.revoke('issuer local was removed from identity.oidc by a reload');
    expect(sessions.get(s.id)).toBeUndefined();
    expect(sessions.size).toBe(0);
  });

  it('matches only its own CSRF token', () => {
    const sessions = new BrowserSessions();
    const a = sessions.create(person(), Date.now() + 60_000, 'oidc');
    const b = sessions.create(person(), Date.now() + 60_000, 'oidc');
    expect(csrfTokenMatches(a, a.csrfToken)).toBe(true);
    expect(csrfTokenMatches(a, b.csrfToken)).toBe(false);
    expect(csrfTokenMatches(a, undefined)).toBe(false);
    expect(csrfTokenMatches(a, '')).toBe(false);
  });
});
