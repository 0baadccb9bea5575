import type { CredentialLease } from './credential-lease.js';

/**
 * How an identity authenticated. `operator`: whoever controls the gateway process (a configuration reload by a
 * signal); it acts only in administrative records, never on a listener.
 */
export type IdentitySource = 'oidc' | 'token' | 'ssh-key' | 'socket' | 'operator';

/** Who is on the other end of a connection, after authentication. */
export interface Identity {
  /** `sub` of an OIDC token, a static token's or ssh key's configured name. */
  readonly name: string;
  readonly groups: readonly string[];
  readonly source: IdentitySource;
  /** OIDC issuer, when source is oidc. */
  readonly issuer?: string;
  /**
   * The credential's lifetime and revocation (a token's `exp`, an SSH key registration). Absent: the credential
   * neither expires nor can be revoked while the gateway runs (a configured service token or key, a socket).
   */
  readonly lease?: CredentialLease;
}

/** Why the identity's credential no longer holds at `nowMs` (expired or revoked), or undefined while it does. */
export function credentialLapse(identity: Identity, nowMs: number) {
  return identity.lease?.lapse(nowMs);
}

/** A principal reference as written in config: `group:NAME` or `identity:NAME`. */
export type PrincipalRef = string;

/**
 * Whether a name or group from an IdP holds C0 controls, DEL or C1 controls (line breaks, ESC, the 8-bit CSI): names
 * are written as they are to logs, the record and the CLI's tables, where such a character would forge lines.
 */
export function hasControlCharacters(text: string): boolean {
  return /[\u0000-\u001f\u007f-\u009f]/.test(text);
}

export interface IdentityService {
  /**
   * Verify an OIDC JWT or a static service token. Throws AgentgateError AUTH_FAILED. A JWT with a `purpose` claim
   * (a console sign-in link) is good only where that purpose is asked for, and never as an agent's or API token.
   */
  verifyToken(token: string, options?: { readonly purpose?: string }): Promise<Identity>;
  /**
   * The identity an SSH public key acts as: a configured `identity.sshKeys` entry or a key registered through
   * `POST /api/ssh-keys` that has not expired. `keyData` is the SSH wire-format public key blob.
   */
  findSshKey(algorithm: string, keyData: Buffer): Identity | undefined;
  /** True when the identity matches any `group:X` / `identity:Y` reference. */
  isAllowed(identity: Identity, refs: readonly PrincipalRef[]): boolean;
}

export function matchesPrincipal(identity: Identity, refs: readonly PrincipalRef[]): boolean {
  for (const ref of refs) {
    const colon = ref.indexOf(':');
    const kind = ref.slice(0, colon);
    const name = ref.slice(colon + 1);
    if (kind === 'group' && identity.groups.includes(name)) return true;
    if (kind === 'identity' && identity.name === name) return true;
  }
  return false;
}
