/**
 * Slab reads (slab-reads.ts) for a socket a listener accepted. `onread` is a `net.connect` option only: a
 * listener's sockets come with Node's Readable reads. So the accepted connection's handle is moved to a socket made
 * with `onread`, the way Node's own server makes its sockets (`new net.Socket({ handle })` in net.js), which needs
 * the private `_handle` and the undocumented `handle` option. A Node without them leaves the socket as it is (a
 * unit test then fails rather than the gateway); the peer sees one connection either way.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { SlabReads } from './slab-reads.js';

/** What is used of Node's TCP handle. */
interface ReadableHandle {
  reading?: boolean;
  readStart(): number;
  readStop(): number;
}

export interface AdoptedSocket {
  readonly socket: net.Socket;
  readonly reads: SlabReads;
}

/**
 * `accepted`'s connection on a new socket that reads into slabs, or undefined (use `accepted`) when it is not a
 * fresh plain socket (TCP or unix). `accepted` stays the listener's handle on the connection: destroying either destroys the
 * other, so the listener's bookkeeping and forced close work as before.
 */
export function adoptWithSlabReads(accepted: Duplex): AdoptedSocket | undefined {
  if (!(accepted instanceof net.Socket)) return undefined;
  const carrier = accepted as unknown as { _handle?: ReadableHandle | null };
  const handle = carrier._handle;
  if (
    accepted instanceof tls.TLSSocket ||
    handle === null ||
    typeof handle !== 'object' ||
    typeof handle.readStop !== 'function' ||
    typeof handle.readStart !== 'function' ||
    accepted.destroyed ||
    accepted.bytesRead > 0 ||
    accepted.readableLength > 0
  )
    return undefined;
  handle.reading = false;
  handle.readStop();
  carrier._handle = null;
  const reads = new SlabReads();
  const socket = new net.Socket({
    handle,
    onread: reads.options,
    allowHalfOpen: accepted.allowHalfOpen,
  } as net.SocketConstructorOpts & { handle: unknown });
  if ((socket as unknown as { _handle?: unknown })._handle !== handle) {
    // This Node did not take the handle: give it back, reading as it was.
    carrier._handle = handle;
    handle.reading = true;
    handle.readStart();
    return undefined;
  }
  accepted.once('close', () => socket.destroy());
  socket.once('close', () => accepted.destroy());
  return { socket, reads };
}
