/**
 * The live view of a session another fleet replica runs: its events as that replica ships them, read from the
 * fleet database every `pollMs` and sent as the same fragments as a local live session's, until its end arrives.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TextDecoder } from 'node:util';
import type { Logger, TranscriptEvent } from '@agentgate/core';
import { liveEventFragment } from './pages/live.js';
import { openEventStream, type EventStream } from './sse.js';

export function followRemoteSession(
  req: IncomingMessage,
  res: ServerResponse,
  options: {
    readonly https: boolean;
    readonly alive: () => boolean;
    readonly onClose: () => void;
    /** The session's events after `afterSeq`, in seq order. */
    readonly read: (afterSeq: number) => Promise<Iterable<TranscriptEvent>>;
    readonly pollMs: number;
    readonly log: Logger;
  },
): EventStream {
  let afterSeq = -1;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const stream = openEventStream(req, res, {
    https: options.https,
    alive: options.alive,
    onClose: () => {
      closed = true;
      clearTimeout(timer);
      options.onClose();
    },
  });
  // Terminal output as text, per stream, a character split across two events decoded whole.
  const decoders = new Map<string, TextDecoder>();
  const poll = async (): Promise<void> => {
    let ended: string | undefined;
    try {
      for (const event of await options.read(afterSeq)) {
        afterSeq = event.seq;
        if (event.type === 'checkpoint') continue;
        if (event.type === 'io') {
          const direction = event['direction'];
          if ((direction !== 'out' && direction !== 'err') || typeof event['data'] !== 'string') continue;
          const key = `${String(event['channel'] ?? '')}/${direction}`;
          let decoder = decoders.get(key);
          if (decoder === undefined) decoders.set(key, (decoder = new TextDecoder()));
          const text = decoder.decode(Buffer.from(event['data'], 'base64'), { stream: true });
          stream.send('event', { html: liveEventFragment({ kind: 'io', direction, text }, text).value });
          continue;
        }
        if (event.type === 'session.end') ended = String(event['reason'] ?? 'the session has ended');
        stream.send('event', { html: liveEventFragment({ kind: 'event', event }).value });
      }
    } catch (err) {
      // The fleet database away for a while: the viewer keeps the page and the next poll goes on.
      options.log.warn('console: reading a remote session from the fleet failed', { error: String(err) });
    }
    if (closed) return;
    if (ended !== undefined) {
      stream.send('ended', { reason: ended });
      stream.close();
      return;
    }
    timer = setTimeout(() => void poll(), options.pollMs);
    timer.unref();
  };
  void poll();
  return stream;
}
