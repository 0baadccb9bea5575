/**
 * X11 forwarding: the upstream opens x11 channels on its connection, and each is bridged to a new x11 channel to
 * the client like a port forward (half-closes kept half, byte counts in the metrics and the channel.closed event).
 */
import type { ConnectionContext } from './connection-context.js';
import { bridgeCounted } from './port-forwarding.js';
import type { UpstreamLease } from './upstream-pool.js';

/** Upstream connections already bridged (a connection's sessions share it). */
const x11Bridged = new WeakSet<object>();

export function bridgeX11(ctx: ConnectionContext, lease: UpstreamLease): void {
  const conn = ctx.clientConnection;
  // One handler per upstream connection: x11 channels arrive on the connection, not on the session.
  if (x11Bridged.has(lease.client)) return;
  x11Bridged.add(lease.client);
  lease.client.on('x11', (info, accept, reject) => {
    try {
      conn.x11(info.srcIP, info.srcPort, (err, clientCh) => {
        if (err) {
          reject();
          return;
        }
        const upCh = accept();
        const cid = ctx.nextChannelId();
        ctx.record('notice', { event: 'channel.open', channel: cid, type: 'x11' });
        bridgeCounted(ctx, cid, clientCh, upCh);
      });
    } catch (err) {
      ctx.log.error('x11 bridge failed', { err });
    }
  });
}
