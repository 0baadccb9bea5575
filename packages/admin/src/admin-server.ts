/**
 * The admin HTTP listener: /metrics, /healthz, /readyz, /.well-known/jwks.json and the API handlers given to it
 * (approvals, ssh keys). Every handler error is rendered as JSON with a status from the error code.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAgentgateError, type Logger } from '@agentgate/core';
import type { GatewayMetrics } from '@agentgate/metrics';
import { sendError, sendJson, statusFor } from './http-util.js';

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<boolean>;

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, boolean>;
  /** What the checks do not decide but an operator wants beside them (a fleet replica's shipping lag). */
  readonly detail?: Record<string, unknown>;
  /** Per listener: its upstream as last probed (reachable, logged in), with the cause when not. */
  readonly upstreams?: Record<string, unknown>;
  /** Set while the gateway drains for a stop: not ready, whatever the checks say. */
  readonly draining?: DrainingDetail;
}

export interface DrainingDetail {
  /** ISO 8601. */
  readonly since: string;
  /** When the sessions still open are ended (ISO 8601). */
  readonly deadline: string;
  /** Sessions still open. */
  readonly sessions: number;
}

export interface AdminServerOptions {
  readonly listen: string;
  readonly metrics: GatewayMetrics;
  readonly readiness: () => ReadinessReport | Promise<ReadinessReport>;
  readonly jwks: () => unknown;
  readonly handlers: readonly AdminHandler[];
  readonly log: Logger;
}

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

export function parseHostPort(listen: string): { host: string; port: number } {
  const idx = listen.lastIndexOf(':');
  const host = listen.slice(0, idx).replace(/^\[|\]$/g, '');
  return { host, port: Number(listen.slice(idx + 1)) };
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { log } = opts;
  const server: Server = createServer((req, res) => {
    void route(req, res).catch((err: unknown) => {
      const status = isAgentgateError(err) ? (statusFor[err.code] ?? 500) : 500;
      if (status >= 500) log.error('admin request failed', { path: req.url, error: String(err) });
      if (!res.headersSent)
        sendError(res, status, isAgentgateError(err) && err.expose ? err.message : 'internal error');
      else res.destroy();
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? '/', 'http://admin').pathname;
    if (req.method === 'GET' && pathname === '/metrics') {
      const body = await opts.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (req.method === 'GET' && pathname === '/readyz') {
      const r = await opts.readiness();
      const ready = r.ready && r.draining === undefined;
      return sendJson(res, ready ? 200 : 503, {
        status: r.draining !== undefined ? 'draining' : ready ? 'ready' : 'not ready',
        checks: r.checks,
        ...(r.upstreams === undefined ? {} : { upstreams: r.upstreams }),
        ...(r.draining === undefined ? {} : { draining: r.draining }),
        ...(r.detail === undefined ? {} : { detail: r.detail }),
      });
    }
    if (req.method === 'GET' && pathname === '/.well-known/jwks.json') return sendJson(res, 200, opts.jwks());
    for (const handler of opts.handlers) if (await handler(req, res, pathname)) return;
    sendError(res, 404, `no route ${req.method} ${pathname}`);
  }

  const { host, port } = parseHostPort(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
