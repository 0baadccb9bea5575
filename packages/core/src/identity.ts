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
 * Call `onExpired` (with the expiry as an ISO date) once the identity's credential has expired, never when it has
 * no expiry; returns what cancels the wait. Engines use it to end what a session still has running. The timer does
 * not keep the process alive. `expiresAt` is read again when the timer fires: a credential that was renewed in the
 * meantime (an SSH key registration) keeps the session.
 */
export function onIdentityExpired(identity: Identity, onExpired: (expiredAt: string) => void): () => void {
  if (identity.expiresAt === undefined) return () => undefined;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const expiresAt = identity.expiresAt ?? 0;
    // setTimeout waits at most 2^31-1 ms (~24.8 days): a longer-lived credential is checked again then.
    const wait = Math.min(Math.max(0, expiresAt * 1000 - Date.now()), 2 ** 31 - 1);
    timer = setTimeout(() => {
      const current = identity.expiresAt ?? 0;
      if (current * 1000 > Date.now()) arm();
      else onExpired(new Date(current * 1000).toISOString());
    }, wait);
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
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
