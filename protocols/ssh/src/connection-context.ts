import type {
  GateSession,
  Logger,
  ProtocolMetrics,
  SessionRecorder,
  SshCommand,
  SshListenerConfig,
  Verdict,
} from '@agentgate/core';
import { clientMessage, isAgentgateError } from '@agentgate/core';
import type { Gate } from '@agentgate/core';
import type { Connection } from 'ssh2';
import type { UpstreamPool } from './upstream-pool.js';

/** What a channel handler needs from its authenticated connection. */
export interface ConnectionContext {
  readonly listener: SshListenerConfig;
  readonly log: Logger;
  readonly metrics: ProtocolMetrics;
  readonly recorder: SessionRecorder;
  readonly pool: UpstreamPool;
  /** The client's ssh2 connection, to open channels towards the client (x11, forwarded-tcpip). */
  readonly clientConnection: Connection;
  /** Aborts when the client connection ends: pending decisions and approvals are withdrawn. */
  readonly signal: AbortSignal;
  nextChannelId(): string;
  /** `signal`: also withdraw when this aborts (the channel closed). */
  decide(command: SshCommand, signal?: AbortSignal): Promise<Verdict>;
  /** Append a transcript event; a store failure is logged (fail-closed checks happen in the gate). */
  record(type: 'notice' | 'result' | 'error', body: Record<string, unknown>): void;
}

export function makeDecide(gate: Gate, session: GateSession, signal: AbortSignal, log: Logger) {
  return async (command: SshCommand, channelSignal?: AbortSignal): Promise<Verdict> => {
    try {
      return await gate.check(
        session,
        command,
        channelSignal === undefined ? signal : AbortSignal.any([signal, channelSignal]),
      );
    } catch (err) {
      // A gate that throws never lets a command through.
      log.error('gate check failed', { err });
      const code = isAgentgateError(err, 'RECORDING_FAILED') ? 'RECORDING_FAILED' : 'UNANALYSABLE';
      const message =
        isAgentgateError(err) && err.expose
          ? clientMessage(err)
          : 'agentgate: the command could not be decided';
      return { allowed: false, code, message };
    }
  };
}
