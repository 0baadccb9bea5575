/**
 * A command's decision as readers get it from a store of either shape: today's `command` event carries it as its
 * `decision` member; stores written before that hold a `decision` event of its own right after the command
 * (docs/transcript.md, "Records written by earlier releases"). Every reader goes through these two functions.
 */
import type { CommandDecision } from './transcript-events.js';

/** A decision and the `seq` of the command it decides. */
export type RecordedDecision = CommandDecision & { readonly commandSeq: number };

type StoredEvent = { readonly type: string; readonly seq: number; readonly [field: string]: unknown };

/**
 * The decision `event` records: a `command` event's `decision` (undefined for an administrative command, which is
 * not decided), or an older store's `decision` event. undefined for every other event.
 */
export function recordedDecision(event: StoredEvent): RecordedDecision | undefined {
  if (event.type === 'command') {
    const decision = event['decision'];
    if (!isDecision(decision)) return undefined;
    return { ...decision, commandSeq: event.seq };
  }
  if (event.type === 'decision' && isDecision(event)) {
    const { action, rule, matched, reason } = event;
    return {
      commandSeq: Number(event['commandSeq']),
      action,
      ...(rule === undefined ? {} : { rule }),
      ...(matched === undefined ? {} : { matched }),
      ...(reason === undefined ? {} : { reason }),
    };
  }
  return undefined;
}

/**
 * Whether an event of `type` with `body` records a denial by the gate, in either shape; nothing is allocated (the
 * store writer counts denials with it as it appends).
 */
export function recordsDenial(type: string, body: Readonly<Record<string, unknown>>): boolean {
  if (type === 'command') {
    const decision = body['decision'];
    return isDecision(decision) && decision.action === 'deny';
  }
  return type === 'decision' && body['action'] === 'deny';
}

function isDecision(value: unknown): value is CommandDecision {
  if (value === null || typeof value !== 'object') return false;
  const action = (value as { action?: unknown }).action;
  return action === 'allow' || action === 'deny' || action === 'approve';
}
