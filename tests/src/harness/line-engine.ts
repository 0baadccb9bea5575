/**
 * A line-protocol engine, used only in tests to prove the engine interface end to end without a real client: `AUTH
 * <token>` first, then each line is a command, decided as an SSH exec of one simple command (the line's words,
 * so `pattern` rules see the whole line); allowed lines are echoed back,
 * denied ones answered with the denial text. The harness registers it through `startGateway`'s `extraListeners`
 * (the configuration file cannot name it), and it goes through the same identity, session lifecycle, gate,
 * transcript and metrics as the real engines.
 */
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import {
  CLIENT_LEFT,
  type ClientInfo,
  type EngineDeps,
  type GatedSession,
  type ListenerBase,
  type ProtocolEngine,
  type SshCommand,
} from '@agentgate/core';

/** What the line engine's sessions are recorded and decided as. */
export const LINE_ENGINE_PROTOCOL = 'ssh';

function lineCommand(line: string): SshCommand {
  const argv = line.split(/\s+/).filter((word) => word !== '');
  return {
    protocol: 'ssh',
    kind: 'exec',
    text: line,
    simpleCommands: [{ program: argv[0] ?? '', argv, text: line }],
  };
}

export function createLineEngine(listener: ListenerBase, deps: EngineDeps): ProtocolEngine {
  return {
    async handle(client: Duplex, info: ClientInfo, signal: AbortSignal): Promise<void> {
      const lines = createInterface({ input: client, crlfDelay: Infinity });
      const write = (s: string): void => {
        client.write(s + '\n');
        session?.recorder.io('out', Buffer.from(s + '\n'));
      };
      let session: GatedSession | undefined;
      // The session's end (shutdown, expiry, an administrator) closes the connection, which ends the loop; the
      // client leaving ends the session (a held approval is withdrawn).
      const onEnded = (): void => void client.end();
      client.once('close', () => session?.end(CLIENT_LEFT));
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
              session = deps.sessions.open({
                listener: listener.name,
                protocol: LINE_ENGINE_PROTOCOL,
                identity,
                client: info,
                signal,
                log: deps.log,
              });
              session.ended.addEventListener('abort', onEnded, { once: true });
              write(`OK ${identity.name} ${session.info.id}`);
            } catch {
              write('ERR authentication failed');
              break;
            }
            continue;
          }
          session.recorder.io('in', Buffer.from(line + '\n'));
          const verdict = await session.decide(lineCommand(line));
          if (verdict.allowed) write(`ECHO ${line}`);
          else write(`DENIED ${verdict.code} ${verdict.message}`);
        }
      } finally {
        session?.end(CLIENT_LEFT);
        client.end();
      }
    },
  };
}
