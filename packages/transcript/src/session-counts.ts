/**
 * What a session summary counts as denied: `decision` events that refused a command, and approvals that ended
 * without the command running because a person rejected it or nobody decided in time. The end summary stored with
 * `session.end` counts only the first kind (as every release wrote it), so readers add the second from the events:
 * old stores and new ones read the same.
 */
import type { TranscriptEvent } from '@agentgate/core';
import { parseJson } from './stored-records.js';

/** An `approval.decided` whose command did not run: rejected, or expired (a gateway restart expires too). */
export function isDeniedApproval(event: Pick<TranscriptEvent, 'type'> & Record<string, unknown>): boolean {
  return (
    event.type === 'approval.decided' && (event['outcome'] === 'rejected' || event['outcome'] === 'expired')
  );
}

/** Denied approvals among a session's stored events; only events that can be one are parsed. */
export function countDeniedApprovals(storedEvents: Iterable<string>): number {
  let denied = 0;
  for (const value of storedEvents) {
    if (!value.includes('"approval.decided"')) continue;
    const event = parseJson<TranscriptEvent>(value);
    if (event && isDeniedApproval(event)) denied++;
  }
  return denied;
}
