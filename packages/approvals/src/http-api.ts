/**
 * Admin API for approvals (docs/cli.md, Admin HTTP API): `GET /api/approvals` lists pending requests,
 * `GET /api/approvals/{id}` shows one (or a recent one's outcome); `POST /api/approvals/{id}/approve`
 * and `/deny` (body `{"reason": "…"}`) decide one. Every call needs `Authorization: Bearer TOKEN`.
 * Status codes: 401 bad token, 403 not an approver or own request, 404 unknown id, 409 already settled, 503 the
 * fleet database (which holds every replica's requests) cannot be reached.
 * A caller reads only the requests it may decide and its own: an agent's token learns of its own waits, never of
 * other sessions' held commands.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AgentgateError,
  isAgentgateError,
  type Identity,
  type IdentityService,
  type Logger,
} from '@agentgate/core';
import type { ApprovalBrokerImpl } from './approval-broker.js';

const PREFIX = '/api/approvals';
const MAX_BODY_BYTES = 16 * 1024;
const MAX_REASON_CHARS = 1000;

const statusOf: Partial<Record<string, number>> = {
  AUTH_FAILED: 401,
  FORBIDDEN: 403,
  NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  BAD_REQUEST: 400,
  LIMIT_EXCEEDED: 413,
  UPSTREAM_UNAVAILABLE: 503,
};

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(text);
}

async function authenticate(identity: IdentityService, req: IncomingMessage): Promise<Identity> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (match === null) throw new AgentgateError('AUTH_FAILED', 'expected Authorization: Bearer TOKEN');
  return identity.verifyToken(match[1]!);
}

async function readReason(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new AgentgateError('LIMIT_EXCEEDED', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new AgentgateError('BAD_REQUEST', 'expected a JSON body like {"reason": "…"}');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new AgentgateError('BAD_REQUEST', 'expected a JSON object like {"reason": "…"}');
  const { reason } = body as Record<string, unknown>;
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason !== 'string') throw new AgentgateError('BAD_REQUEST', 'expected "reason" to be a string');
  return reason.slice(0, MAX_REASON_CHARS);
}

/** May `who` read this request? Its approvers may, and the identity whose command it holds. */
function mayRead(
  identity: IdentityService,
  who: Identity,
  request: { readonly identity: string; readonly approvers: readonly string[] },
): boolean {
  return who.name === request.identity || identity.isAllowed(who, request.approvers);
}

function decodeId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AgentgateError('BAD_REQUEST', 'the approval id in the path is not valid percent-encoding');
  }
}

export async function handleApprovalsHttp(
  broker: ApprovalBrokerImpl,
  identity: IdentityService,
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
): Promise<boolean> {
  if (pathname !== PREFIX && pathname !== `${PREFIX}/` && !pathname.startsWith(`${PREFIX}/`)) return false;
  try {
    const rest = pathname.slice(PREFIX.length).replace(/^\/|\/$/g, '');
    if (rest === '') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { message: 'expected GET' }, { allow: 'GET' });
        return true;
      }
      const who = await authenticate(identity, req);
      sendJson(
        res,
        200,
        (await broker.listAnywhere()).filter((request) => mayRead(identity, who, request)),
      );
      return true;
    }
    if (/^[^/]+$/.test(rest)) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { message: 'expected GET' }, { allow: 'GET' });
        return true;
      }
      const who = await authenticate(identity, req);
      const id = decodeId(rest);
      const approval = await broker.getAnywhere(id);
      // Someone else's request answers as an unknown one does: its existence is not theirs to learn either.
      if (approval === undefined || !mayRead(identity, who, approval))
        throw new AgentgateError('NOT_FOUND', `no approval request ${id}`);
      sendJson(res, 200, approval);
      return true;
    }
    const match = /^([^/]+)\/(approve|deny)$/.exec(rest);
    if (match === null) {
      sendJson(res, 404, { message: `no route ${pathname}`, code: 'NOT_FOUND' });
      return true;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { message: 'expected POST' }, { allow: 'POST' });
      return true;
    }
    const approver = await authenticate(identity, req);
    const reason = await readReason(req);
    const id = decodeId(match[1]!);
    const settlement = await broker.decideAnywhere(
      id,
      approver,
      match[2] === 'approve' ? 'approved' : 'rejected',
      reason,
    );
    sendJson(res, 200, settlement);
  } catch (err) {
    const status = isAgentgateError(err) ? (statusOf[err.code] ?? 500) : 500;
    if (status === 500) log.error('approvals API failed', { path: pathname, error: (err as Error).message });
    const message = status === 500 ? 'agentgate: internal error' : (err as Error).message;
    if (!res.headersSent)
      sendJson(
        res,
        status,
        { message, code: isAgentgateError(err) ? err.code : 'INTERNAL' },
        status === 401 ? { 'www-authenticate': 'Bearer' } : {},
      );
    else res.destroy();
  }
  return true;
}
