/**
 * The socket a Docker connection is served on: the accepted one wrapped in TLS when the listener terminates TLS
 * itself, otherwise the accepted connection moved onto a socket that reads into slabs (packages/core
 * accepted-reads.ts) when that is possible, or the accepted socket as it is.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { adoptWithSlabReads, type ClientInfo, type Logger, type SlabReads } from '@agentgate/core';

export interface ClientSocket {
  readonly socket: Duplex;
  readonly info: ClientInfo;
  /** Set when the listener terminates TLS on the accepted socket. */
  readonly secure: tls.TLSSocket | undefined;
  /** Set when `socket` reads into slabs; the accepted socket stays the root's, and each destroys the other. */
  readonly reads: SlabReads | undefined;
}

export function clientSocket(
  accepted: Duplex,
  info: ClientInfo,
  secureContext: tls.SecureContext | undefined,
  log: Logger,
): ClientSocket {
  // Not when the root terminated TLS already, nor on a unix socket.
  if (secureContext && !info.tls && info.address !== 'unix') {
    const secure = new tls.TLSSocket(accepted as net.Socket, { isServer: true, secureContext });
    secure.on('error', (err) => log.debug('docker tls error', { err: err.message }));
    return { socket: secure, info: { ...info, tls: true }, secure, reads: undefined };
  }
  const adopted = adoptWithSlabReads(accepted);
  return adopted
    ? { socket: adopted.socket, info, secure: undefined, reads: adopted.reads }
    : { socket: accepted, info, secure: undefined, reads: undefined };
}
