import { describe, expect, it } from '@jest/globals';
import { useLocalIssuer } from './local-issuer-fixture.js';

// `sub` becomes the identity's name and the groups claim its groups; both are written as they are to logs, the
// record and `agentgate sessions list`. A line break or escape in them would let a token forge lines there.
const local = useLocalIssuer();
const mint = (sub: string, groups: unknown): Promise<string> => local.mint(sub, groups);

describe('text of the sub and groups claims', () => {
  it('takes printable names, including non-ASCII ones', async () => {
    await expect(
      local.service.verifyToken(await mint('zoë@example.com', ['dba', 'équipe'])),
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
    await expect(local.service.verifyToken(await mint(sub, ['dba']))).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'bad-claims' },
    });
  });

  it('refuses a group with a control character, in an array or alone', async () => {
    for (const groups of [['dba', 'x\ny'], 'x\u001b[0m'])
      await expect(local.service.verifyToken(await mint('devin', groups))).rejects.toMatchObject({
        code: 'AUTH_FAILED',
        detail: { reason: 'bad-claims' },
      });
  });
});

describe('times in exp and nbf', () => {
  it.each([
    ['exp', { exp: 1e13 }],
    ['nbf', { nbf: -1e13 }],
  ])('refuses %s past what a date can name, as a bad claim', async (_what, claims) => {
    await expect(local.service.verifyToken(await local.mint('devin', ['dba'], claims))).rejects.toMatchObject(
      {
        code: 'AUTH_FAILED',
        detail: { reason: 'bad-claims' },
      },
    );
  });
});
