/**
 * The two sockets of a connection and the flow between them: writes of one tick coalesced per side, reading the
 * client paused while decoded input waits behind a decision or the upstream has not drained, reading the upstream
 * paused while the client has not drained, reading either paused while its COPY data waits for commits, the client socket swapped for TLS after an SSLRequest, and both ended
 * (then destroyed if they linger) when the connection closes. Both plain sockets are read into slabs (SlabReads).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { adoptWithSlabReads, type SlabReads } from '@agentgate/core';
import { SSL_ACCEPTED } from './codec/message-types.js';
import { WriteCoalescer } from './write-coalescer.js';

export interface ClientEvents {
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
  close(): void;
}

export interface UpstreamEvents {
  data(chunk: Buffer): void;
  error(err: Error): void;
  close(): void;
}

type HoldReason = 'inbox' | 'upstream' | 'recording';

/** Sockets left open after they were ended are destroyed this much later. */
const LINGER_MS = 1000;

export class ClientRelay {
  private client: Duplex;
  /** Set while the plain client socket reads into slabs (adoptWithSlabReads); TLS reads through its own layer. */
  private clientReads: SlabReads | undefined;
  private upstream: net.Socket | tls.TLSSocket | undefined;
  private upstreamEvents: UpstreamEvents | undefined;
  /** Reads of a slab-read upstream that came before `startUpstream` (none, normally: it is paused until then). */
  private upstreamEarly: Buffer[] = [];
  /** The upstream's answers flow (the client's drain may resume reading it): from the first ReadyForQuery on. */
  private upstreamLive = false;
  private readonly held: Record<HoldReason, boolean> = { inbox: false, upstream: false, recording: false };
  /** Reading the upstream waits for the recorder's commits (holdForRecording). */
  private upstreamHeldForRecording = false;
  private closed = false;

  constructor(
    client: Duplex,
    private readonly events: ClientEvents,
  ) {
    const adopted = adoptWithSlabReads(client);
    this.client = adopted?.socket ?? client;
    this.clientReads = adopted?.reads;
    this.attachClient(this.client);
  }

  /** Writes of one tick go out together (see WriteCoalescer); backpressure pauses the other side. */
  private readonly clientOut = new WriteCoalescer(
    // A client that has ended (a FIN, after Terminate) takes no more writes: what it would get is dropped.
    () => (this.client.writable ? this.client : undefined),
    () => {
      // The client cannot keep up: stop reading the upstream until the client drains (onClientDrain). Only
      // while a 'drain' is still due: a buffer already emptied again would never emit one.
      if (!this.client.writableNeedDrain) return;
      if (this.upstream && !this.upstream.isPaused()) this.upstream.pause();
    },
  );

  private readonly upstreamOut = new WriteCoalescer(
    () => this.upstream,
    () => {
      const up = this.upstream;
      if (!up || this.held.upstream) return;
      // write() said false, but the buffer may be empty again by now (no 'drain' would follow): check, don't wait.
      if (!up.writableNeedDrain) return;
      this.hold('upstream', true);
      const release = (): void => {
        up.off('drain', release);
        up.off('close', release);
        this.hold('upstream', false);
      };
      up.on('drain', release);
      up.on('close', release);
    },
  );

  writeClient(buf: Buffer): void {
    if (!this.closed) this.clientOut.write(buf);
  }

  /**
   * Hold the client's writes while one upstream read is relayed; `releaseClient` then sends them in one write at
   * once, so relaying a read schedules no end-of-tick flush.
   */
  holdClient(): void {
    this.clientOut.hold(true);
  }

  releaseClient(): void {
    if (this.closed) this.clientOut.hold(false);
    else this.clientOut.releaseNow();
  }

  writeUpstream(buf: Buffer): void {
    this.upstreamOut.write(buf);
  }

  /** Hold the upstream writes (they go out at the release, with whatever was written meanwhile). */
  holdUpstream(hold: boolean): void {
    this.upstreamOut.hold(hold);
  }

  /** Lift the upstream hold and send what it held in one write at once, with no end-of-tick flush. */
  releaseUpstream(): void {
    if (this.closed) this.upstreamOut.hold(false);
    else this.upstreamOut.releaseNow();
  }

  /**
   * The one place that pauses and resumes reading the client: it reads again only when no reason to hold it is
   * left (a full inbox behind a pending decision, an upstream that has not drained, COPY data waiting for the
   * recorder's commits), whatever order they clear in.
   */
  hold(reason: HoldReason, hold: boolean): void {
    if (this.held[reason] === hold) return;
    this.held[reason] = hold;
    if (hold) this.client.pause();
    else if (!this.held.inbox && !this.held.upstream && !this.held.recording && !this.closed)
      this.client.resume();
  }

  /**
   * Stop reading `side` until `caughtUp` settles: COPY data from it waits for the recorder's commits beyond the
   * store's bound (SessionRecorder.ioBackpressure, docs/transcript.md). Reading the upstream also waits for a
   * client that has not drained, so it resumes only when neither holds it.
   */
  holdForRecording(side: 'client' | 'upstream', caughtUp: Promise<void>): void {
    if (side === 'client') {
      if (this.held.recording) return;
      this.hold('recording', true);
      const release = (): void => this.hold('recording', false);
      caughtUp.then(release, release);
      return;
    }
    if (this.upstreamHeldForRecording) return;
    this.upstreamHeldForRecording = true;
    this.upstream?.pause();
    const release = (): void => {
      this.upstreamHeldForRecording = false;
      if (this.upstreamLive && !this.closed && !this.client.writableNeedDrain) this.upstream?.resume();
    };
    caughtUp.then(release, release);
  }

  /** Accept an SSLRequest: answer 'S' and go on over TLS on the same socket. */
  upgradeToTls(secureContext: tls.SecureContext): void {
    const plain = this.client;
    this.detachClient(plain);
    plain.write(Buffer.of(SSL_ACCEPTED));
    const secure = new tls.TLSSocket(plain as net.Socket, { isServer: true, secureContext });
    this.client = secure;
    this.attachClient(secure);
    plain.on('error', this.onClientError);
  }

  /**
   * The authenticated upstream connection: its answers flow to `events` once it is resumed. With `reads` (the
   * socket reads into slabs) they come from there, not as 'data'; pausing and resuming the socket stop and restart
   * those reads the same way, so backpressure is unchanged.
   */
  attachUpstream(
    socket: net.Socket | tls.TLSSocket,
    reads: SlabReads | undefined,
    events: UpstreamEvents,
  ): void {
    this.upstream = socket;
    this.upstreamEvents = events;
    socket.setNoDelay(true);
    if (reads) {
      const data = events.data;
      this.upstreamEarly = reads.attach((chunk) => {
        data(chunk);
        return true;
      });
    } else socket.on('data', events.data);
    socket.on('error', events.error);
    socket.on('close', events.close);
  }

  /** The session is ready for the upstream's answers: read them from now on. */
  startUpstream(): void {
    this.upstreamLive = true;
    const early = this.upstreamEarly;
    this.upstreamEarly = [];
    for (const chunk of early) this.upstreamEvents?.data(chunk);
    if (!this.closed && !this.client.writableNeedDrain) this.upstream?.resume();
  }

  /** End both sides after flushing what is queued; `goodbye` is the last message for the upstream (Terminate). */
  close(goodbye: Buffer | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const up = this.upstream;
    if (up) {
      this.upstreamOut.flush();
      if (this.upstreamEvents) up.off('close', this.upstreamEvents.close);
      if (goodbye !== undefined && !up.destroyed) up.end(goodbye);
      else up.end();
      setTimeout(() => up.destroy(), LINGER_MS).unref();
    }
    this.clientOut.flush();
    const client = this.client;
    client.end();
    setTimeout(() => client.destroy(), LINGER_MS).unref();
  }

  private attachClient(socket: Duplex): void {
    if (this.clientReads) {
      const data = this.events.data;
      // Nothing is read before this: the adopted socket's first read comes in a later turn.
      this.clientReads.attach((chunk) => {
        data(chunk);
        return true;
      });
    } else socket.on('data', this.events.data);
    socket.on('end', this.events.end);
    socket.on('error', this.onClientError);
    socket.on('close', this.events.close);
    socket.on('drain', this.onClientDrain);
    // A client gone while answers are still relayed (after Terminate) will never drain: stop waiting for it.
    socket.on('close', this.onClientDrain);
  }

  private detachClient(socket: Duplex): void {
    if (this.clientReads) {
      // From now on the TLS layer reads the socket (its own reads, not the slabs).
      this.clientReads.detach();
      this.clientReads = undefined;
    } else socket.off('data', this.events.data);
    socket.off('end', this.events.end);
    socket.off('error', this.onClientError);
    socket.off('close', this.events.close);
    socket.off('drain', this.onClientDrain);
    socket.off('close', this.onClientDrain);
  }

  private readonly onClientError = (err: Error): void => this.events.error(err);

  private readonly onClientDrain = (): void => {
    if (this.upstreamLive && !this.closed && !this.upstreamHeldForRecording) this.upstream?.resume();
  };
}
