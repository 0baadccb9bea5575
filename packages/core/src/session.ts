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

export interface SessionInfo {
  readonly id: string;
  readonly listener: string;
  readonly protocol: Protocol;
  readonly identity: Identity;
  readonly client: ClientInfo;
  /** ms since the epoch */
  readonly startedAt: number;
}
