import type {
  AcceptConnection,
  ClientChannel,
  Connection,
  RejectConnection,
  ServerChannel,
  TcpipBindInfo,
  TcpipRequestInfo,
} from 'ssh2';
import { channelCommand } from './command-facts.js';
import type { ConnectionContext } from './connection-context.js';
import { relayData, writesFlushed } from '@agentgate/core';
import type { UpstreamLease } from './upstream-pool.js';

/**
 * Pass the other side's EOF on once the bytes relayed before it have gone out. A server-mode ssh2 channel's end()
 * sends EOF and CLOSE together, and the CLOSE would make the peer drop what it has not yet sent (a forwarded
 * connection is half-closed: the other direction goes on, RFC 4254 §5.3), so that side gets only the EOF.
 */
function halfClose(channel: ServerChannel | ClientChannel): void {
  if (!channel.server) {
    channel.end();
    return;
  }
  void writesFlushed(channel).then(() => channel.eof());
}

/**
 * Close a forwarded channel once the bytes relayed into it have gone out. The other side's close comes right after
 * its end, while up to a window of its data may still wait here for this side's peer to grant window (RFC 4254
 * §5.2): closing at once would drop that tail (ssh2 discards writes on a closed channel).
 */
function closeAfterWrites(channel: ServerChannel | ClientChannel): void {
  if (!channel.writableEnded) channel.end();
  if (channel.writableFinished || channel.destroyed) {
    channel.close();
    return;
  }
  channel.once('finish', () => channel.close());
}

/** Bridge two forwarded channels (port forwards, X11), counting and recording the bytes each way. */
export function bridgeCounted(
  ctx: ConnectionContext,
  id: string,
  client: ServerChannel | ClientChannel,
  upstream: ClientChannel,
  lease?: UpstreamLease,
): void {
  let toUpstream = 0;
  let toClient = 0;
  relayData(client, upstream, (c) => {
    toUpstream += c.length;
    ctx.metrics.bytes(ctx.listener.name, 'ssh', 'client_to_upstream', c.length);
  });
  relayData(upstream, client, (c) => {
    toClient += c.length;
    ctx.metrics.bytes(ctx.listener.name, 'ssh', 'upstream_to_client', c.length);
  });
  client.on('end', () => halfClose(upstream));
  upstream.on('end', () => halfClose(client));
  client.on('error', () => undefined);
  upstream.on('error', () => undefined);
  let closed = false;
  const onClose = (): void => {
    if (closed) return;
    closed = true;
    lease?.release();
    closeAfterWrites(client);
    closeAfterWrites(upstream);
    ctx.record('result', {
      event: 'channel.closed',
      channel: id,
      bytesToUpstream: toUpstream,
      bytesToClient: toClient,
    });
  };
  client.on('close', onClose);
  upstream.on('close', onClose);
}

/** RFC 4254 §7.2 direct-tcpip (`ssh -L`): decided as a `port-forward` channel, opened upstream when allowed. */
export function handleDirectTcpip(
  ctx: ConnectionContext,
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
): void {
  const id = ctx.nextChannelId();
  const text = `direct-tcpip ${info.destIP}:${info.destPort}`;
  ctx.record('notice', {
    event: 'channel.open',
    channel: id,
    type: 'direct-tcpip',
    destination: `${info.destIP}:${info.destPort}`,
    origin: `${info.srcIP}:${info.srcPort}`,
  });
  void (async () => {
    const verdict = await ctx.decide(
      channelCommand('port-forward', text, { channel: id, destHost: info.destIP, destPort: info.destPort }),
    );
    if (!verdict.allowed) {
      reject();
      return;
    }
    let lease: UpstreamLease;
    try {
      lease = await ctx.pool.acquire();
    } catch {
      reject();
      return;
    }
    lease.client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, upstream) => {
      try {
        if (err) {
          lease.release();
          ctx.record('error', { event: 'upstream.channel-failed', channel: id, message: err.message });
          reject();
          return;
        }
        const client = accept();
        bridgeCounted(ctx, id, client, upstream, lease);
      } catch (e) {
        ctx.log.error('direct-tcpip bridge failed', { err: e });
      }
    });
  })().catch((err) => {
    ctx.log.error('direct-tcpip failed', { err });
    reject();
  });
}

/**
 * RFC 4254 §7.1 tcpip-forward (`ssh -R`): the upstream listens, and each connection it reports is opened back to
 * the client as forwarded-tcpip.
 */
export class RemoteForwarding {
  private readonly bindings = new Map<string, UpstreamLease>();
  private readonly hooked = new WeakSet<object>();

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly conn: Connection,
  ) {}

  handle(
    name: string,
    accept: ((port?: number) => void) | undefined,
    reject: (() => void) | undefined,
    info: TcpipBindInfo,
  ): void {
    const ctx = this.ctx;
    const key = `${info.bindAddr}:${info.bindPort}`;
    if (name === 'cancel-tcpip-forward') {
      const lease = this.bindings.get(key);
      if (lease === undefined) return reject?.();
      this.bindings.delete(key);
      lease.client.unforwardIn(info.bindAddr, info.bindPort, () => lease.release());
      ctx.record('notice', { event: 'global.request', request: name, bind: key });
      accept?.();
      return;
    }
    if (name !== 'tcpip-forward') {
      reject?.();
      return;
    }
    void (async () => {
      const verdict = await ctx.decide(
        channelCommand('port-forward', `tcpip-forward ${key}`, {
          bindHost: info.bindAddr,
          bindPort: info.bindPort,
        }),
      );
      if (!verdict.allowed) return reject?.();
      const lease = await ctx.pool.acquire();
      this.hook(lease);
      lease.client.forwardIn(info.bindAddr, info.bindPort, (err, port) => {
        if (err) {
          lease.release();
          reject?.();
          return;
        }
        this.bindings.set(`${info.bindAddr}:${info.bindPort === 0 ? port : info.bindPort}`, lease);
        ctx.record('notice', { event: 'global.request', request: name, bind: key, port });
        accept?.(port);
      });
    })().catch((err) => {
      ctx.log.error('tcpip-forward failed', { err });
      reject?.();
    });
  }

  private hook(lease: UpstreamLease): void {
    if (this.hooked.has(lease.client)) return;
    this.hooked.add(lease.client);
    lease.client.on('tcp connection', (details, acceptUp, rejectUp) => {
      try {
        const id = this.ctx.nextChannelId();
        this.ctx.record('notice', {
          event: 'channel.open',
          channel: id,
          type: 'forwarded-tcpip',
          bind: `${details.destIP}:${details.destPort}`,
          origin: `${details.srcIP}:${details.srcPort}`,
        });
        this.conn.forwardOut(
          details.destIP,
          details.destPort,
          details.srcIP,
          details.srcPort,
          (err, client) => {
            if (err) {
              rejectUp();
              return;
            }
            bridgeCounted(this.ctx, id, client, acceptUp());
          },
        );
      } catch (err) {
        this.ctx.log.error('forwarded-tcpip failed', { err });
      }
    });
  }

  dispose(): void {
    for (const lease of this.bindings.values()) lease.release();
    this.bindings.clear();
  }
}
