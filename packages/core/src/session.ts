import type { Protocol } from './command.js';
import type { Identity } from './identity.js';

/** Where a connection came from. */
export interface ClientInfo {
  /** IP address, or `unix` for a unix-socket connection. */
  readonly address: string;
  readonly port?: number;
  /** True for loopback TCP and unix sockets: cleartext secrets are acceptable there. */
  readonly local: boolean;
  readonly tls: boolean;
}

/** What a recorded session came from: a protocol listener, or an administrative action. */
export type SessionSource = Protocol | 'admin';

export interface SessionInfo {
  readonly id: string;
  readonly listener: string;
  readonly protocol: Protocol;
  readonly identity: Identity;
  readonly client: ClientInfo;
  /** ms since the epoch */
  readonly startedAt: number;
}

/**
 * An administrative action (a configuration reload, an SSH key registered or revoked) recorded as a short session of
 * its own: `listener` is `admin`, the identity is who acted, and there is no protocol and no client connection.
 */
export interface AdminSessionInfo extends Omit<SessionInfo, 'protocol'> {
  readonly protocol: 'admin';
}
