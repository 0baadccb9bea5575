import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentgateError, matchesPrincipal, type Identity, type IdentityService } from '@agentgate/core';
import { LINK_PURPOSE, OneTimeLinks } from './one-time-links.js';

// A stand-in for the identity service: "verifies" an unsigned JWT-shaped token (signatures are the identity
// package's job and are tested there); refuses one whose sub is "nobody".
const identity: IdentityService = {
  async verifyToken(token) {
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    if (claims['sub'] === 'nobody') throw new AgentgateError('AUTH_FAILED', 'bad signature');
    return { name: String(claims['sub']), groups: claims['groups'] as string[], source: 'oidc' } as Identity;
  },
  findSshKey: () => undefined,
  isAllowed: matchesPrincipal,
};

function token(claims: Record<string, unknown>): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'ES256' })}.${b64(claims)}.c2ln`;
}

const now = Math.floor(Date.now() / 1000);
const link = (extra: Record<string, unknown> = {}): string =>
  token({
    sub: 'alice',
    groups: ['dba'],
    jti: 'j-1',
    iat: now,
    exp: now + 600,
    purpose: LINK_PURPOSE,
    ...extra,
  });

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function ledger(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-links-'));
  dirs.push(dir);
  return join(dir, 'used.jsonl');
}

describe('one-time links', () => {
  it('signs in once; the second use is refused, also by a new instance reading the same ledger (a restart)', async () => {
    const file = ledger();
    const links = new OneTimeLinks(identity, file);
    await expect(links.inspect(link())).resolves.toMatchObject({ identity: { name: 'alice' }, jti: 'j-1' });
    await expect(links.redeem(link())).resolves.toMatchObject({ expiresAt: (now + 600) * 1000 });
    await expect(links.inspect(link())).rejects.toThrow('already used');
    await expect(links.redeem(link())).rejects.toThrow('already used');
    expect(readFileSync(file, 'utf8')).toContain('"j-1"');
    await expect(new OneTimeLinks(identity, file).redeem(link())).rejects.toThrow('already used');
  });

  it('lets only one of two concurrent redemptions through', async () => {
    const links = new OneTimeLinks(identity, ledger());
    const results = await Promise.allSettled([links.redeem(link()), links.redeem(link())]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('refuses tokens that are not console links, have no jti, live longer than 24h or do not verify', async () => {
    const links = new OneTimeLinks(identity, ledger());
    await expect(links.redeem(link({ purpose: undefined }))).rejects.toThrow('not a console sign-in link');
    await expect(links.redeem(link({ jti: undefined }))).rejects.toThrow('no jti');
    await expect(links.redeem(link({ exp: now + 25 * 3600 }))).rejects.toThrow('longer than 24h');
    await expect(links.redeem(link({ sub: 'nobody' }))).rejects.toThrow('bad signature');
    await expect(links.redeem('a-static-service-token')).rejects.toThrow('carries a JWT');
  });

  it('forgets expired ids when it loads the ledger', async () => {
    const file = ledger();
    const first = new OneTimeLinks(identity, file);
    await first.redeem(link({ jti: 'old', exp: now + 1 }));
    const later = new OneTimeLinks(identity, file, () => (now + 5) * 1000);
    await expect(later.inspect(link({ jti: 'other', exp: now + 600 }))).resolves.toBeDefined();
    expect(readFileSync(file, 'utf8')).not.toContain('"old"');
  });
});
