/**
 * Runs one read-only catalog query on a short-lived upstream connection of its own, opened with the listener's
 * upstream credentials (PostgreSQL docs "Simple Query": RowDescription, DataRow…, CommandComplete, ReadyForQuery).
 * The masking catalog uses it so the client's session is never interleaved with gateway queries.
 */
import { AgentgateError } from '@agentgate/core';
import { BackendFramer, forEachMessage } from '../codec/backend-framer.js';
import { decodeErrorFields, decodeTextRow } from '../codec/decode.js';
import { encodeQuery, encodeTerminate } from '../codec/encode.js';
import { openUpstream, type UpstreamTarget } from '../upstream.js';
import { BackendMessage } from '../codec/message-types.js';

/** Rows of a text-format result; NULL as null. */
export type TextRows = (string | null)[][];

export async function runCatalogQuery(
  target: UpstreamTarget,
  database: string,
  sql: string,
  signal: AbortSignal,
): Promise<TextRows> {
  const conn = await openUpstream(
    target,
    { database, application_name: 'agentgate-masking-catalog' },
    signal,
  );
  const socket = conn.socket;
  return new Promise<TextRows>((resolve, reject) => {
    const framer = new BackendFramer();
    const rows: TextRows = [];
    let error: string | undefined;
    const finish = (err: Error | null): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      socket.end(encodeTerminate());
      setTimeout(() => socket.destroy(), 1000).unref();
      if (err) reject(err);
      else resolve(rows);
    };
    const onData = (chunk: Buffer): void => {
      try {
        const region = framer.push(chunk);
        if (region === null) return;
        forEachMessage(region, (type, buf, start, end) => {
          if (type === BackendMessage.DataRow) rows.push(decodeTextRow(buf, start));
          else if (type === BackendMessage.ErrorResponse)
            error ??= decodeErrorFields(buf, start, end).get('M') ?? 'error';
          else if (type === BackendMessage.ReadyForQuery) {
            finish(
              error === undefined
                ? null
                : new AgentgateError(
                    'UPSTREAM_UNAVAILABLE',
                    `agentgate: masking catalog query failed: ${error}`,
                  ),
            );
          }
        });
      } catch (err) {
        finish(err as Error);
      }
    };
    const onError = (err: Error): void => finish(err);
    const onClose = (): void =>
      finish(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: masking catalog connection closed'));
    const onAbort = (): void => finish(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: aborted'));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
    if (conn.leftover) onData(conn.leftover);
    socket.write(encodeQuery(sql));
    socket.resume();
  });
}
