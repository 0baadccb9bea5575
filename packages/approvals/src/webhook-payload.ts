/**
 * What the approval webhook POSTs at each step of a request's life (docs/cli.md, approval webhook): one JSON event
 * per step — `approval.requested`, then exactly one of `approval.approved`, `approval.rejected`, `approval.expired`,
 * `approval.cancelled` — or, with `webhook.format: slack`, the same step as a Slack-compatible message.
 */
import type { ApprovalOutcome, ApprovalSettlement, WebhookFormat, WithdrawCause } from '@agentgate/core';
import type { PendingApproval } from './types.js';

export type WebhookEventType = 'approval.requested' | `approval.${ApprovalOutcome}`;

/** The request's links: its admin API resource and, with a console, its page there. */
export interface ApprovalLinks {
  readonly apiUrl?: string;
  readonly consoleUrl?: string;
}

/** One step of a request's life, with everything a receiver needs to show it. */
export interface WebhookEvent {
  readonly type: WebhookEventType;
  readonly approval: PendingApproval;
  readonly identityGroups: readonly string[];
  readonly client: string;
  readonly links: ApprovalLinks;
  /** Absent on `approval.requested`. */
  readonly settlement?: {
    readonly settlement: ApprovalSettlement;
    /** ms since the epoch */
    readonly settledAt: number;
    readonly waitedMs: number;
    readonly cause?: WithdrawCause['kind'];
  };
}

/** The body bytes for `format`; the signature covers exactly these. */
export function webhookBody(event: WebhookEvent, format: WebhookFormat): string {
  return JSON.stringify(format === 'slack' ? slackMessage(event) : agentgateEvent(event));
}

/** The documented JSON event. Field order is fixed so bodies read alike in logs. */
export function agentgateEvent(event: WebhookEvent): Record<string, unknown> {
  const { approval, links, settlement } = event;
  return {
    type: event.type,
    id: approval.id,
    session: approval.session,
    listener: approval.listener,
    protocol: approval.protocol,
    identity: { name: approval.identity, groups: event.identityGroups },
    client: event.client,
    command: approval.command,
    rule: approval.rule,
    approvers: approval.approvers,
    requestedAt: approval.requestedAt,
    expiresAt: approval.expiresAt,
    ...(settlement === undefined
      ? {}
      : {
          outcome: settlement.settlement.outcome,
          by: settlement.settlement.by ?? null,
          reason: settlement.settlement.reason ?? null,
          ...(settlement.cause === undefined ? {} : { cause: settlement.cause }),
          settledAt: new Date(settlement.settledAt).toISOString(),
          waitedMs: settlement.waitedMs,
        }),
    ...(links.apiUrl === undefined ? {} : { apiUrl: links.apiUrl }),
    ...(links.consoleUrl === undefined ? {} : { consoleUrl: links.consoleUrl }),
  };
}

/** Slack's limit on a section's text is 3000 characters; the command is cut well below it. */
const MAX_COMMAND_CHARS = 1500;

const HEADLINES: Record<WebhookEventType, string> = {
  'approval.requested': 'Approval requested',
  'approval.approved': 'Approved',
  'approval.rejected': 'Rejected',
  'approval.expired': 'Expired',
  'approval.cancelled': 'Cancelled',
};

/**
 * A Slack message (also read by Mattermost and Rocket.Chat incoming webhooks): `text` is the notification and
 * fallback, `blocks` show the command and link to the console and the API. Only these two members: chat webhooks
 * refuse or ignore anything else, so a receiver that needs the structured event uses the default format.
 */
export function slackMessage(event: WebhookEvent): Record<string, unknown> {
  const { approval, links, settlement } = event;
  const who = `${approval.identity} on ${approval.listener} (${approval.protocol})`;
  const outcome =
    settlement === undefined
      ? `expires ${approval.expiresAt}`
      : [
          settlement.settlement.by === undefined ? undefined : `by ${settlement.settlement.by}`,
          settlement.settlement.reason === undefined ? undefined : `: ${settlement.settlement.reason}`,
        ]
          .filter((part) => part !== undefined)
          .join('') || `after ${Math.round(settlement.waitedMs / 1000)}s`;
  const link = links.consoleUrl ?? links.apiUrl;
  const text =
    `agentgate: ${HEADLINES[event.type].toLowerCase()} — approval ${approval.id} for ${who}, ` +
    `rule ${approval.rule}` +
    (settlement === undefined ? '' : ` (${outcome})`) +
    (link === undefined ? '' : ` ${link}`);
  const buttons = [
    links.consoleUrl === undefined ? undefined : button('Open in console', links.consoleUrl),
    links.apiUrl === undefined ? undefined : button('API', links.apiUrl),
  ].filter((b) => b !== undefined);
  const blocks: Record<string, unknown>[] = [
    section(
      `*${HEADLINES[event.type]}*: approval \`${approval.id}\` for *${escapeMrkdwn(who)}*\n` +
        `rule *${escapeMrkdwn(approval.rule)}* · ${escapeMrkdwn(outcome)}`,
    ),
    section('```' + codeText(approval.command) + '```'),
    ...(buttons.length === 0 ? [] : [{ type: 'actions', elements: buttons }]),
  ];
  return { text: escapeMrkdwn(text), blocks };
}

function section(text: string): Record<string, unknown> {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

function button(label: string, url: string): Record<string, unknown> {
  return { type: 'button', text: { type: 'plain_text', text: label }, url };
}

/** Slack's mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The command inside a code block: escaped, its own triple backticks broken, cut to a length Slack shows. */
function codeText(command: string): string {
  const cut = command.length > MAX_COMMAND_CHARS ? `${command.slice(0, MAX_COMMAND_CHARS)}… (cut)` : command;
  return escapeMrkdwn(cut).replace(/```/g, '`\u200b``');
}
