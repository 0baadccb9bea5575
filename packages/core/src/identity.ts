/** Who is on the other end of a connection, after authentication. */
export interface Identity {
  /** `sub` of an OIDC token, a static token's or ssh key's configured name. */
  readonly name: string;
  readonly groups: readonly string[];
  readonly source: 'oidc' | 'token' | 'ssh-key' | 'ssh-login' | 'socket';
  /** OIDC issuer, when source is oidc. */
  readonly issuer?: string;
  /** Seconds since the epoch when the credential stops being valid, when known. */
  readonly expiresAt?: number;
  /**
   * Aborted when the credential is revoked before it expires (an SSH key registration deleted through the admin
   * API): sessions opened with it end. Non-enumerable where set, so it never shows up in JSON.
   */
  readonly revoked?: AbortSignal;
}

/**
 * Milliseconds until an identity's `expiresAt` (seconds since the epoch), for a timer that ends what the identity
 * still has running: never negative, and at most what setTimeout can wait (2^31-1 ms, ~24.8 days), so a timer for
 * a longer-lived credential fires early and must check again.
 */
export function msUntilExpiry(expiresAt: number, nowMs = Date.now()): number {
  return Math.min(Math.max(0, expiresAt * 1000 - nowMs), 2 ** 31 - 1);
}

/** A principal reference as written in config: `group:NAME` or `identity:NAME`. */
export type PrincipalRef = string;

export interface IdentityService {
  /** Verify an OIDC JWT or a static service token. Throws AgentgateError AUTH_FAILED. */
  verifyToken(token: string): Promise<Identity>;
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
