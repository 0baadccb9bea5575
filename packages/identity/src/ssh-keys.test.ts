import { describe, it, expect } from '@jest/globals';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialLease, isAgentgateError, type IdentityConfig } from '@agentgate/core';
import { createIdentityService } from './identity-service.js';
import { parseSshPublicKey } from './ssh-public-key.js';
import { hashStaticToken } from './static-tokens.js';

// Keys made with ssh-keygen; fingerprints as `ssh-keygen -l -f` printed them.
const ed25519 =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdDXaxRvwIYL3N6J/AT2DyPSk8GY46XDvSoSG8PbwrO test-ed25519@agentgate';
const rsa =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC6eaRHMkPO30fGQHoajsS8xj4fLeN9r0n7ZqWyQlWysgj9ziUdyrvT4wTr6Zk1KTPJwAJM/HEmcDLnQ/rSunuq0yjX9l7QaDg5+eRLTrfxzYUfWj8OrK4YkVyMm+aF6Dmz2awaXttXHfapai1PbR/oEKB7iV+8wXCC+gLUyF09gsIsgLFxjAt+Ei88zzJqoenhAUFTq0miwqUVrZ7vuat7wa0BOnk8+EKKzVYoEiIPGq0dC0VjJHN/tymw7LMr6HBfuhRmO49DrzhWoHkeahcTOiQLDURDYPNMiwKQ02abaJxdd777rGbI5HNirkgHLaPvW0CK6sMRcCkUR4OqEzMndfECAjVFrFpmmkmjDs0ZayYFiKS30hmoAY8+//f9xOlcHvjK9Zujvxnv+JJGSIOFSyw+lw2wAnvxnn8YaWrWT2Jm++CgQbnEPQrbJf+LF4+2yrsPD5/BKgnbKjXqc/4QHR8CSt2NBCSJaMwOedxrMO8R3a8szLtZUggz1NdZNyE= test-rsa@agentgate';
const ecdsa256 =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJMbQwLgpKF+MxfB878HJEifwqhBVrr6gEsrtQ2b2n80hzjuHzTPEJg036dQiVqQQH8/ISqHAm9sju+FXZj4ncc= test-ecdsa@agentgate';
const ecdsa384 =
  'ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBD9iyWZVUayRRQrD9LDyiUTViIDwf5KjFna7SE/Aottg7KgrPcKFRuhXI8ZE90ZsT4dS098a5iK8HwUY5e0OQhRM/cLxCIaH3qXKcuRqEheUgmIU3uznrdFECtY+ZKAoxA== e384';

const oidcIssuer = {
  issuer: 'https://idp',
  audience: 'agentgate',
  jwks: '/nonexistent/jwks.json', // read only when a token is verified
  groupsClaim: 'groups',
  clockSkewSeconds: 30,
};

const blobOf = (line: string): Buffer => Buffer.from(line.split(' ')[1] ?? '', 'base64');

function config(overrides: Partial<IdentityConfig> = {}): IdentityConfig {
  return {
    oidc: [],
    tokens: [{ name: 'ci-bot', sha256: hashStaticToken('s3cret-service-token'), groups: ['ci'] }],
    sshKeys: [
      { name: 'devin', publicKey: ed25519, groups: ['agents'] },
      { name: 'ops', publicKey: rsa, groups: ['ops'] },
    ],
    ...overrides,
  };
}

async function expectCode(fn: () => unknown, code: string): Promise<void> {
  try {
    await fn();
  } catch (err) {
    expect(isAgentgateError(err) ? err.code : err).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('parseSshPublicKey', () => {
  it('parses every supported key type with the fingerprint ssh-keygen prints', () => {
    const cases: [string, string, string][] = [
      [ed25519, 'ssh-ed25519', 'SHA256:MDeXSGkAm6nmJuuROve6b7pWClzWLAggpLb94MzytT4'],
      [rsa, 'ssh-rsa', 'SHA256:omdRhjlO9ml01RHDXxDLEdXCFNRe2zU/vVtFY/qPe7c'],
      [ecdsa256, 'ecdsa-sha2-nistp256', 'SHA256:xki3RzvVxJ+Rcc2nGJ0D8N4ue4HlHx1oOhtCYa6gzx8'],
      [ecdsa384, 'ecdsa-sha2-nistp384', 'SHA256:olyTkTwCUkqi5OP3g2lw0YdMW4sdXjpZ0dwYUul7gtU'],
    ];
    for (const [line, keyType, fingerprint] of cases) {
      const key = parseSshPublicKey(line);
      expect(key.keyType).toBe(keyType);
      expect(key.fingerprint).toBe(fingerprint);
      expect(key.blob.equals(blobOf(line))).toBe(true);
    }
    expect(parseSshPublicKey(ed25519).comment).toBe('test-ed25519@agentgate');
  });

  it('skips authorized_keys options and tolerates a missing comment', () => {
    const key = parseSshPublicKey(`no-pty,from="127.0.0.1" ${ed25519.split(' ').slice(0, 2).join(' ')}`);
    expect(key.fingerprint).toBe('SHA256:MDeXSGkAm6nmJuuROve6b7pWClzWLAggpLb94MzytT4');
    expect(key.comment).toBe('');
  });

  it('refuses malformed lines', async () => {
    await expectCode(() => parseSshPublicKey('ssh-dss AAAAB3NzaC1kc3M='), 'BAD_REQUEST');
    await expectCode(() => parseSshPublicKey('ssh-ed25519'), 'BAD_REQUEST');
    await expectCode(() => parseSshPublicKey('ssh-ed25519 not*base64'), 'BAD_REQUEST');
    // An ed25519 blob declared as ssh-rsa.
    await expectCode(() => parseSshPublicKey(`ssh-rsa ${ed25519.split(' ')[1]}`), 'BAD_REQUEST');
    // Truncated blob.
    await expectCode(
      () => parseSshPublicKey(`ssh-ed25519 ${blobOf(ed25519).subarray(0, 30).toString('base64')}`),
      'BAD_REQUEST',
    );
    // Trailing garbage after the key.
    await expectCode(
      () =>
        parseSshPublicKey(
          `ssh-ed25519 ${Buffer.concat([blobOf(ed25519), Buffer.from([0])]).toString('base64')}`,
        ),
      'BAD_REQUEST',
    );
  });
});

describe('IdentityService ssh keys', () => {
  it('matches configured keys by blob, with RSA offered under rsa-sha2-* names', async () => {
    const svc = await createIdentityService(config());
    expect(svc.findSshKey('ssh-ed25519', blobOf(ed25519))).toMatchObject({
      name: 'devin',
      groups: ['agents'],
      source: 'ssh-key',
    });
    expect(svc.findSshKey('rsa-sha2-256', blobOf(rsa))?.name).toBe('ops');
    expect(svc.findSshKey('rsa-sha2-512', blobOf(rsa))?.name).toBe('ops');
    expect(svc.findSshKey('ssh-ed25519', blobOf(ecdsa256))).toBeUndefined();
    expect(svc.findSshKey('ssh-rsa', blobOf(ed25519))).toBeUndefined();
  });

  it('refuses a config with a malformed key', async () => {
    await expect(
      createIdentityService(config({ sshKeys: [{ name: 'x', publicKey: 'ssh-ed25519 AAAA', groups: [] }] })),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('registers keys for a TTL, lists, renews, revokes and expires them', async () => {
    let now = 1_000_000;
    const svc = await createIdentityService(config(), { now: () => now });
    const alice = {
      name: 'alice',
      groups: ['dba'],
      source: 'oidc' as const,
      issuer: 'https://idp',
      // Good past every registration below (a lapsed token registers nothing); the registrations have leases of their own.
      lease: new CredentialLease(10_000_000),
    };

    const reg = await svc.sshKeys.register(ecdsa256, alice, 60_000);
    expect(reg).toMatchObject({
      fingerprint: 'SHA256:xki3RzvVxJ+Rcc2nGJ0D8N4ue4HlHx1oOhtCYa6gzx8',
      expiresAt: 1_060_000,
      keyType: 'ecdsa-sha2-nistp256',
    });
    const { lease, ...identity } = reg.identity;
    expect(identity).toEqual({ name: 'alice', groups: ['dba'], source: 'ssh-key' });
    // The registration's own lease, not the registering token's.
    expect(lease?.expiresAtMs).toBe(1_060_000);
    expect(svc.findSshKey('ecdsa-sha2-nistp256', blobOf(ecdsa256))?.name).toBe('alice');
    expect(svc.sshKeys.list().map((r) => r.fingerprint)).toEqual([reg.fingerprint]);

    // Another identity may not take over the key; the same identity renews it.
    await expectCode(() => svc.sshKeys.register(ecdsa256, { ...alice, name: 'mallory' }, 60_000), 'CONFLICT');
    now += 30_000;
    expect((await svc.sshKeys.register(ecdsa256, alice, 60_000)).expiresAt).toBe(1_090_000);

    now = 1_089_999;
    expect(svc.findSshKey('ecdsa-sha2-nistp256', blobOf(ecdsa256))?.name).toBe('alice');
    now = 1_090_000;
    expect(svc.findSshKey('ecdsa-sha2-nistp256', blobOf(ecdsa256))).toBeUndefined();
    expect(svc.sshKeys.list()).toEqual([]);

    const again = await svc.sshKeys.register(ecdsa384, alice, 1000);
    expect(await svc.sshKeys.revoke(again.fingerprint)).toBe(true);
    expect(await svc.sshKeys.revoke(again.fingerprint)).toBe(false);
    expect(svc.findSshKey('ecdsa-sha2-nistp384', blobOf(ecdsa384))).toBeUndefined();
  });

  it('carries renewals and revocations to the identities of connections made before a renewal', async () => {
    let now = 1_000_000;
    const svc = await createIdentityService(config(), { now: () => now });
    const alice = { name: 'alice', groups: ['dba'], source: 'oidc' as const };
    const before = (await svc.sshKeys.register(ecdsa256, alice, 60_000)).identity; // a connection made now holds this
    now += 50_000;
    const after = (await svc.sshKeys.register(ecdsa256, alice, 60_000)).identity;
    // The earlier connection lives as long as the renewed registration, not the one it was made with.
    expect(before.lease?.expiresAtMs).toBe(1_110_000);
    expect(after.lease).toBe(before.lease);
    expect(before.lease?.revoked).toBe(false);
    // In JSON a lease shows its end, nothing of who watches it.
    expect(JSON.parse(JSON.stringify(svc.sshKeys.list()[0])).identity.lease).toEqual({
      expiresAt: new Date(1_110_000).toISOString(),
      revoked: false,
    });
    await svc.sshKeys.revoke(svc.sshKeys.list()[0]!.fingerprint);
    // Revoking after a renewal ends connections from before it too.
    expect(before.lease?.revoked).toBe(true);
    expect(after.lease?.lapse(now)).toEqual({ kind: 'revoked' });
  });

  it('refuses to register a configured key, a bad key or a bad TTL', async () => {
    const svc = await createIdentityService(config());
    const bob = { name: 'bob', groups: [], source: 'oidc' as const };
    await expectCode(() => svc.sshKeys.register(ed25519, bob, 60_000), 'CONFLICT');
    await expectCode(() => svc.sshKeys.register('hello', bob, 60_000), 'BAD_REQUEST');
    await expectCode(() => svc.sshKeys.register(ecdsa256, bob, 0), 'BAD_REQUEST');
    expect(svc.findSshKey('ssh-ed25519', blobOf(ed25519))?.name).toBe('devin');
  });
});

describe('IdentityService static tokens and allow lists', () => {
  it('accepts a configured service token by its SHA-256 and refuses others', async () => {
    const svc = await createIdentityService(config());
    await expect(svc.verifyToken('s3cret-service-token')).resolves.toMatchObject({
      name: 'ci-bot',
      groups: ['ci'],
      source: 'token',
    });
    await expect(svc.verifyToken('s3cret-service-tokem')).rejects.toMatchObject({
      code: 'AUTH_FAILED',
      detail: { reason: 'unknown-token' },
    });
    await expect(svc.verifyToken('')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
  });

  it('checks group: and identity: references', async () => {
    const svc = await createIdentityService(config());
    const id = await svc.verifyToken('s3cret-service-token');
    expect(svc.isAllowed(id, ['group:ci'])).toBe(true);
    expect(svc.isAllowed(id, ['identity:ci-bot'])).toBe(true);
    expect(svc.isAllowed(id, ['group:dba', 'identity:devin'])).toBe(false);
    expect(svc.isAllowed(id, [])).toBe(false);
  });
});

describe('state that lasts: registrations on disk, identity reloads', () => {
  const bob = { name: 'bob', groups: ['dba'], source: 'oidc' as const, issuer: 'https://idp' };

  it('keeps registrations in the file across a restart, with their expiry, and drops expired ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-regs-'));
    try {
      const registrationsFile = join(dir, 'ssh-key-registrations.json');
      let now = 1_000_000;
      const first = await createIdentityService(config({ oidc: [oidcIssuer] }), {
        now: () => now,
        registrationsFile,
      });
      await first.sshKeys.register(ecdsa256, bob, 60_000);
      await first.sshKeys.register(ecdsa384, bob, 1_000);
      expect(statSync(registrationsFile).mode & 0o777).toBe(0o600);

      now += 2_000; // the second has expired by the "restart"
      const second = await createIdentityService(config({ oidc: [oidcIssuer] }), {
        now: () => now,
        registrationsFile,
      });
      expect(second.findSshKey('ecdsa-sha2-nistp256', blobOf(ecdsa256))).toMatchObject({
        name: 'bob',
        groups: ['dba'],
      });
      expect(second.sshKeys.list().map((r) => r.expiresAt)).toEqual([1_060_000]);
      expect(second.findSshKey('ecdsa-sha2-nistp384', blobOf(ecdsa384))).toBeUndefined();

      // A registration made with an issuer that is no longer configured does not come back.
      const third = await createIdentityService(config(), { now: () => now, registrationsFile });
      expect(third.sshKeys.list()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a registrations file it cannot read, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-regs-'));
    try {
      const registrationsFile = join(dir, 'ssh-key-registrations.json');
      writeFileSync(registrationsFile, '{ not json');
      await expect(createIdentityService(config(), { registrationsFile })).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(registrationsFile),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reload that removes a token revokes its lease with the reason, and the keys it registered', async () => {
    const svc = await createIdentityService(config());
    const ci = await svc.verifyToken('s3cret-service-token');
    const reg = await svc.sshKeys.register(ecdsa256, ci, 60_000);
    const other = await svc.verifyToken('s3cret-service-token');
    expect(other.lease).toBe(ci.lease); // one credential, one lease

    // Unchanged entries keep their lease: nothing of theirs ends.
    const unchanged = await svc.prepare(config()).apply();
    expect(unchanged.tokensRemoved).toEqual([]);
    expect(ci.lease?.revoked).toBe(false);

    const changes = await svc.prepare(config({ tokens: [], sshKeys: [] })).apply();
    expect(changes).toMatchObject({
      tokensRemoved: ['ci-bot'],
      sshKeysRemoved: ['devin', 'ops'],
      registrationsRevoked: [reg.fingerprint],
    });
    expect(ci.lease?.lapse(Date.now())).toEqual({
      kind: 'revoked',
      reason: 'token ci-bot was removed from identity.tokens by a reload',
    });
    expect(reg.identity.lease?.revoked).toBe(true);
    await expect(svc.verifyToken('s3cret-service-token')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    expect(svc.findSshKey('ssh-ed25519', blobOf(ed25519))).toBeUndefined();
  });

  it('checks a reloaded section before changing anything', async () => {
    const svc = await createIdentityService(config());
    expect(() =>
      svc.prepare(config({ sshKeys: [{ name: 'x', publicKey: 'ssh-ed25519 AAAA', groups: [] }] })),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(svc.findSshKey('ssh-ed25519', blobOf(ed25519))?.name).toBe('devin');
  });
});
