/**
 * The console's server-sent event streams: the approvals page's cards, a session's live events on this replica,
 * and another replica's open session followed through the fleet database. Each stream ends when its browser
 * session does (sign-out ends it at once) or loses the role the stream needs; `closeAll` ends them all (the console
 * closing).
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
  /**
   * The browser session is still signed in and its roles still let it read this stream (`sessions`: a session's
   * live events, for auditors; `approvals`: the approvals feed, for anyone with a role).
   */
  readonly alive: (session: BrowserSession, reads: 'sessions' | 'approvals') => boolean;
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
  /** Open streams with the browser session each serves, so signing out ends that session's streams at once. */
  const streams = new Map<{ close(): void }, string>();

  /** A stream that ends with the browser session and, when it closes, unsubscribes from what fed it. */
  function openTracked(
    req: IncomingMessage,
    res: ServerResponse,
    session: BrowserSession,
    reads: 'sessions' | 'approvals',
    unsubscribe: () => void,
  ): EventStream {
    const stream = openEventStream(req, res, {
      https,
      alive: () => options.alive(session, reads),
      onClose: () => {
        unsubscribe();
        streams.delete(stream);
      },
    });
    streams.set(stream, session.id);
    return stream;
  }

  function approvalsStream(req: IncomingMessage, res: ServerResponse, session: BrowserSession): void {
    const sendEntry = (entry: ApprovalEntry): void =>
      stream.send('approval', {
        id: entry.id,
        state: entry.settlement?.outcome ?? 'pending',
        html: options.card(entry, session).value,
      });
    const stream = openTracked(req, res, session, 'approvals', feed.onChange(sendEntry));
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
    const stream = openTracked(req, res, session, 'sessions', unsubscribe);
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
      alive: () => options.alive(session, 'sessions'),
      onClose: () => streams.delete(stream),
      read: (afterSeq) => options.records.events(summary, afterSeq),
      pollMs: options.remotePollMs,
      log: options.log,
    });
    streams.set(stream, session.id);
  }

  /** End the streams of a browser session that signed out. */
  const closeSession = (sessionId: string): void => {
    for (const [stream, id] of [...streams]) if (id === sessionId) stream.close();
  };

  const closeAll = (): void => {
    for (const stream of [...streams.keys()]) stream.close();
  };

  return { approvalsStream, liveStream, remoteLiveStream, closeSession, closeAll };
}
