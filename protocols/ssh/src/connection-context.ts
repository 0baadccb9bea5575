import type {
  DecisionHooks,
  EventBody,
  Logger,
  ProtocolMetrics,
  SessionRecorder,
  SshCommand,
  SshListenerConfig,
  Verdict,
} from '@agentgate/core';
import type { Connection } from 'ssh2';
import type { UpstreamPool } from './upstream-pool.js';

/** What a channel handler needs from its authenticated connection (its session's lifecycle is in core). */
export interface ConnectionContext {
  readonly listener: SshListenerConfig;
  readonly log: Logger;
  readonly metrics: ProtocolMetrics;
  readonly recorder: SessionRecorder;
  readonly pool: UpstreamPool;
  /** The client's ssh2 connection, to open channels towards the client (x11, forwarded-tcpip). */
  readonly clientConnection: Connection;
  nextChannelId(): string;
  /**
   * Decide one command; never rejects (a failing gate is a refusal). Withdrawn when the connection's session ends
   * and when `signal` aborts (the channel closed). `hooks.onWaiting` hears that it is held for approval.
   */
  decide(command: SshCommand, signal?: AbortSignal, hooks?: DecisionHooks): Promise<Verdict>;
  /** Append a transcript event; a store failure is logged (fail-closed checks happen in the gate). */
  record<K extends 'notice' | 'result' | 'error'>(type: K, body: EventBody[K]): void;
}
