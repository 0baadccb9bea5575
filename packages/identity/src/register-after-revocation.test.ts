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
