/**
 * The optional approval webhook: POST each step of a request's life (webhook-payload.ts), signed with the gateway
 * key as a compact JWS over the exact body bytes (header `X-Agentgate-Signature`), so a receiver verifies it
 * against `GET /.well-known/jwks.json`. A 200 reply `{"decision":"approve"|"deny","reason":…}` to
 * `approval.requested` settles the request (an auto-approval bot); anything else leaves it for a person. Bounded
 * retries with backoff; each attempt has a timeout; delivery stops when `stop` aborts (for `approval.requested`:
 * when the request settles), so a dead webhook never holds anything up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { responseTextUpTo, type Logger, type Signer, type WebhookConfig } from '@agentgate/core';

export interface WebhookDecision {
  readonly decision: 'approve' | 'deny';
  readonly reason?: string;
}

const MAX_REPLY_BYTES = 64 * 1024;
const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 5_000;

/** Retry only what may succeed later: network errors, timeouts, 429 and 5xx. */
const retriable = (status: number): boolean => status === 429 || status >= 500;

export interface WebhookDelivery {
  readonly config: WebhookConfig;
  readonly signer: Signer;
  readonly body: string;
  /** `X-Agentgate-Event`: the event type, also in the body of the default format. */
  readonly event: string;
  readonly approvalId: string;
  /** Aborting it stops the delivery and its retries. */
  readonly stop: AbortSignal;
  readonly log: Logger;
  /** Read the reply as a decision (only `approval.requested` can be decided by the receiver). */
  readonly wantsDecision: boolean;
}

export async function sendApprovalWebhook(delivery: WebhookDelivery): Promise<WebhookDecision | undefined> {
  const { config, body, approvalId, log, event } = delivery;
  const stop = delivery.stop;
  const signature = await delivery.signer.signCompact(body);
  const attempts = 1 + config.retries;
  for (let attempt = 1; attempt <= attempts && !stop.aborted; attempt++) {
    let retry: boolean;
    try {
      const response = await fetch(config.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-agentgate-signature': signature,
          'x-agentgate-approval-id': approvalId,
          'x-agentgate-event': event,
        },
        body,
        redirect: 'error',
        signal: AbortSignal.any([stop, AbortSignal.timeout(config.timeoutMs)]),
      });
      const text = (await responseTextUpTo(response, MAX_REPLY_BYTES)).text;
      if (response.ok && !delivery.wantsDecision) return undefined;
      if (response.status === 200) return parseDecision(text, log, approvalId);
      retry = retriable(response.status);
      log.warn(
        delivery.wantsDecision
          ? 'approval webhook answered without a decision'
          : 'approval webhook refused the event',
        { approval: approvalId, event, status: response.status, attempt },
      );
    } catch (err) {
      if (stop.aborted) return undefined;
      retry = true;
      log.warn('approval webhook failed', {
        approval: approvalId,
        event,
        attempt,
        error: (err as Error).message,
      });
    }
    if (!retry || attempt === attempts) return undefined;
    try {
      await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1)), undefined, {
        signal: stop,
      });
    } catch {
      return undefined; // stopped meanwhile
    }
  }
  return undefined;
}

function parseDecision(text: string, log: Logger, approvalId: string): WebhookDecision | undefined {
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch {
    return undefined; // a 200 without JSON: the receiver only acknowledged it, a person decides
  }
  if (reply === null || typeof reply !== 'object') return undefined;
  const { decision, reason } = reply as Record<string, unknown>;
  if (decision !== 'approve' && decision !== 'deny') {
    if (decision !== undefined)
      log.warn('approval webhook sent an unknown decision', {
        approval: approvalId,
        decision: String(decision),
      });
    return undefined;
  }
  return typeof reason === 'string' && reason.length > 0
    ? { decision, reason: reason.slice(0, 1000) }
    : { decision };
}
