import { describe, expect, it } from '@jest/globals';
import { useLocalIssuer } from './local-issuer-fixture.js';

// A console sign-in link is a JWT of a configured issuer with `purpose: console-link`. It signs in once; if the
// listeners and the admin API took it as a bearer token it would stay good for up to a day after that.
const local = useLocalIssuer();
const mint = (extraClaims: object = {}): Promise<string> => local.mint('bob', ['dba'], extraClaims);

describe('a JWT with a purpose', () => {
  it('is refused where no purpose is asked for (listeners, the admin API)', async () => {
    const link = await mint({ purpose: 'console-link', jti: 'j1' });
    await expect(local.service.verifyToken(link)).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'wrong-purpose' },
    });
  });

  it('is accepted where its purpose is asked for, and only that purpose', async () => {
    const link = await mint({ purpose: 'console-link', jti: 'j2' });
    await expect(local.service.verifyToken(link, { purpose: 'console-link' })).resolves.toMatchObject({
      name: 'bob',
    });
    // Verified once and cached: the cache must not let it through where no purpose is asked for.
    await expect(local.service.verifyToken(link)).rejects.toMatchObject({
      detail: { reason: 'wrong-purpose' },
    });
    await expect(local.service.verifyToken(link, { purpose: 'other' })).rejects.toMatchObject({
      detail: { reason: 'wrong-purpose' },
    });
  });

  it('an agent token without a purpose is good as before, and not as a link', async () => {
    const agent = await mint();
    await expect(local.service.verifyToken(agent)).resolves.toMatchObject({ name: 'bob', groups: ['dba'] });
    await expect(local.service.verifyToken(agent, { purpose: 'console-link' })).rejects.toMatchObject({
      detail: { reason: 'wrong-purpose' },
    });
  });
});
