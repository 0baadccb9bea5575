import type { IdentityConfig, OidcIssuerConfig, SshKeyConfig, StaticTokenConfig } from '@agentgate/core';
import { child, type Checker } from './checker.js';
import { isLoopbackHost } from './console-section.js';

const SSH_KEY_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
];

/**
 * Check an OpenSSH public key line `type base64 [comment]`: a known type, and a blob whose first field
 * (RFC 4253 §6.6: string "key type name") repeats that type.
 */
export function checkSshPublicKey(checker: Checker, value: unknown, path: string): string | undefined {
  const text = checker.string(value, path);
  if (text === undefined) return undefined;
  const [type, base64] = text.trim().split(/\s+/);
  const expected = 'an OpenSSH public key "TYPE BASE64 [comment]"';
  if (
    type === undefined ||
    base64 === undefined ||
    !SSH_KEY_TYPES.includes(type) ||
    !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)
  ) {
    checker.expected(path, `${expected} with TYPE one of ${SSH_KEY_TYPES.join(', ')}`, text);
    return undefined;
  }
  const blob = Buffer.from(base64, 'base64');
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (
    nameLength < 0 ||
    blob.length < 4 + nameLength ||
    blob.subarray(4, 4 + nameLength).toString('latin1') !== type
  ) {
    checker.expected(path, `${expected} whose key data is a ${type} key`, text);
    return undefined;
  }
  return text.trim();
}

function readOidc(checker: Checker, value: unknown, path: string): OidcIssuerConfig | undefined {
  const m = checker.mapping(value, path, [
    'issuer',
    'audience',
    'jwks',
    'groupsClaim',
    'clockSkew',
    'clockSkewSeconds',
  ]);
  if (m === undefined) return undefined;
  const issuer = checker.string(m.issuer, child(path, 'issuer'));
  const audience = checker.string(m.audience, child(path, 'audience'));
  let jwks: string | undefined;
  const jwksText = checker.string(m.jwks, child(path, 'jwks'));
  if (jwksText !== undefined) {
    // An http(s) URL is fetched (and cached) by the identity service; anything else is a local JWKS file.
    jwks = /^https?:\/\//i.test(jwksText) ? jwksText : checker.filePath(jwksText, child(path, 'jwks'), true);
    // Whoever can change a JWKS on its way can sign any token: plain http only where nothing can listen in.
    if (jwks !== undefined && /^http:\/\//i.test(jwks) && !isLoopbackHost(urlHost(jwks))) {
      checker.expected(
        child(path, 'jwks'),
        'an https:// URL (plain http only on a loopback address)',
        jwksText,
      );
      jwks = undefined;
    }
  }
  const groupsClaim =
    m.groupsClaim === undefined ? 'groups' : checker.string(m.groupsClaim, child(path, 'groupsClaim'));
  let clockSkewSeconds: number | undefined = 60;
  if (m.clockSkew !== undefined && m.clockSkewSeconds !== undefined) {
    checker.report(
      child(path, 'clockSkewSeconds'),
      'expected either clockSkew or clockSkewSeconds, found both',
    );
  } else if (m.clockSkew !== undefined) {
    const ms = checker.duration(m.clockSkew, child(path, 'clockSkew'));
    clockSkewSeconds = ms === undefined ? undefined : Math.round(ms / 1000);
  } else if (m.clockSkewSeconds !== undefined) {
    clockSkewSeconds = checker.integer(m.clockSkewSeconds, child(path, 'clockSkewSeconds'), {
      min: 0,
      max: 3600,
    });
  }
  if (
    issuer === undefined ||
    audience === undefined ||
    jwks === undefined ||
    groupsClaim === undefined ||
    clockSkewSeconds === undefined
  )
    return undefined;
  return { issuer, audience, jwks, groupsClaim, clockSkewSeconds };
}

function readToken(checker: Checker, value: unknown, path: string): StaticTokenConfig | undefined {
  const m = checker.mapping(value, path, ['name', 'sha256', 'groups']);
  if (m === undefined) return undefined;
  const name = checker.string(m.name, child(path, 'name'));
  let sha256 = checker.string(m.sha256, child(path, 'sha256'), { secret: true });
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    checker.expected(
      child(path, 'sha256'),
      '64 hex characters (the SHA-256 of the token, not the token)',
      sha256,
      true,
    );
    sha256 = undefined;
  }
  const groups = checker.strings(m.groups, child(path, 'groups'), []);
  if (name === undefined || sha256 === undefined || groups === undefined) return undefined;
  return { name, sha256: sha256.toLowerCase(), groups };
}

function readSshKey(checker: Checker, value: unknown, path: string): SshKeyConfig | undefined {
  const m = checker.mapping(value, path, ['name', 'publicKey', 'groups']);
  if (m === undefined) return undefined;
  const name = checker.string(m.name, child(path, 'name'));
  const publicKey = checkSshPublicKey(checker, m.publicKey, child(path, 'publicKey'));
  const groups = checker.strings(m.groups, child(path, 'groups'), []);
  if (name === undefined || publicKey === undefined || groups === undefined) return undefined;
  return { name, publicKey, groups };
}

export function readIdentity(checker: Checker, value: unknown, path: string): IdentityConfig {
  const empty: IdentityConfig = { oidc: [], tokens: [], sshKeys: [] };
  if (value === undefined) return empty;
  const m = checker.mapping(value, path, ['oidc', 'tokens', 'sshKeys']);
  if (m === undefined) return empty;
  return {
    oidc: checker.list(m.oidc, child(path, 'oidc'), (v, p) => readOidc(checker, v, p), []) ?? [],
    tokens: checker.list(m.tokens, child(path, 'tokens'), (v, p) => readToken(checker, v, p), []) ?? [],
    sshKeys: checker.list(m.sshKeys, child(path, 'sshKeys'), (v, p) => readSshKey(checker, v, p), []) ?? [],
  };
}

/** The host of a URL, or '' when it does not parse (then it is no loopback address). */
function urlHost(text: string): string {
  try {
    return new URL(text).hostname;
  } catch {
    return '';
  }
}
