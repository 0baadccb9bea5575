/** HTTP plumbing for the console: security headers on every answer, cookies, small form bodies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentgateError } from '@agentgate/core';
import type { SafeHtml } from './html.js';

/**
 * No inline script or style and no other origin. The player page adds `'wasm-unsafe-eval'` (asciinema-player's
 * terminal emulator is WebAssembly); it does not allow JavaScript eval.
 */
export function contentSecurityPolicy(options: { wasm?: boolean } = {}): string {
  return [
    "default-src 'none'",
    `script-src 'self'${options.wasm ? " 'wasm-unsafe-eval'" : ''}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function securityHeaders(options: { wasm?: boolean; https: boolean }): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy(options),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    // Not no-referrer: with it browsers send `Origin: null` on form posts, which the origin check must refuse.
    'referrer-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=()',
    ...(options.https ? { 'strict-transport-security': 'max-age=31536000' } : {}),
  };
}

export interface Responder {
  readonly https: boolean;
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  page: SafeHtml,
  options: { https: boolean; wasm?: boolean; headers?: Record<string, string | string[]> },
): void {
  const body = page.value;
  res.writeHead(status, {
    ...securityHeaders(options),
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    ...options.headers,
  });
  res.end(body);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  options: { https: boolean; contentType?: string; headers?: Record<string, string> },
): void {
  res.writeHead(status, {
    ...securityHeaders(options),
    'content-type': options.contentType ?? 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...options.headers,
  });
  res.end(text);
}

export function redirect(
  res: ServerResponse,
  location: string,
  options: { https: boolean; headers?: Record<string, string | string[]> },
): void {
  res.writeHead(303, {
    ...securityHeaders(options),
    location,
    'content-length': '0',
    'cache-control': 'no-store',
    ...options.headers,
  });
  res.end();
}

/** A request header's value; the first when it was sent more than once. */
export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name && !cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

export interface CookieOptions {
  readonly secure: boolean;
  /** Seconds; 0 deletes the cookie. Absent: a browser-session cookie. */
  readonly maxAge?: number;
  readonly path?: string;
}

/** HttpOnly, SameSite=Lax (the IdP redirects back with a top-level GET), Secure under https. */
export function cookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${options.path ?? '/'}`, 'HttpOnly', 'SameSite=Lax'];
  if (options.secure) parts.push('Secure');
  if (options.maxAge !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(options.maxAge))}`);
  return parts.join('; ');
}

const MAX_FORM_BYTES = 16 * 1024;

/** An application/x-www-form-urlencoded body (forms) or JSON object (script); small. */
export async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES)
      throw new AgentgateError('LIMIT_EXCEEDED', `request body over ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const form = new Map<string, string>();
  if (text === '') return form;
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new AgentgateError('BAD_REQUEST', 'the request body is not valid JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new AgentgateError('BAD_REQUEST', 'expected a JSON object');
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>))
      if (typeof v === 'string') form.set(k, v);
    return form;
  }
  if (type !== 'application/x-www-form-urlencoded')
    throw new AgentgateError(
      'BAD_REQUEST',
      'expected a form (application/x-www-form-urlencoded) or JSON body',
    );
  for (const [k, v] of new URLSearchParams(text)) if (!form.has(k)) form.set(k, v);
  return form;
}
