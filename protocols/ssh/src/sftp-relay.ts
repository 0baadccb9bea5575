import type { ClientChannel, ServerChannel } from 'ssh2';
import { fileCommand } from './command-facts.js';
import type { ConnectionContext } from './connection-context.js';
import { SFTP_STATUS_PERMISSION_DENIED, statusPacket } from './sftp-packets.js';
import { SftpInspector, type FileTransferRecord } from './sftp-inspector.js';

/**
 * Relays the sftp subsystem packet by packet instead of terminating it with ssh2's SFTP server: the bytes pass
 * through unchanged (no re-encoding, no per-request round trip through a second SFTP client), which keeps a plain
 * relay's throughput, while the inspector records transfers and write requests are held for the gate. A denied
 * request gets SSH_FXP_STATUS PERMISSION_DENIED with the denial text, written between whole server packets.
 */
export class SftpSession {
  private readonly inspector: SftpInspector;
  private clientQueue: Buffer[] = [];
  private deciding = false;
  private awaitingDrain = false;
  private clientEnded = false;
  private upstreamEnded = false;

  constructor(
    private readonly ctx: ConnectionContext,
    private readonly id: string,
    private readonly channel: ServerChannel,
    private readonly upstream: ClientChannel,
    onTransfer: (r: FileTransferRecord) => void,
  ) {
    this.inspector = new SftpInspector(onTransfer);
  }

  start(): void {
    const { channel, upstream, ctx } = this;
    upstream.on('data', (chunk: Buffer) => {
      ctx.metrics.bytes(ctx.listener.name, 'ssh', 'upstream_to_client', chunk.length);
      let packets: Buffer[];
      try {
        packets = this.inspector.serverFramer.push(chunk);
      } catch (err) {
        this.fail(err);
        return;
      }
      let ok = true;
      for (const p of packets) {
        try {
          this.inspector.fromServer(p);
        } catch (err) {
          ctx.log.warn('sftp server packet not understood', { err });
        }
        ok = channel.write(p) && ok;
      }
      if (!ok) {
        upstream.pause();
        channel.once('drain', () => upstream.resume());
      }
    });
    upstream.stderr.on('data', (c: Buffer) => channel.stderr.write(c));
    channel.on('data', (chunk: Buffer) => {
      ctx.metrics.bytes(ctx.listener.name, 'ssh', 'client_to_upstream', chunk.length);
      let packets: Buffer[];
      try {
        packets = this.inspector.clientFramer.push(chunk);
      } catch (err) {
        this.fail(err);
        return;
      }
      this.clientQueue.push(...packets);
      this.pump();
    });
    // The client's EOF comes after the packets it sent, so it is passed on once the queue is out (a write request
    // waiting for its decision, packets waiting for the upstream to drain): sent at once, it would overtake them.
    channel.on('end', () => {
      this.clientEnded = true;
      this.pump();
    });
    channel.resume();
  }

  /** Forward queued client packets in order; a write request pauses the queue until the gate decides it. */
  private pump(): void {
    const { channel, upstream } = this;
    if (this.deciding || this.awaitingDrain) return;
    while (this.clientQueue.length > 0) {
      const packet = this.clientQueue.shift()!;
      let request;
      try {
        request = this.inspector.fromClient(packet);
      } catch (err) {
        this.ctx.log.warn('sftp client packet not understood', { err });
        request = undefined;
      }
      if (request !== undefined) {
        this.deciding = true;
        channel.pause();
        void this.decide(packet, request.requestId, request.operation, request.paths);
        return;
      }
      if (!upstream.write(packet)) {
        this.awaitingDrain = true;
        channel.pause();
        upstream.once('drain', () => {
          this.awaitingDrain = false;
          channel.resume();
          this.pump();
        });
        return;
      }
    }
    if (!this.clientEnded) channel.resume();
    else if (!this.upstreamEnded) {
      this.upstreamEnded = true;
      upstream.end();
    }
  }

  private async decide(
    packet: Buffer,
    requestId: number,
    operation: string,
    paths: readonly string[],
  ): Promise<void> {
    let denial: string | undefined;
    for (const path of paths) {
      const v = await this.ctx.decide(
        fileCommand('file-write', path, 'sftp', { channel: this.id, operation }),
      );
      if (!v.allowed) {
        denial = v.message;
        break;
      }
    }
    if (denial === undefined) this.upstream.write(packet);
    else this.channel.write(statusPacket(requestId, SFTP_STATUS_PERMISSION_DENIED, denial));
    this.deciding = false;
    this.pump();
  }

  private fail(err: unknown): void {
    this.ctx.log.warn('sftp stream broken', { err, channel: this.id });
    this.ctx.record('error', {
      event: 'sftp.protocol-violation',
      channel: this.id,
      message: (err as Error).message,
    });
    this.upstream.close();
    this.channel.close();
  }
}
