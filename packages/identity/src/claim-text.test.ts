import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { localIssuer, type LocalIssuer } from './local-issuer-fixture.js';
import { generateSigningKeyPair, mintToken } from './local-idp.js';

// `sub` becomes the identity's name and the groups claim its groups; both are written as they are to logs, the
// record and `agentgate sessions list`. A line break or escape in them would let a token forge lines there.
let privateJwk: object;
let issuer: LocalIssuer;
let service: LocalIssuer['service'];

beforeAll(async () => {
  const keys = await generateSigningKeyPair('ES256');
  privateJwk = keys.privateJwk;
  issuer = await localIssuer(keys.jwks);
  service = issuer.service;
});

afterAll(() => issuer.remove());

const mint = (sub: string, groups: unknown): Promise<string> =>
  mintToken({
    privateJwk,
    sub,
    groups: groups as string[],
    ttlSeconds: 600,
    issuer: 'local',
    audience: 'agentgate',
  });

describe('text of the sub and groups claims', () => {
  it('takes printable names, including non-ASCII ones', async () => {
    await expect(
      service.verifyToken(await mint('zoë@example.com', ['dba', 'équipe'])),
    ).resolves.toMatchObject({
      name: 'zoë@example.com',
      groups: ['dba', 'équipe'],
    });
  });

  it.each([
    ['a line break', 'devin\nidentity: root'],
    ['a carriage return', 'devin\r'],
    ['an ESC sequence', 'devin\u001b[2K'],
    ['a NUL', 'devin\u0000'],
    ['an 8-bit CSI', 'devin\u009b2K'],
  ])('refuses a sub with %s', async (_what, sub) => {
    await expect(service.verifyToken(await mint(sub, ['dba']))).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'bad-claims' },
    });
  });

  it('refuses a group with a control character, in an array or alone', async () => {
    for (const groups of [['dba', 'x\ny'], 'x\u001b[0m'])
      await expect(service.verifyToken(await mint('devin', groups))).rejects.toMatchObject({
        code: 'AUTH_FAILED',
        detail: { reason: 'bad-claims' },
      });
  });
});
