/**
 * The one place where events written by earlier releases are read in today's spellings (docs/transcript.md), so no
 * reader needs fallbacks. Only the decoded object changes: the stored bytes, and so the hash chain, verification
 * and JSON Lines exports, stay exactly as written.
 *
 * - `approval.requested` / `approval.decided` named the approval `id`; it is `approvalId`.
 * - `notice` / `result` events named what happened `kind` (`recording-gap`, `stream-end`); it is `event`, with
 *   Docker's `stream-end` spelled `stream.end` like the other dotted names.
 * - `session.end` had no `cause`: `interrupted` when the crash recovery wrote it, otherwise `unknown`.
 * - Administrative records (listener `admin` or `console`) were `protocol: ssh` sessions with `admin: true`; their
 *   protocol is `admin`.
 */
import type { TranscriptEvent } from '@agentgate/core';

type Mutable = Record<string, unknown>;

/** Rewrites `event` in place (callers keep the object the stored text is attached to) and returns it. */
export function upgradeLegacyEvent(event: TranscriptEvent): TranscriptEvent {
  const e = event as Mutable;
  switch (event.type) {
    case 'approval.requested':
    case 'approval.decided':
      if (e['approvalId'] === undefined && e['id'] !== undefined) rename(e, 'id', 'approvalId');
      break;
    case 'notice':
    case 'result':
      if (e['event'] === undefined && (e['kind'] === 'recording-gap' || e['kind'] === 'stream-end')) {
        e['event'] = e['kind'] === 'stream-end' ? 'stream.end' : e['kind'];
        delete e['kind'];
      }
      break;
    case 'session.end':
      if (e['cause'] === undefined)
        e['cause'] = e['reason'] === 'gateway restarted' ? 'interrupted' : 'unknown';
      break;
    case 'session.start':
      if (e['admin'] === true) {
        e['protocol'] = 'admin';
        delete e['admin'];
      }
      break;
    default:
      break;
  }
  return event;
}

/**
 * A session summary's protocol as recorded at `session.start`: an administrative record of an earlier release
 * (listener `admin`, or `console` for the web console's) says `ssh`; its client address, the listener's name
 * (never a real connection's), tells it apart.
 */
export function upgradeLegacyProtocol(start: {
  protocol: string;
  listener: string;
  client: Record<string, unknown>;
}): string {
  const administrative = start.listener === 'admin' || start.listener === 'console';
  return administrative && start.client['address'] === start.listener ? 'admin' : start.protocol;
}

function rename(e: Mutable, from: string, to: string): void {
  e[to] = e[from];
  delete e[from];
}
