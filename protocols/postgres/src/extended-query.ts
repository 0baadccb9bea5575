/**
 * What the extended query protocol has defined on the connection (PostgreSQL docs "Extended Query"): prepared
 * statements and portals by name, so an Execute is decided on the text it will run, and where the client stands
 * relative to its next Sync.
 */
import type { BindMessage, ParseMessage } from './codec/frontend-decode.js';
import { FrontendMessage } from './codec/message-types.js';

/**
 * What a portal will run. A name the gateway cannot be sure about (a statement re-Parsed after a DEALLOCATE the
 * gateway did not see, a portal re-bound under a live name the server may refuse) keeps every candidate text,
 * and the Execute is decided on all of them: uncertainty only ever adds facts, never hides one.
 */
export interface PortalInfo {
  readonly texts: readonly string[];
  /** The response group the Bind belongs to: portals end with their transaction (ReadyForQuery `I`). */
  readonly groupId: number;
  readonly statementName: string;
  readonly params: unknown[];
  readonly resultFormats: number[];
}

/** Extended-query messages: their answers come after a later Sync (or a Flush), not on their own. */
const EXTENDED_MESSAGES: ReadonlySet<number> = new Set([
  FrontendMessage.Parse,
  FrontendMessage.Bind,
  FrontendMessage.Describe,
  FrontendMessage.Execute,
  FrontendMessage.Close,
  FrontendMessage.Flush,
]);

export class ExtendedQueryState {
  private readonly statements = new Map<string, string[]>();
  private readonly portals = new Map<string, PortalInfo>();
  private unnamedStatement: string | undefined;
  /** Extended-protocol messages went upstream since the last Sync: answers to them may still come. */
  private unsyncedMessages = false;
  /** A command up to the next Sync was denied: the rest is discarded, as the server does after an error. */
  private discarding = false;

  get unsynced(): boolean {
    return this.unsyncedMessages;
  }

  /** Note a client message in order; false when it is to be dropped (after a denial, until the client's Sync). */
  admit(type: number): boolean {
    if (type === FrontendMessage.Sync) {
      this.unsyncedMessages = false;
      this.discarding = false;
      return true;
    }
    if (EXTENDED_MESSAGES.has(type)) this.unsyncedMessages = true;
    return !this.discarding;
  }

  /** A command was denied in the extended protocol: drop the client's messages up to its Sync. */
  discardUntilSync(): void {
    this.discarding = true;
  }

  parsed(parse: ParseMessage): void {
    // A named statement cannot be redefined (the server answers 42P05), so the first text stays the decided one.
    if (parse.statementName === '') {
      this.unnamedStatement = parse.text;
      return;
    }
    const texts = this.statements.get(parse.statementName);
    if (texts === undefined) this.statements.set(parse.statementName, [parse.text]);
    else if (!texts.includes(parse.text)) texts.push(parse.text);
  }

  bound(bind: BindMessage, groupId: number): void {
    const unnamed = this.unnamedStatement;
    const texts =
      bind.statementName === ''
        ? unnamed === undefined
          ? []
          : [unnamed]
        : (this.statements.get(bind.statementName) ?? []);
    const live = bind.portal === '' ? undefined : this.portals.get(bind.portal);
    const merged = live === undefined ? texts : [...new Set([...live.texts, ...texts])];
    this.portals.set(bind.portal, {
      texts: merged,
      groupId,
      statementName: bind.statementName,
      params: bind.params,
      resultFormats: bind.resultFormats,
    });
  }

  closed(target: 'S' | 'P', name: string): void {
    if (target === 'P') this.portals.delete(name);
    else if (name === '') this.unnamedStatement = undefined;
    else this.statements.delete(name);
  }

  portal(name: string): PortalInfo | undefined {
    return this.portals.get(name);
  }

  /** The transaction ended at the group `groupId`, and with it every portal bound up to it. */
  transactionEnded(groupId: number): void {
    for (const [name, portal] of this.portals) if (portal.groupId <= groupId) this.portals.delete(name);
  }
}
