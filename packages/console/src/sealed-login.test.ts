import { describe, expect, it } from '@jest/globals';
import { LoginSealer, type PendingLogin } from './sealed-login.js';

const login: PendingLogin = {
  state: 'st',
  codeVerifier: 'verifier',
  nonce: 'n',
  returnTo: '/approvals',
  expiresAt: 1_000,
};

describe('LoginSealer', () => {
  it('opens what it sealed, and nothing altered, foreign or malformed', () => {
    const sealer = new LoginSealer();
    const cookie = sealer.seal(login);
    expect(sealer.open(cookie)).toEqual(login);
    expect(cookie).not.toContain('verifier'); // sealed, not only signed
    const bytes = Buffer.from(cookie, 'base64url');
    bytes[bytes.length - 20]! ^= 1;
    expect(sealer.open(bytes.toString('base64url'))).toBeUndefined();
    expect(new LoginSealer().open(cookie)).toBeUndefined();
    for (const other of [undefined, '', 'st', 'A'.repeat(40), '%%%'])
      expect(sealer.open(other)).toBeUndefined();
  });

  it('seals each login apart: two seals of one login differ', () => {
    const sealer = new LoginSealer();
    expect(sealer.seal(login)).not.toBe(sealer.seal(login));
  });
});
