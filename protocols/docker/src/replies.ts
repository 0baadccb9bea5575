/**
 * The gateway's own HTTP answers: refusals and errors as dockerd's JSON error bodies (`{"message": …}`), with the
 * status each failure maps to (docs/clients.md, "Docker in detail").
 */
import type { Duplex } from 'node:stream';
import { AgentgateError, type Logger, type Verdict } from '@agentgate/core';
import { type Header, encodeResponseHead } from './http-codec.js';
import { writeAll } from './socket-reader.js';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function verdictStatus(v: Extract<Verdict, { allowed: false }>): number {
  return v.code === 'RECORDING_FAILED' ? 503 : v.code === 'INTERNAL' ? 500 : 403;
}

export function errorStatus(err: unknown): number {
  if (!(err instanceof AgentgateError)) return 500;
  switch (err.code) {
    case 'AUTH_FAILED':
      return 401;
    case 'NOT_ALLOWED':
    case 'FORBIDDEN':
    case 'DENIED':
      return 403;
    case 'LIMIT_EXCEEDED':
      return 413;
    case 'UPSTREAM_UNAVAILABLE':
      return 502;
    case 'RECORDING_FAILED':
      return 503;
    case 'BAD_REQUEST':
    case 'PROTOCOL_VIOLATION':
      return 400;
    default:
      return 500;
  }
}

export interface ReplyOptions {
  /** Ask the client to close the connection (`Connection: close`); the caller closes it after. */
  readonly close: boolean;
  /**
   * The request was a HEAD: the reply has the headers of the JSON body but not the body (RFC 9110 §9.3.2). A
   * body there would be read as the start of the next response (the docker CLI's "Unsolicited response received
   * on idle HTTP channel").
   */
  readonly headRequest: boolean;
}

/** Answer with a JSON error body; a client already gone is not an error. */
export async function replyJson(
  client: Duplex,
  status: number,
  message: string,
  options: ReplyOptions,
): Promise<void> {
  if (client.destroyed || client.writableEnded) return;
  const body = Buffer.from(JSON.stringify({ message }) + '\n', 'utf8');
  const headers: Header[] = [
    ['Content-Type', 'application/json'],
    ['Content-Length', String(body.length)],
  ];
  if (options.close) headers.push(['Connection', 'close']);
  const head = encodeResponseHead(status, STATUS_TEXT[status] ?? 'Error', headers);
  try {
    await writeAll(client, options.headRequest ? head : [head, body]);
  } catch {
    // the client is gone; nothing to tell it
  }
}

/** Answer a failure: its own message when it is the gateway's to show, else a generic one (and an error log line). */
export async function replyError(
  client: Duplex,
  log: Logger,
  status: number,
  err: unknown,
  options: ReplyOptions,
): Promise<void> {
  const message = err instanceof AgentgateError && err.expose ? err.message : 'agentgate: internal error';
  if (!(err instanceof AgentgateError))
    log.error('docker request failed', { err: err instanceof Error ? err.message : String(err) });
  await replyJson(client, status, message, options);
}
