/**
 * The last commands of a held request's session, shown on its approval card for context: read from the store
 * once the request is on record, then cached (its earlier commands cannot change).
 */
import { recordedDecision, type TranscriptEvent } from '@agentgate/core';
import type { ApprovalEntry } from './approvals-feed.js';
import type { ConsoleStore } from './console-server.js';
import type { RecentCommand } from './pages/approvals.js';

const RECENT_COMMANDS = 5;
const MAX_CACHED = 1000;

export class RecentCommands {
  private readonly cache = new Map<string, RecentCommand[]>();

  constructor(private readonly store: Pick<ConsoleStore, 'events'>) {}

  of(entry: ApprovalEntry): RecentCommand[] {
    const cached = this.cache.get(entry.id);
    if (cached !== undefined) return cached;
    // Its session is recorded on the replica that holds it.
    if (entry.heldElsewhere !== undefined) return [];
    const commands: TranscriptEvent[] = [];
    const actions = new Map<number, string>();
    let cutAt: number | undefined;
    for (const event of this.store.events(entry.session.id)) {
      const decision = recordedDecision(event);
      if (decision !== undefined) actions.set(decision.commandSeq, decision.action);
      if (event.type === 'command') commands.push(event);
      else if (event.type === 'approval.requested' && event['approvalId'] === entry.id) {
        cutAt = commands.length - 1; // the held command is the one just before its request
        break;
      }
    }
    const earlier = cutAt === undefined ? commands : commands.slice(0, cutAt);
    const recent = earlier.slice(-RECENT_COMMANDS).map((c) => {
      const action = actions.get(c.seq);
      return {
        ts: c.ts,
        text: String(c['recordedText'] ?? c['text'] ?? ''),
        ...(action === undefined ? {} : { action }),
      };
    });
    // Cache once the request is on record (its earlier commands cannot change after that).
    if (cutAt !== undefined) {
      if (this.cache.size > MAX_CACHED) this.cache.clear();
      this.cache.set(entry.id, recent);
    }
    return recent;
  }
}
