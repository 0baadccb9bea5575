/**
 * Server-Sent Events: one long response per open page, an event per change, a comment every 15 s so proxies keep
 * it open and a signed-out or expired browser session, or one that lost its role, is noticed (`alive` is asked each
 * time, and before each event).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { securityHeaders } from './http.js';

export interface EventStream {
  send(event: string, data: unknown): void;
  close(): void;
  readonly closed: boolean;
}

const HEARTBEAT_MS = 15_000;

export function openEventStream(
  req: IncomingMessage,
  res: ServerResponse,
  options: { https: boolean; alive: () => boolean; onClose: () => void },
): EventStream {
  res.writeHead(200, {
    ...securityHeaders({ https: options.https }),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  req.socket.setNoDelay(true);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    options.onClose();
    res.end();
  };
  const heartbeat = setInterval(() => {
    if (!options.alive()) close();
    else res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();
  req.on('close', close);
  res.on('error', close);
  // Tell the browser how soon to reconnect after a dropped connection.
  res.write('retry: 2000\n\n');
  return {
    send(event, data) {
      if (closed) return;
      // Asked per event too: a page must not go on receiving what its person may no longer read.
      if (!options.alive()) return close();
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close,
    get closed() {
      return closed;
    },
  };
}
