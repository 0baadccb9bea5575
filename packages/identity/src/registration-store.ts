/**
 * Where SSH key registrations are kept (docs/configuration.md): a file beside the store (one replica), or a database
 * the replicas of a fleet share. The registry keeps the registrations in force in memory either way, so an SSH
 * login never waits on the store; a shared store tells it when other replicas may have changed them.
 */

/** How a registration's registering credential is named, so removing that credential can end it. */
export type RegisteredWith =
  | {
      readonly kind: 'token';
      /** SHA-256 of the static token (as `identity.tokens[].sha256`) */ readonly sha256: string;
    }
  | { readonly kind: 'oidc'; readonly issuer: string };

export interface StoredRegistration {
  /** The key as an authorized_keys line (type, base64 blob, comment). */
  readonly publicKey: string;
  readonly identity: string;
  readonly groups: readonly string[];
  /** ms since the epoch */
  readonly registeredAt: number;
  /** ms since the epoch */
  readonly expiresAt: number;
  readonly registeredWith?: RegisteredWith;
  /** Only from a shared store: the key's latest registration was revoked (by another replica, or this one). */
  readonly revoked?: { readonly reason: string };
}

export interface StoredRevocation {
  readonly fingerprint: string;
  /** who asked for it: the identity behind the admin API call, or `reload` */
  readonly by: string;
  readonly reason?: string;
}

export interface SshKeyRegistrationStore {
  /**
   * True when other replicas share the store: a registration must be durable (and checked against theirs) before
   * it is used, and `watch` reports their changes.
   */
  readonly shared: boolean;
  /**
   * The registrations to take over: for each key its latest registration that has not expired (a shared store also
   * returns revoked ones, marked `revoked`). Rejects when the store cannot be read.
   */
  read(): Promise<StoredRegistration[]>;
  /**
   * Make a new or renewed registration durable; `all` is every registration this replica holds with it. A shared
   * store rejects with CONFLICT when another identity holds the key on another replica.
   */
  saveRegistration(registration: StoredRegistration, all: readonly StoredRegistration[]): Promise<void>;
  /** Make revocations durable; `all` is every registration this replica holds without them. */
  saveRevocations(
    revocations: readonly StoredRevocation[],
    all: readonly StoredRegistration[],
  ): Promise<void>;
  /**
   * Shared stores: call `changed` whenever another replica may have registered or revoked a key (a notification, a
   * reconnect, a poll tick); the registry then reads the store again. Returns what stops watching.
   */
  watch?(changed: () => void): () => void;
}
