/**
 * Attach and exec start after the 101 (or the legacy 200 + raw stream): bytes flow both ways untouched through
 * core's stream relay (the one SSH channels use), with backpressure, each direction half-closed on its own
 * (`docker exec` without -i closes its side first and still reads the output), and recorded as io events.
 */
import type { Duplex } from 'node:stream';
import { relayData, type ProtocolMetrics, type SessionRecorder } from '@agentgate/core';
import { RELAY_HIGH_WATER, type SocketReader } from './socket-reader.js';
import { StreamDemuxer } from './stream-demux.js';

export interface HijackedEnds {
  readonly client: Duplex;
  /** The client's reader: bytes it already holds go first. */
  readonly clientReader: SocketReader;
  readonly upstream: Duplex;
  readonly upstreamReader: SocketReader;
}

export interface HijackedRecording {
  readonly recorder: SessionRecorder | undefined;
  readonly metrics: ProtocolMetrics;
  readonly listener: string;
}

/** Relay until dockerd ends the stream or the client goes; resolves with the bytes each way. */
export async function relayHijacked(
  ends: HijackedEnds,
  rec: HijackedRecording,
): Promise<{ bytesIn: number; bytesOut: number }> {
  const { client, upstream } = ends;
  const { recorder } = rec;
  const fromClient = ends.clientReader.detach();
  const fromUpstream = ends.upstreamReader.detach();
  const demux = new StreamDemuxer('unknown');
  let bytesIn = 0;
  let bytesOut = 0;
  // Paused while the session's recorded bytes wait for their commits beyond the store's bound.
  const hold = (): Promise<void> | undefined => recorder?.ioBackpressure?.();
  await new Promise<void>((resolve) => {
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      resolve();
    };
    const toUpstream = relayData(client, upstream, {
      highWater: RELAY_HIGH_WATER,
      observe: (chunk) => {
        bytesIn += chunk.length;
        recorder?.io('in', chunk);
      },
      hold,
    });
    const toClient = relayData(upstream, client, {
      highWater: RELAY_HIGH_WATER,
      observe: (chunk) => {
        bytesOut += chunk.length;
        if (recorder) demux.push(chunk, (s, data) => recorder.io(s === 'in' ? 'out' : s, data));
      },
      hold,
    });
    // The client half-closing (docker exec without -i) only ends stdin; output keeps flowing.
    const clientEnded = (): void => {
      if (!upstream.destroyed) upstream.end();
    };
    // dockerd closing its side ends the exec or attach.
    const upstreamEnded = (): void => {
      if (!client.destroyed && !client.writableEnded) client.end();
      settle();
    };
    for (const c of fromClient.pending) toUpstream.push(c);
    for (const c of fromUpstream.pending) toClient.push(c);
    client.on('end', clientEnded);
    upstream.on('end', upstreamEnded);
    upstream.on('close', upstreamEnded);
    client.on('close', () => {
      upstream.destroy();
      settle();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('error', () => client.destroy());
    if (fromClient.ended) clientEnded();
    if (fromUpstream.ended) upstreamEnded();
    client.resume();
    upstream.resume();
  });
  upstream.destroy();
  rec.metrics.bytes(rec.listener, 'docker', 'client_to_upstream', bytesIn);
  rec.metrics.bytes(rec.listener, 'docker', 'upstream_to_client', bytesOut);
  return { bytesIn, bytesOut };
}
