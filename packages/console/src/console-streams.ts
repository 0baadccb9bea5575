/**
 * The console's server-sent event streams: the approvals page's cards, a session's live events on this replica,
 * and another replica's open session followed through the fleet database. Each stream ends when its browser
 * session does; `closeAll` ends them all (the console closing).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@agentgate/core';
import type { ApprovalEntry, ApprovalsFeed } from './approvals-feed.js';
import type { BrowserSession } from './browser-sessions.js';
import type { SafeHtml } from './html.js';
import type { LiveEvent, LiveSessions } from './live-sessions.js';
import { liveEventFragment } from './pages/live.js';
import { followRemoteSession } from './remote-live.js';
import type { ConsoleSession, SessionRecords } from './session-query.js';
import { openEventStream, type EventStream } from './sse.js';

export interface ConsoleStreamsOptions {
  readonly https: boolean;
  /** the browser session is still signed in */
  readonly alive: (session: BrowserSession) => boolean;
  readonly feed: ApprovalsFeed;
  /** an approval's card as this browser session sees it */
  readonly card: (entry: ApprovalEntry, session: BrowserSession) => SafeHtml;
  readonly live: LiveSessions;
  readonly records: SessionRecords;
  readonly remotePollMs: number;
  readonly log: Logger;
}

export function createConsoleStreams(options: ConsoleStreamsOptions) {
  const { https, feed, live } = options;
  const streams = new Set<{ close(): void }>();

  /** A stream that ends with the browser session and, when it closes, unsubscribes from what fed it. */
  function openTracked(
    req: IncomingMessage,
    res: ServerResponse,
    session: BrowserSession,
    unsubscribe: () => void,
  ): EventStream {
    const stream = openEventStream(req, res, {
      https,
      alive: () => options.alive(session),
      onClose: () => {
        unsubscribe();
        streams.delete(stream);
      },
    });
    streams.add(stream);
    return stream;
  }

  function approvalsStream(req: IncomingMessage, res: ServerResponse, session: BrowserSession): void {
    const sendEntry = (entry: ApprovalEntry): void =>
      stream.send('approval', {
        id: entry.id,
        state: entry.settlement?.outcome ?? 'pending',
        html: options.card(entry, session).value,
      });
    const stream = openTracked(req, res, session, feed.onChange(sendEntry));
    // Whatever changed between the page and this stream: the page replaces cards by id.
    for (const entry of feed.all()) sendEntry(entry);
  }

  function liveStream(req: IncomingMessage, res: ServerResponse, session: BrowserSession, id: string): void {
    const sendEvent = (event: LiveEvent & { kind: 'event' | 'io' }): void =>
      stream.send('event', {
        html: liveEventFragment(event, event.kind === 'io' ? event.text : undefined).value,
      });
    const unsubscribe = live.subscribe(id, (event) => {
      if (event.kind === 'ended') {
        stream.send('ended', { reason: event.reason });
        stream.close();
        return;
      }
      sendEvent(event);
    });
    const stream = openTracked(req, res, session, unsubscribe);
    for (const event of live.recent(id)) if (event.kind !== 'ended') sendEvent(event);
    if (!live.has(id)) {
      stream.send('ended', { reason: 'the session has ended' });
      stream.close();
    }
  }

  function remoteLiveStream(
    req: IncomingMessage,
    res: ServerResponse,
    session: BrowserSession,
    summary: ConsoleSession,
  ): void {
    const stream = followRemoteSession(req, res, {
      https,
      alive: () => options.alive(session),
      onClose: () => streams.delete(stream),
      read: (afterSeq) => options.records.events(summary, afterSeq),
      pollMs: options.remotePollMs,
      log: options.log,
    });
    streams.add(stream);
  }

  const closeAll = (): void => {
    for (const stream of [...streams]) stream.close();
  };

  return { approvalsStream, liveStream, remoteLiveStream, closeAll };
}
