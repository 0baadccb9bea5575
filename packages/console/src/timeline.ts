/**
 * A session's events grouped the way a person reads them: each command with its decision, its approval and its
 * results; everything else (notices, errors, file transfers, exits) on its own line. io events are only counted:
 * the terminal player shows them.
 */
import { recordedDecision, type RecordedDecision, type TranscriptEvent } from '@agentgate/core';

export interface CommandItem {
  readonly kind: 'command';
  readonly command: TranscriptEvent;
  /** from the command event, or an older store's `decision` event */
  decision?: RecordedDecision;
  approvalRequested?: TranscriptEvent;
  approvalDecided?: TranscriptEvent;
  readonly results: TranscriptEvent[];
}

export interface EventItem {
  readonly kind: 'event';
  readonly event: TranscriptEvent;
}

export type TimelineItem = CommandItem | EventItem;

export interface Timeline {
  readonly items: readonly TimelineItem[];
  /** Bytes of terminal/stream io recorded, by direction. */
  readonly ioBytes: { in: number; out: number; err: number };
  /** Whether there is output a terminal player can show. */
  readonly hasTerminalOutput: boolean;
}

const approvalIdOf = (event: TranscriptEvent): string => String(event['approvalId'] ?? '');

export function buildTimeline(events: Iterable<TranscriptEvent>): Timeline {
  const items: TimelineItem[] = [];
  const bySeq = new Map<number, CommandItem>();
  const byApproval = new Map<string, CommandItem>();
  const ioBytes = { in: 0, out: 0, err: 0 };
  let lastCommand: CommandItem | undefined;
  for (const event of events) {
    switch (event.type) {
      case 'io': {
        const direction = event['direction'];
        const n = typeof event['bytes'] === 'number' ? event['bytes'] : 0;
        if (direction === 'in' || direction === 'out' || direction === 'err') ioBytes[direction] += n;
        continue;
      }
      case 'checkpoint':
        continue;
      case 'command': {
        const item: CommandItem = { kind: 'command', command: event, results: [] };
        const decision = recordedDecision(event);
        if (decision !== undefined) item.decision = decision;
        bySeq.set(event.seq, item);
        lastCommand = item;
        items.push(item);
        continue;
      }
      case 'decision': {
        const decision = recordedDecision(event);
        const item = decision === undefined ? undefined : bySeq.get(decision.commandSeq);
        if (item !== undefined && decision !== undefined) {
          item.decision = decision;
          continue;
        }
        break;
      }
      case 'approval.requested':
        if (lastCommand !== undefined && lastCommand.approvalRequested === undefined) {
          lastCommand.approvalRequested = event;
          byApproval.set(approvalIdOf(event), lastCommand);
          continue;
        }
        break;
      case 'approval.decided': {
        const item = byApproval.get(approvalIdOf(event));
        if (item !== undefined) {
          item.approvalDecided = event;
          continue;
        }
        break;
      }
      case 'result': {
        const seq = event['commandSeq'];
        const item = typeof seq === 'number' ? bySeq.get(seq) : undefined;
        if (item !== undefined) {
          item.results.push(event);
          continue;
        }
        break;
      }
      default:
        break;
    }
    items.push({ kind: 'event', event });
  }
  return { items, ioBytes, hasTerminalOutput: ioBytes.out + ioBytes.err > 0 };
}
