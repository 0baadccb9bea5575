import { describe, expect, it } from '@jest/globals';
import { md5Password, ScramClient } from './scram.js';

describe('ScramClient', () => {
  // RFC 7677 section 3 test vector.
  const serverFirst =
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

  it('computes the RFC 7677 client proof and checks the server signature', () => {
    const client = new ScramClient('pencil', { nonce: 'rOprNGfwEbeRWgbNEkqO', user: 'user' });
    expect(client.clientFirstMessage).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    expect(client.clientFinal(serverFirst)).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    expect(() => client.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow();
    expect(() => client.verifyServerFinal('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).toThrow(
      /signature mismatch/,
    );
  });

  it('refuses a server nonce that does not extend the client nonce', () => {
    const client = new ScramClient('pencil', { nonce: 'abc' });
    expect(() => client.clientFinal('r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')).toThrow(/invalid SCRAM/);
  });

  it('hashes md5 passwords as PostgreSQL does', () => {
    // md5(md5('secret' + 'app') + salt) with salt 01020304
    expect(md5Password('app', 'secret', Buffer.from([1, 2, 3, 4]))).toMatch(/^md5[0-9a-f]{32}$/);
    expect(md5Password('app', 'secret', Buffer.from([1, 2, 3, 4]))).not.toBe(
      md5Password('app', 'secret', Buffer.from([1, 2, 3, 5])),
    );
  });
});
