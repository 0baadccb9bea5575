/**
 * A line-protocol echo engine, used only in tests to prove the engine interface end to end without any real
 * protocol: `AUTH <token>` first, then each line is a command; allowed lines are echoed back, denied ones answered
 * with the denial text. It goes through the same identity, gate, transcript and metrics as the real engines.
 */
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import {
  newId,
  type ClientInfo,
  type EngineFactory,
  type ProtocolEngine,
  type TestListenerConfig,
} from '@agentgate/core';

export const createLineEngine: EngineFactory<TestListenerConfig> = (listener, deps): ProtocolEngine => ({
  async handle(client: Duplex, info: ClientInfo, signal: AbortSignal): Promise<void> {
    const lines = createInterface({ input: client, crlfDelay: Infinity });
    const write = (s: string): boolean => client.write(s + '\n');
    const abort = new AbortController();
    const onShutdown = (): void => abort.abort();
    signal.addEventListener('abort', onShutdown);
    client.on('close', () => abort.abort());
    let session:
      | { info: import('@agentgate/core').SessionInfo; recorder: import('@agentgate/core').SessionRecorder }
      | undefined;
    try {
      for await (const line of lines) {
        if (!session) {
          const m = /^AUTH (\S+)$/.exec(line);
          if (!m) {
            write('ERR expected AUTH <token>');
            break;
          }
          try {
            const identity = await deps.identity.verifyToken(m[1]!);
            if (!deps.identity.isAllowed(identity, listener.allow)) {
              write('ERR not allowed');
              break;
            }
            const sinfo = {
              id: newId(),
              listener: listener.name,
              protocol: 'test' as const,
              identity,
              client: info,
              startedAt: Date.now(),
            };
            session = { info: sinfo, recorder: deps.transcript.openSession(sinfo) };
            deps.metrics.sessionStarted(listener.name, 'test');
            write(`OK ${identity.name} ${sinfo.id}`);
          } catch {
            write('ERR authentication failed');
            break;
          }
          continue;
        }
        const verdict = await deps.gate.check(session, { protocol: 'test', text: line }, abort.signal);
        if (verdict.allowed) {
          session.recorder.append('result', { commandSeq: verdict.commandSeq, output: line });
          write(`ECHO ${line}`);
        } else {
          write(`DENIED ${verdict.code} ${verdict.message}`);
        }
      }
    } finally {
      signal.removeEventListener('abort', onShutdown);
      if (session) {
        session.recorder.end({ reason: 'client closed' });
        deps.metrics.sessionEnded(listener.name, 'test');
      }
      client.end();
    }
  },
});
