import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdentityConfig } from '@agentgate/core';
import { createIdentityService } from './identity-service.js';
import { hashStaticToken } from './static-tokens.js';

// `POST /api/ssh-keys` verifies the caller's token, then reads the body, then registers: a reload that removes the
// token in between must not leave a key registered with it. Made then, the registration named no credential (the
// token's hash was no longer configured) and so outlived the token for its whole TTL.
const key =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKdDXaxRvwIYL3N6J/AT2DyPSk8GY46XDvSoSG8PbwrO test-ed25519@agentgate';
const blob = Buffer.from(key.split(' ')[1]!, 'base64');
const dir = mkdtempSync(join(tmpdir(), 'agentgate-register-revoked-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (withToken: boolean): IdentityConfig => ({
  oidc: [],
  tokens: withToken ? [{ name: 'ci-bot', sha256: hashStaticToken('leaked-token'), groups: ['deploy'] }] : [],
  sshKeys: [],
});

describe('registering a key with a credential a reload has just removed', () => {
  it.each([
    ['in memory', undefined],
    ['with a registrations file', join(dir, 'registrations.json')],
  ])('is refused (%s), and the key acts as nobody', async (_where, registrationsFile) => {
    const svc = await createIdentityService(
      config(true),
      registrationsFile === undefined ? {} : { registrationsFile },
    );
    const caller = await svc.verifyToken('leaked-token');
    await svc.prepare(config(false)).apply();
    await expect(svc.sshKeys.register(key, caller, 3_600_000)).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    expect(svc.findSshKey('ssh-ed25519', blob)).toBeUndefined();
    expect(svc.sshKeys.list()).toEqual([]);
  });
});

// A token entry whose groups or name a reload changed is another credential (its sessions end): a key it registered
// before must not keep acting with what the entry no longer grants.
describe('a reload that changes the token entry a key was registered with', () => {
  it.each([
    ['its groups', { name: 'ci-bot', groups: ['agents'] }],
    ['its name', { name: 'deployer', groups: ['deploy'] }],
  ])('changing %s revokes the registration, in memory and at the next start', async (_what, changed) => {
    const registrationsFile = join(dir, `changed-${changed.name}.json`);
    const svc = await createIdentityService(config(true), { registrationsFile });
    await svc.sshKeys.register(key, await svc.verifyToken('leaked-token'), 3_600_000);
    const next: IdentityConfig = {
      ...config(true),
      tokens: [{ ...changed, sha256: hashStaticToken('leaked-token') }],
    };
    const changes = await svc.prepare(next).apply();
    expect(changes.registrationsRevoked).toHaveLength(1);
    expect(svc.findSshKey('ssh-ed25519', blob)).toBeUndefined();
    const restarted = await createIdentityService(next, { registrationsFile });
    expect(restarted.findSshKey('ssh-ed25519', blob)).toBeUndefined();
  });

  it('leaves it alone when the entry is unchanged', async () => {
    const svc = await createIdentityService(config(true));
    await svc.sshKeys.register(key, await svc.verifyToken('leaked-token'), 3_600_000);
    await svc.prepare({ ...config(true), sshKeys: [] }).apply();
    expect(svc.findSshKey('ssh-ed25519', blob)).toMatchObject({ name: 'ci-bot', groups: ['deploy'] });
  });
});
